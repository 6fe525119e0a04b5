"""Small Gymnasium envs that provoke each kind of bad input; registered on import."""

from __future__ import annotations

import os
import sys

import gymnasium as gym
import numpy as np


class _Base(gym.Env):
    def __init__(
        self,
        action_space: gym.Space,
        render_mode=None,
        obs_nan_at: int = -1,
        reset_nan: bool = False,
        reward: float = 0.0,
        episode: int = 50,
        reset_nan_from: int = 0,
        nan_in_eval: bool = False,
    ):
        self.observation_space = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)
        self.action_space = action_space
        self.obs_nan_at = obs_nan_at
        self.reset_nan = reset_nan
        self.reward = reward
        self.episode = episode
        self.t = 0
        self.reset_nan_from = reset_nan_from  # this instance's resets from the n-th on return NaN
        self.nan_in_eval = nan_in_eval  # NaN rewards in an instance seeded as an evaluation env
        self.resets = 0
        self.evaluating = False

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        self.resets += 1
        self.evaluating = self.evaluating or (seed is not None and seed >= 1_000_003)  # EVAL_SEED_OFFSET
        obs = self.np_random.uniform(-1, 1, 2).astype(np.float32)
        if self.reset_nan or 0 < self.reset_nan_from <= self.resets:
            obs[1] = np.inf
        return obs, {}

    def step(self, action):
        self.t += 1
        obs = self.np_random.uniform(-1, 1, 2).astype(np.float32)
        if self.t == self.obs_nan_at:
            obs[0] = np.nan
        reward = np.nan if self.nan_in_eval and self.evaluating else self.reward
        return obs, reward, False, self.t >= self.episode, {}


class CrashInActor(_Base):
    """Its process exits at the 30th step of every episode when it runs inside a Ray actor (a simulator that
    crashes at a state); the learner's own copies (the probe, the evaluations) step on."""

    def step(self, action):
        ray = sys.modules.get("ray")
        if self.t + 1 == 30 and ray is not None and ray.is_initialized():
            if ray.get_runtime_context().get_actor_id() is not None:
                os._exit(1)
        return super().step(action)


class Terminating(gym.Env):
    """Terminates when the action's first component is positive, else truncates after 4 steps."""

    observation_space = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)
    action_space = gym.spaces.Box(np.array([-3.0], np.float32), np.array([1.0], np.float32), dtype=np.float32)

    def __init__(self, render_mode=None):
        self.t = 0

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return np.zeros(1, np.float32), {}

    def step(self, action):
        self.t += 1
        terminated = bool(action[0] > 0)
        return np.full(1, self.t, np.float32), 1.0, terminated, self.t >= 4 and not terminated, {}


class NoRenderMode(gym.Env):
    """An env whose constructor takes no render_mode (many hand-written envs): it trains, it cannot be filmed."""

    observation_space = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)
    action_space = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)

    def __init__(self):
        pass

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return np.zeros(1, np.float32), {}

    def step(self, action):
        return np.zeros(1, np.float32), 0.0, False, False, {}


def register() -> None:
    box = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)
    envs = {
        "TestMultiDiscrete-v0": lambda **k: _Base(gym.spaces.MultiDiscrete([3, 3]), **k),
        "TestDictAction-v0": lambda **k: _Base(gym.spaces.Dict({"a": box}), **k),
        "TestInfiniteBox-v0": lambda **k: _Base(gym.spaces.Box(-np.inf, np.inf, (1,), np.float32), **k),
        "TestNanObs-v0": lambda **k: _Base(box, obs_nan_at=30, **k),
        "TestNanReset-v0": lambda **k: _Base(box, reset_nan=True, **k),
        "TestNanLaterReset-v0": lambda **k: _Base(box, reset_nan_from=3, **k),
        "TestNanInEval-v0": lambda **k: _Base(box, nan_in_eval=True, **k),
        "TestHugeReward-v0": lambda **k: _Base(box, reward=3e38, **k),
        "TestTerminating-v0": Terminating,
        "TestNoRenderMode-v0": NoRenderMode,
        "TestCrashInActor-v0": lambda **k: CrashInActor(box, **k),
    }
    for name, entry in envs.items():
        if name not in gym.registry:
            gym.register(name, entry_point=entry)


register()
