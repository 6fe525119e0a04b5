"""Goal-conditioned envs (gymnasium-robotics' Fetch tasks, or any env of the same shape) for DDPG + HER.

A goal env's observation is a Dict of ``observation``, ``achieved_goal`` and ``desired_goal`` (flat Boxes), and its
``compute_reward(achieved_goal, desired_goal, info)`` recomputes rewards for any goal, vectorized. ddpgx flattens
the Dict into one vector ``[observation, achieved_goal, desired_goal]`` (``FlattenGoal``, as Stable-Baselines3's
MultiInputPolicy concatenates the keys), clipped to +-200 as the HER paper's code clips observations before
normalizing; the layout tells the HER buffer (her.py) where the goals are, so it can relabel them.
"""

from __future__ import annotations

from dataclasses import dataclass

import gymnasium as gym
import numpy as np

from ddpgx.errors import UserError

KEYS = ("observation", "achieved_goal", "desired_goal")
RAW_CLIP = 200.0  # HER (Andrychowicz et al. 2017, baselines' clip_obs): clip before normalizing


@dataclass(frozen=True)
class GoalLayout:
    """Where each part lies in the flat vector: [observation | achieved_goal | desired_goal]."""

    obs_dim: int
    goal_dim: int

    @property
    def achieved(self) -> slice:
        return slice(self.obs_dim, self.obs_dim + self.goal_dim)

    @property
    def desired(self) -> slice:
        return slice(self.obs_dim + self.goal_dim, self.obs_dim + 2 * self.goal_dim)

    @property
    def size(self) -> int:
        return self.obs_dim + 2 * self.goal_dim


def check_goal_env(env_id: str, env: gym.Env) -> GoalLayout:
    """The layout of a goal env's Dict space; one line saying what is expected for any other Dict space."""
    space = env.observation_space
    keys = tuple(getattr(space, "spaces", {}))
    want = "a Dict of 'observation', 'achieved_goal' and 'desired_goal' (flat Boxes)"
    if set(keys) != set(KEYS):
        raise UserError(
            f"{env_id} has a Dict observation space with keys {list(keys)}; ddpgx takes {want} (a goal env, "
            "for HER), or a flat Box (wrap other Dicts with gymnasium.wrappers.FlattenObservation)"
        )
    for k in KEYS:
        s = space[k]
        if not isinstance(s, gym.spaces.Box) or len(s.shape) != 1:
            raise UserError(f"{env_id}'s observation['{k}'] is {s}; ddpgx takes {want}")
    if space["achieved_goal"].shape != space["desired_goal"].shape:
        raise UserError(
            f"{env_id}'s achieved_goal {space['achieved_goal'].shape} and desired_goal "
            f"{space['desired_goal'].shape} differ in shape; a goal env's goals must be alike"
        )
    if not callable(getattr(env.unwrapped, "compute_reward", None)):
        raise UserError(
            f"{env_id} is a goal env (Dict of {', '.join(KEYS)}) without a compute_reward(achieved_goal, "
            "desired_goal, info) method; HER needs it to recompute rewards for relabelled goals"
        )
    return GoalLayout(space["observation"].shape[0], space["desired_goal"].shape[0])


class FlattenGoal(gym.ObservationWrapper):
    """A goal env's Dict observation as one float32 vector [observation, achieved_goal, desired_goal]."""

    def __init__(self, env: gym.Env, layout: GoalLayout) -> None:
        super().__init__(env)
        self.goal_layout = layout
        self.observation_space = gym.spaces.Box(-RAW_CLIP, RAW_CLIP, (layout.size,), np.float32)

    def observation(self, obs: dict) -> np.ndarray:
        flat = np.concatenate([np.asarray(obs[k], np.float32).ravel() for k in KEYS])
        return np.clip(flat, -RAW_CLIP, RAW_CLIP)

    def reward_fn(self, achieved: np.ndarray, desired: np.ndarray) -> np.ndarray:
        """The env's own rewards for these goals, vectorized (the info argument is empty)."""
        return np.asarray(self.env.unwrapped.compute_reward(achieved, desired, {}), np.float32).reshape(
            len(achieved)
        )


def goal_layout(env: gym.Env) -> GoalLayout | None:
    """The layout if ``env`` was made as a goal env (see envs.make_env), else None."""
    while isinstance(env, gym.Wrapper):
        if isinstance(env, FlattenGoal):
            return env.goal_layout
        env = env.env
    return None


def find_flatten(env: gym.Env) -> FlattenGoal:
    while isinstance(env, gym.Wrapper):
        if isinstance(env, FlattenGoal):
            return env
        env = env.env
    raise ValueError("not a goal env")
