"""Set-up both Gymnasium engines share (the Python engine and the actors engine): the run's replay, the checks
that fail in one line before the run directory exists, and the check that a checkpoint fits the run."""

from __future__ import annotations

import pickle
import subprocess
import sys
from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import serialization

from ddpgx import checkpoint as ckpt
from ddpgx.config import Config
from ddpgx.envcheck import check_object_env
from ddpgx.envs import make_run_env
from ddpgx.errors import UserError, describe
from ddpgx.goals import find_flatten, goal_layout
from ddpgx.her import HerBuffer
from ddpgx.host import EvalRow, LossRow, check_eval_returns, counters_problem
from ddpgx.learner import NEWER_FIELDS, Metrics, policy_vars
from ddpgx.replay import PerEnvReplay, ReplayBuffer
from ddpgx.rngstate import rng_state, set_rng_state


def make_buffer(cfg: Config, env: Any, obs_dim: int, act_dim: int, num_envs: int = 0) -> PerEnvReplay:
    """The run's replay, one buffer per env (``num_envs``, default ``--num-envs``): HER's episode replay for
    ``--her`` on a goal env, else the transition ring; the capacity is shared out among the envs."""
    layout = goal_layout(env)
    n = num_envs or cfg.num_envs
    share = -(-cfg.buffer_size // n)  # each env's part of the capacity, rounded up
    if not cfg.her:
        rings = [ReplayBuffer(share, obs_dim, act_dim, seed=cfg.seed) for _ in range(n)]
        return PerEnvReplay(rings, seed=cfg.seed)
    if layout is None:
        raise UserError(
            f"--her needs a goal env (a Dict observation of observation, achieved_goal, desired_goal); {cfg.env} "
            "has a flat observation"
        )
    max_steps = env.spec.max_episode_steps if env.spec is not None else None
    if not max_steps:
        raise UserError(
            f"--her stores whole episodes and needs {cfg.env} to have a time limit: pass "
            "--env-kwargs max_episode_steps=N"
        )
    reward_fn = find_flatten(env).reward_fn
    bufs = [
        HerBuffer(share, max_steps, layout, act_dim, reward_fn, cfg.her_k, cfg.her_strategy, seed=cfg.seed)
        for _ in range(n)
    ]
    return PerEnvReplay(bufs, seed=cfg.seed)


def checkpoint_check(
    state: Any, buffer: PerEnvReplay, obs_norm: bool = False, goal_stats: bool = False, num_envs: int = 1
):
    """A checkpoint fits this run when its trees have the keys, shapes and dtypes the config implies."""
    template = ckpt.to_numpy(serialization.to_state_dict(state))

    def check(loaded: ckpt.Loaded) -> str | None:
        problem = ckpt.tree_mismatch(template, loaded.state) or buffer.check_state(loaded.replay)
        if problem:
            return problem
        if obs_norm and "obs_stats" not in loaded.manifest:
            return "manifest.json lacks the observation statistics of --obs-norm"
        if goal_stats and "goal" not in loaded.manifest.get("obs_stats", {}):
            return "manifest.json lacks the goal statistics of --goal-stats relabelled"
        if num_envs > 1 and "collector" not in loaded.manifest:
            return f"manifest.json lacks the state of the {num_envs} envs"
        try:
            loaded.manifest["rng"]["replay"], loaded.manifest["rng"]["eval"]  # noqa: B018
        except (KeyError, TypeError) as e:
            return f"manifest.json lacks the loop's random states ({describe(e)})"
        return counters_problem(loaded.manifest)

    return check


def check_first_step(cfg: Config) -> None:
    """Step a throwaway copy of the env once, so that a value it only reads when stepping (a bad --env-kwargs
    value) fails here, in one line, before the run directory exists."""
    probe = make_run_env(cfg)
    try:
        probe.reset(seed=cfg.seed)
        low, high = probe.action_space.low, probe.action_space.high
        probe.step(((low + high) / 2).astype(probe.action_space.dtype))
    except UserError:
        raise
    except Exception as e:  # noqa: BLE001 - whatever the env raises, the user's fix is in its arguments or code
        text = (str(e).strip().splitlines() or [""])[0][:160]
        kwargs = f" (--env-kwargs {' '.join(cfg.env_kwargs)})" if cfg.env_kwargs else ""
        raise UserError(f"{cfg.env}{kwargs} failed on its first step: {type(e).__name__}: {text}") from None
    finally:
        probe.close()


# --vector async's probe, in a fresh interpreter: make the env, reset it and step it once, and pickle what each
# returns, as AsyncVectorEnv's processes will (exit 3: made, but its results do not pickle)
ASYNC_PROBE = """
import pickle, sys
path, make = pickle.loads(sys.stdin.buffer.read())
sys.path[:] = path
env = pickle.loads(make)()
try:
    pickle.dumps(env.reset(seed=0))
    space = env.action_space
    pickle.dumps(env.step(((space.low + space.high) / 2).astype(space.dtype)))
except (TypeError, AttributeError, pickle.PicklingError) as e:
    print(f"ddpgx-probe: {e}", file=sys.stderr)
    sys.exit(3)
finally:
    env.close()
"""


def check_async_env(cfg: Config, flag: str = "--vector async", instead: str = "use --vector sync") -> None:
    """--vector async (and --actors) make each env in another process from the config alone and send what it
    returns back by pickle: try that once (make, reset, one step), in a fresh interpreter with this one's import
    path, so an env only this process knows (registered inside a script), or one whose info holds a lock or a
    handle, is one line now instead of a subprocess traceback later. ``flag`` and ``instead`` word the message."""
    where = "a subprocess" if flag == "--vector async" else "an actor's process"
    check_object_env(cfg.env, f"{flag} (each env made in {where})")
    try:
        payload = pickle.dumps((sys.path, pickle.dumps(partial(make_run_env, cfg))))
        r = subprocess.run(
            [sys.executable, "-c", ASYNC_PROBE], input=payload, capture_output=True, timeout=300
        )
        code, why = r.returncode, (r.stderr.decode(errors="replace").strip().splitlines() or ["exit"])[-1]
    except Exception as e:  # noqa: BLE001 - unpicklable config values or a probe that cannot start
        code, why = None, f"{type(e).__name__}: {e}"
    failed = code != 0
    if code == 3:  # made, but what it returns cannot travel between processes
        raise UserError(
            f"{flag}: what {cfg.env}'s reset() or step() returns cannot be sent between processes "
            f"({why.removeprefix('ddpgx-probe: ')[:200]}); keep its observations and info picklable, or {instead}"
        )
    if failed:
        raise UserError(
            f"{flag} cannot make {cfg.env} in {where} ({why[:200]}); an env registered inside a script "
            f"is unknown there: name it module:Id or module:Class, or {instead}"
        )


class LearnerSide:
    """The learner's side both Gymnasium engines share: the state with its observation statistics, the
    evaluation, the losses, and the parts of a checkpoint they write and read alike. The engine sets ``state``,
    ``learner``, ``stats`` (a Normalizer or None), ``evaluator``, ``buffer``, ``goal_rng``, ``goal``, ``metrics``,
    ``clip_share`` and ``step``."""

    state: Any
    learner: Any
    stats: Any
    evaluator: Any
    buffer: Any
    goal_rng: np.random.Generator
    goal: bool
    metrics: Any
    clip_share: dict[str, float]
    step: int

    def fresh(self) -> Any:
        """The state with the latest observation statistics in its networks. They are written at fixed steps
        (the engine's) and before every evaluation and the final save, not before every compiled call: that would
        copy 8 small arrays to the device each step for statistics that barely move. The float64 statistics take
        in every observation all along. Step-based, so a resumed run writes them where the uninterrupted one did."""
        if self.stats is not None and self.stats.changed:
            self.state = self.learner.set_obs_stats(self.state, *self.stats.mean_std())
            self.stats.changed = False
        return self.state

    def policy(self, i: int) -> tuple[Any, Any]:
        state = self.fresh()
        return policy_vars(state), state.critic

    def evaluate(self, step: int) -> list[EvalRow]:
        """A noise-free evaluation of the policy on the engine's own eval envs."""
        returns = self.evaluator.run(partial(self.learner.act_greedy, policy_vars(self.fresh())))
        check_eval_returns(returns, step)
        success = float(np.mean(self.evaluator.successes)) if self.goal else None
        length = float(np.mean(self.evaluator.lengths))
        return [EvalRow(float(returns.mean()), float(returns.std()), success, length)]

    def loss_rows(self, update_frac: float | None) -> list[LossRow | None]:
        """The run's losses from its last update call (None before the first update)."""
        if self.metrics is None:
            return [None]
        cl, al, q = (float(x) for x in jax.device_get(self.metrics))
        return [LossRow(cl, al, q, update_frac, self.clip_share)]

    def learner_rngs(self) -> dict[str, Any]:
        """The learner's random generators, for the manifest's ``rng``."""
        goal = self.stats is not None and self.stats.goal
        return {"replay": rng_state(self.buffer.rng), "eval": self.evaluator.state(),
                **({"goal_stats": rng_state(self.goal_rng)} if goal else {})}  # fmt: skip

    def learner_manifest(self) -> dict[str, Any]:
        return {"obs_stats": self.stats.state()} if self.stats is not None else {}

    def learner_counters(self) -> dict[str, Any]:
        metrics = None if self.metrics is None else [float(x) for x in jax.device_get(self.metrics)]
        return {"metrics": metrics, "clip_share": self.clip_share}

    def restore_learner(self, template: Any, tree: dict[str, Any], loaded: ckpt.Loaded) -> None:
        """The TrainState from ``tree`` (the checkpoint's state tree), the replay, the learner's generators and
        statistics, the step and the last losses."""
        m = loaded.manifest
        # a checkpoint written before parameter noise (or --policy-avg) existed lacks its entry: nothing to keep
        state = serialization.from_state_dict(template, {**NEWER_FIELDS, **tree})
        self.state = jax.tree_util.tree_map(jnp.asarray, state)
        self.buffer.load_state_dict(loaded.replay)
        set_rng_state(self.buffer.rng, m["rng"]["replay"])
        self.evaluator.load_state(m["rng"]["eval"])
        if "goal_stats" in m["rng"]:
            set_rng_state(self.goal_rng, m["rng"]["goal_stats"])
        if self.stats is not None:
            self.stats.load_state(m["obs_stats"])
        c = m["counters"]
        self.step = c["step"]
        self.metrics = None if c.get("metrics") is None else Metrics(*(jnp.float32(x) for x in c["metrics"]))
        self.clip_share = c.get("clip_share") or {}
