"""Noise-free evaluation episodes on environments kept apart from the training env."""

from __future__ import annotations

from collections.abc import Callable

import gymnasium as gym
import numpy as np

from ddpgx.envs import ActionScaler, reset_checked, scaler_for
from ddpgx.rngstate import rng_state, set_rng_state

EVAL_SEED_OFFSET = 1_000_003  # evaluation envs are seeded apart from the training env

Policy = Callable[[np.ndarray], np.ndarray]  # batch of observations -> batch of actions in [-1, 1]


class Evaluator:
    """Runs ``episodes`` episodes in lock-step (one batched policy call per step) on envs of its own.

    The envs are seeded once, from ``seed``, on the first evaluation and keep their random streams afterwards, so
    successive evaluations see fresh but reproducible start states.
    """

    def __init__(self, make: Callable[[], gym.Env], episodes: int, seed: int) -> None:
        self.envs = [make() for _ in range(episodes)]
        self.scaler: ActionScaler = scaler_for(self.envs[0])
        self.seed = seed
        self.first = True
        self.successes = np.full(episodes, np.nan)  # the last run's info["is_success"] at each episode's end
        self.lengths = np.zeros(episodes, np.int64)  # the last run's episode lengths: standing vs hopping

    def run(self, policy: Policy) -> np.ndarray:
        """Returns each episode's undiscounted return (and keeps each episode's success in ``successes`` and its
        length in ``lengths``)."""
        n = len(self.envs)
        seeds = [self.seed + i for i in range(n)] if self.first else [None] * n
        self.first = False
        # an evaluation's NaN reset stops a run that has learned (TrainingDiverged), and `ddpgx eval` in one line
        obs = np.stack([reset_checked(env, s, first=False) for env, s in zip(self.envs, seeds, strict=True)])
        returns = np.zeros(n)
        self.lengths[:] = 0
        alive = np.ones(n, bool)
        while alive.any():
            actions = np.asarray(policy(obs))
            env_units = getattr(policy, "env_units", False)  # an exported model maps to the bounds itself
            for i in np.flatnonzero(alive):
                a = actions[i] if env_units else self.scaler.to_env(actions[i])
                o, r, term, trunc, info = self.envs[i].step(a)
                returns[i] += float(r)
                self.lengths[i] += 1
                obs[i] = o
                if term or trunc:
                    alive[i] = False
                    self.successes[i] = float(info.get("is_success", np.nan))
        return returns

    def state(self) -> dict:
        """Random-generator states of the eval envs (JSON-able), for checkpoints."""
        envs = [] if self.first else [rng_state(e.unwrapped.np_random) for e in self.envs]
        return {"first": self.first, "envs": envs}

    def load_state(self, state: dict) -> None:
        self.first = bool(state["first"])
        if not self.first:
            for env, s in zip(self.envs, state["envs"], strict=True):
                env.reset(seed=0)  # create the generator, then overwrite its state
                set_rng_state(env.unwrapped.np_random, s)

    def close(self) -> None:
        for env in self.envs:
            env.close()
