"""Environment construction and the one place where actions cross between [-1, 1] and the env's bounds."""

from __future__ import annotations

import difflib
from dataclasses import dataclass

import gymnasium as gym
import numpy as np

from ddpgx.errors import UserError


@dataclass(frozen=True)
class ActionScaler:
    """Affine map between the actor's [-1, 1]^n and the env's Box [low, high] (bounds may be asymmetric)."""

    low: np.ndarray
    high: np.ndarray

    def to_env(self, a: np.ndarray) -> np.ndarray:
        a = np.clip(a, -1.0, 1.0)
        return (self.low + (a + 1.0) * 0.5 * (self.high - self.low)).astype(self.low.dtype)

    def from_env(self, a: np.ndarray) -> np.ndarray:
        return (2.0 * (np.asarray(a, np.float64) - self.low) / (self.high - self.low) - 1.0).astype(
            np.float32
        )


def check_env_id(env_id: str) -> None:
    if env_id in gym.registry:
        return
    close = difflib.get_close_matches(env_id, list(gym.registry), n=3, cutoff=0.5)
    hint = f"did you mean {' or '.join(close)}?" if close else "see gymnasium.pprint_registry() for the list"
    raise UserError(f"unknown environment '{env_id}'; {hint}")


def check_spaces(env_id: str, obs_space: gym.Space, act_space: gym.Space) -> None:
    if not isinstance(act_space, gym.spaces.Box):
        kind = type(act_space).__name__
        raise UserError(
            f"{env_id} has a {kind} action space; DDPG needs a continuous Box action space "
            "(pick an env like Pendulum-v1, Hopper-v5 or HalfCheetah-v5)"
        )
    if not (np.all(np.isfinite(act_space.low)) and np.all(np.isfinite(act_space.high))):
        raise UserError(
            f"{env_id} has an action Box with infinite bounds; DDPG's tanh actor needs finite bounds "
            "(wrap the env with gymnasium.wrappers.ClipAction or RescaleAction)"
        )
    if np.any(act_space.high <= act_space.low):
        raise UserError(f"{env_id} has an action Box with high <= low in some dimension")
    if not isinstance(obs_space, gym.spaces.Box) or len(obs_space.shape) != 1:
        raise UserError(
            f"{env_id} has observation space {obs_space}; ddpgx needs a flat Box "
            "(wrap it with gymnasium.wrappers.FlattenObservation)"
        )


def make_env(env_id: str, render_mode: str | None = None) -> gym.Env:
    """A Gymnasium env checked for DDPG: flat Box observations, bounded Box actions."""
    check_env_id(env_id)
    try:
        env = gym.make(env_id, render_mode=render_mode, disable_env_checker=True)
    except gym.error.DependencyNotInstalled as e:  # pragma: no cover - depends on the machine
        raise UserError(f"{env_id} needs a missing dependency: {e}") from None
    check_spaces(env_id, env.observation_space, env.action_space)
    return env


def scaler_for(env: gym.Env) -> ActionScaler:
    space = env.action_space
    return ActionScaler(np.asarray(space.low, np.float64), np.asarray(space.high, np.float64))
