"""Collection from N envs (``--num-envs``): act for all of them in one compiled call, step them (gymnasium.vector,
in this process or in subprocesses), store each env's transition, reset the envs whose episode ended, and keep
each episode's return, length and success for the logs.

Autoreset is off (gymnasium's ``AutoresetMode.DISABLED``): an episode's last transition stores the env's true
final observation, and the env is reset at the start of the next step with a mask, so the next episode's first
observation is never stored as a ``next_obs``.

Seeds and resuming:
- N = 1 is the single-env loop as it was: the env is seeded once (``seed``) and keeps its own random stream,
  saved in every checkpoint; checkpoints are taken at episode ends, so no simulator state is needed.
- N > 1: env ``i`` is seeded ``seed + i`` first, and every later episode with a seed drawn from the collector's
  own generator. Each env's episode so far is then (its reset seed, the actions since): a checkpoint can be taken
  at any step, and on resume each env is rebuilt by resetting with that seed and replaying those actions (inside
  its own process), then checked against the saved observation, bit for bit.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
import numpy as np

from ddpgx.errors import UserError, actions_not_finite, env_not_finite, reset_error
from ddpgx.memory import HOST, Need
from ddpgx.rngstate import rng_state, set_rng_state

ASYNC_PROCESS_BYTES = 200 * 2**20  # memory estimate of one env subprocess (Python, numpy, the simulator)


class Replayable(gym.Wrapper):
    """The outermost wrapper of every env in a vector env: it rebuilds an episode from its reset seed and actions
    (``restore``), and fails with a clear message when the rebuilt observation is not the saved one."""

    restore_plan: Any = None

    def restore(self) -> np.ndarray:
        seed, actions = self.restore_plan
        self.restore_plan = None
        obs, _ = self.env.reset(seed=seed)
        for (
            a
        ) in actions:  # the very values the env was stepped with (float64, as ActionScaler.to_env gives them)
            obs, *_ = self.env.step(np.asarray(a, np.float64))
        return np.asarray(obs)


def _make_replayable(make: Callable[[], gym.Env]) -> gym.Env:
    return Replayable(make())


@dataclass
class EpisodeEnd:
    env: int
    ret: float
    length: int
    success: float | None


@dataclass
class CollectorState:
    """What the loop must carry across a checkpoint about the envs (JSON-ready)."""

    obs: list[list[float]] = field(default_factory=list)
    need_reset: list[bool] = field(default_factory=list)
    ep_return: list[float] = field(default_factory=list)
    ep_len: list[int] = field(default_factory=list)
    seeds: list[int | None] = field(default_factory=list)  # N > 1: each env's episode's reset seed ...
    actions: list[list[list[float]]] = field(default_factory=list)  # ... and the env actions since
    pending: list[list[float]] | None = None  # N > 1: actions computed with the last update for these obs


class Collector:
    """N envs and their episodes. ``vector``: ``sync`` (one process) or ``async`` (one subprocess per env)."""

    def __init__(
        self,
        make: Callable[[], gym.Env],
        first_env: gym.Env,
        num_envs: int,
        vector: str,
        seed: int,
        scaler: Any,
        goal: bool,
    ) -> None:
        from functools import partial

        self.n, self.scaler, self.goal, self.seed = num_envs, scaler, goal, seed
        kw = {"autoreset_mode": gym.vector.AutoresetMode.DISABLED}
        self.name = first_env.spec.id if first_env.spec is not None else type(first_env.unwrapped).__name__
        if (
            vector == "async" and num_envs > 1
        ):  # one env has nothing to step in parallel: it stays in this process
            fns = [partial(_make_replayable, make) for _ in range(num_envs)]
            try:
                self.envs: gym.vector.VectorEnv = gym.vector.AsyncVectorEnv(fns, context="spawn", **kw)
            except Exception as e:  # noqa: BLE001 - raised in a subprocess: any failure means it cannot make the env
                why = str(e).strip().splitlines()[-1][:200] if str(e).strip() else type(e).__name__
                raise UserError(
                    f"--vector async could not make {self.name} in its env processes ({why}); an env registered "
                    "inside a script is unknown there: name it module:Id or module:Class, or use --vector sync"
                ) from None
        else:
            first = Replayable(first_env) if num_envs > 1 else first_env
            fns = [lambda: first] + [partial(_make_replayable, make) for _ in range(num_envs - 1)]
            self.envs = gym.vector.SyncVectorEnv(fns, **kw)
        self.obs = np.zeros((num_envs, first_env.observation_space.shape[0]), np.float32)
        self.need_reset = np.ones(num_envs, bool)
        self.reset_once = False  # a NaN at the run's first reset: the env is broken; later: the run's data
        self.ep_return = np.zeros(num_envs)
        self.ep_len = np.zeros(num_envs, np.int64)
        self.reset_seeds: list[int | None] = [seed + i for i in range(num_envs)]
        self.actions: list[list[np.ndarray]] = [[] for _ in range(num_envs)]
        self.seed_rng = np.random.default_rng([seed, 17])  # N > 1: the seed of every episode after the first
        self.pending: np.ndarray | None = None

    # ------------------------------------------------------------------ stepping
    @staticmethod
    def need(num_envs: int, vector: str) -> Need:
        """Memory of the envs beyond the first, on the host: one process each for async."""
        n = (num_envs - 1) * ASYNC_PROCESS_BYTES if vector == "async" else 0
        return Need(f"{num_envs} {vector} envs", n, HOST, "fewer --num-envs")

    def reset_done(self) -> np.ndarray:
        """Reset the envs whose episode ended (all of them at the start); returns the mask of those reset."""
        mask = self.need_reset.copy()
        if not mask.any():
            return mask
        if self.n == 1:  # the env's own random stream after the first episode, as the single-env loop had
            seeds: list[int | None] = [self.reset_seeds[0]]
            self.reset_seeds[0] = None
        else:
            seeds = [self.reset_seeds[i] if mask[i] else None for i in range(self.n)]
        options = None if mask.all() else {"reset_mask": mask}
        obs, _ = self._call(self.envs.reset, seed=seeds if self.n > 1 else seeds[0], options=options)
        obs = np.asarray(obs, np.float32)
        if not np.isfinite(obs[mask]).all():
            raise reset_error(self.name, obs[mask][0].tolist(), first=not self.reset_once)
        self.reset_once = True
        self.obs[mask] = obs[mask]
        for i in np.flatnonzero(mask):
            self.actions[i] = []
        self.need_reset[:] = False
        return mask

    def step(
        self, actions: np.ndarray, step: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, list]:
        """Step every env with ``actions`` in [-1, 1] (N, act_dim); returns (next_obs, reward, terminated, done,
        episode ends). The caller stores the transitions, then calls ``advance``."""
        if not np.isfinite(actions).all():
            raise actions_not_finite(step)
        env_actions = self.scaler.to_env(actions)
        next_obs, reward, term, trunc, info = self._call(self.envs.step, env_actions)
        next_obs = np.asarray(next_obs, np.float32)
        reward = np.asarray(reward, np.float64)
        if not (np.isfinite(next_obs).all() and np.isfinite(reward).all()):
            raise env_not_finite(step)
        done = np.logical_or(term, trunc)
        if self.n > 1:
            for i in range(self.n):
                self.actions[i].append(env_actions[i])
        self.ep_return += reward
        self.ep_len += 1
        ends = []
        for i in np.flatnonzero(done):
            success = None
            if self.goal:
                v = info.get("is_success")
                has = info.get("_is_success")
                success = float("nan") if v is None or (has is not None and not has[i]) else float(v[i])
            ends.append(EpisodeEnd(int(i), float(self.ep_return[i]), int(self.ep_len[i]), success))
            self.ep_return[i], self.ep_len[i] = 0.0, 0
            self.need_reset[i] = True
            if self.n > 1:
                self.reset_seeds[i] = int(self.seed_rng.integers(0, 2**31 - 1))
        return next_obs, reward, np.asarray(term, bool), done, ends

    def advance(self, next_obs: np.ndarray) -> None:
        self.obs = next_obs.copy()

    def _call(self, fn: Callable, *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except (EOFError, BrokenPipeError, ConnectionResetError) as e:
            raise EnvProcessDied(f"an env subprocess died ({type(e).__name__})") from None

    # ------------------------------------------------------------------ checkpoints
    def state(self) -> CollectorState:
        return CollectorState(
            obs=self.obs.tolist(),
            need_reset=self.need_reset.tolist(),
            ep_return=self.ep_return.tolist(),
            ep_len=self.ep_len.tolist(),
            seeds=list(self.reset_seeds),
            actions=[np.asarray(a, np.float64).tolist() for a in self.actions] if self.n > 1 else [],
            pending=None if self.pending is None else np.asarray(self.pending, np.float64).tolist(),
        )

    def rng_states(self) -> dict[str, Any]:
        if self.n == 1:
            env = self.envs.envs[0]  # type: ignore[attr-defined]
            return {"env": rng_state(env.unwrapped.np_random)}
        return {"env_seeds": rng_state(self.seed_rng)}

    def load(self, st: dict[str, Any] | None, rngs: dict[str, Any]) -> None:
        """Continue from a checkpoint: N = 1 at an episode end (the env's random stream restored); N > 1 at any
        step (each env rebuilt from its seed and actions, and checked)."""
        self.reset_once = True  # a resumed run has learned
        if self.n == 1:
            env = self.envs.envs[0]  # type: ignore[attr-defined]
            set_rng_state(env.unwrapped.np_random, rngs["env"])
            self.reset_seeds = [None]
            self.need_reset[:] = True
            return
        assert st is not None
        set_rng_state(self.seed_rng, rngs["env_seeds"])
        self.need_reset = np.asarray(st["need_reset"], bool)
        self.ep_return = np.asarray(st["ep_return"], np.float64)
        self.ep_len = np.asarray(st["ep_len"], np.int64)
        self.reset_seeds = list(st["seeds"])
        saved = np.asarray(st["obs"], np.float32)
        self.actions = [[np.asarray(a, np.float64) for a in acts] for acts in st["actions"]]
        self.pending = None if st.get("pending") is None else np.asarray(st["pending"], np.float32)
        live = [i for i in range(self.n) if not self.need_reset[i]]
        if live:
            plans = [
                (self.reset_seeds[i], self.actions[i]) if i in live else (None, []) for i in range(self.n)
            ]
            self.envs.set_attr("restore_plan", plans)
            rebuilt = np.asarray(self._call(self.envs.call, "restore"), np.float32)
            for i in live:
                if rebuilt[i].tobytes() != saved[i].tobytes():
                    raise UserError(
                        f"{self.name} is not deterministic given its reset seed and actions: env {i} rebuilt to a "
                        "different observation, so this run cannot continue mid-episode exactly (run it with "
                        "--num-envs 1, whose checkpoints are taken at episode ends)"
                    )
        self.obs = saved  # the envs that were not live are reset at the next step, with their saved seeds

    def close_episodes(self) -> None:
        """The run ends here: every episode in progress is over (an extension starts new ones)."""
        for i in np.flatnonzero(~self.need_reset):
            self.need_reset[i] = True
            self.ep_return[i], self.ep_len[i] = 0.0, 0
            if self.n > 1:
                self.reset_seeds[i] = int(self.seed_rng.integers(0, 2**31 - 1))

    def close(self) -> None:
        import warnings

        with (
            warnings.catch_warnings()
        ):  # closing after a dead subprocess warns about the step it never finished
            warnings.simplefilter("ignore")
            try:
                if isinstance(self.envs, gym.vector.AsyncVectorEnv):
                    self.envs.close(terminate=True)
                else:
                    self.envs.close()
            except Exception:  # noqa: BLE001 - a dead subprocess must not turn the run's real error into another
                pass


class EnvProcessDied(UserError):
    """An env subprocess of ``--vector async`` is gone (killed, crashed)."""
