"""The actors engine (``--actors K``): K Ray actors step the envs while the learner learns.

Each actor holds ``--num-envs`` env *slots*; slot ``i`` of the run's ``M = K * num_envs`` is the same whichever actor
holds it: its env seeds (``seed + i``, then from its own generator), its exploration noise (its own OU state and
JAX key) and its warm-up draws belong to the slot, and its action comes from a batch-of-one forward pass of the
actor network. So K = 1 with 4 envs and K = 4 with 1 env each collect the same bits.

The learner process keeps everything else: the TrainState and its update, the replay (one buffer per slot), the
observation statistics, the noise-free evaluations, and through the host (host.py) the logs, checkpoints and
stops. A *cycle* is ``--actor-steps`` env steps of every slot.

- ``--collect pipelined`` (deterministic): while the learner runs the updates due on the data up to cycle k, the
  actors collect cycle k+1 with the policy from the start of cycle k. The lag is one cycle, fixed. A checkpoint
  (always at a cycle boundary) holds the policy of the cycle in flight and every slot's state at its start (reset
  seed and actions since, rebuilt on resume as ``--num-envs`` does), so a resumed run, or a killed actor's
  replacement, collects that cycle again to the same bits.
- ``--collect async`` (Ape-X style): each actor collects cycle after cycle with the newest policy the learner has
  published; the learner adds whatever has arrived and runs every update unit due on it, so updates never run
  ahead of the data and lag it by at most the chunks in flight (one per actor). Not bitwise reproducible. A resume
  continues from the learner's checkpoint; the chunks in flight are collected again.

Ray itself is imported only by ``build`` (through raynode), never by ``train``'s import.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import socket
import sys
import time
from functools import partial
from pathlib import Path
from typing import Any

import jax
import numpy as np
from flax import serialization

from ddpgx import checkpoint as ckpt
from ddpgx import runfiles
from ddpgx.collect import ASYNC_PROCESS_BYTES, EnvProcessDied
from ddpgx.config import Config
from ddpgx.envs import make_run_env, reset_checked, scaler_for
from ddpgx.errors import TrainingDiverged, UserError, actions_not_finite, describe, env_not_finite
from ddpgx.evaluate import EVAL_SEED_OFFSET, Evaluator
from ddpgx.goals import goal_layout
from ddpgx.gymsetup import (
    LearnerSide,
    check_async_env,
    check_first_step,
    checkpoint_check,
    make_buffer,
)
from ddpgx.host import Episode, LogColumns, LossRow, Snapshot
from ddpgx.learner import (
    Hyper,
    Learner,
    Metrics,
    act,
    build_networks,
    enable_compile_cache,
    memory_need,
)
from ddpgx.memory import Need, check_memory
from ddpgx.obsnorm import Normalizer
from ddpgx.raynode import check_address, import_ray, node_of_this_process, start_ray
from ddpgx.replay import PerEnvReplay, ReplayBuffer
from ddpgx.rngstate import rng_state, set_rng_state
from ddpgx.run import RunDir
from ddpgx.schedule import UpdateSchedule

MIN_CYCLE = 500  # env steps of all slots per cycle at least (auto --actor-steps): Ray's round trip is ~ms
SLOT_KEY_TAG = 1000  # slot i's exploration key is fold_in(PRNGKey(seed), SLOT_KEY_TAG + i)
POLL_S = 1.0  # how often the learner looks for a dead actor while it waits
MAX_REPLACEMENTS = 3  # an actor that dies this many times in a row on the same request: the env crashes there
# an answer later than STALL_S and than STALL_FACTOR x the slowest answer so far is said once
STALL_S, STALL_FACTOR = 120.0, 10.0


def cycle_steps(cfg: Config) -> int:
    """Env steps each slot takes per cycle: ``--actor-steps``, or max(update_every, MIN_CYCLE) over the slots,
    rounded up (whole update units when the slots divide it)."""
    if cfg.actor_steps:
        return cfg.actor_steps
    m = cfg.actors * cfg.num_envs
    return max(1, -(-max(cfg.update_every, MIN_CYCLE) // m))


# ------------------------------------------------------------------------------------------ one env slot


class EnvSlot:
    """Env slot ``index``: its env, its episode (reset seed and env actions since, so it can be rebuilt), its noise
    and its random streams. ``state()`` is JSON-ready; ``load`` rebuilds the slot from one, bit for bit."""

    def __init__(self, cfg: Config, index: int, act_dim: int) -> None:
        self.index = index
        self.env = make_run_env(cfg)
        self.scaler = scaler_for(self.env)
        self.goal = goal_layout(self.env) is not None
        self.name = self.env.spec.id if self.env.spec is not None else type(self.env.unwrapped).__name__
        self.obs = np.zeros(self.env.observation_space.shape[0], np.float32)
        self.need_reset = True
        # a reset's NaN before the slot's first episode: the env is broken, nothing learned
        self.started = False
        self.ep_return, self.ep_len = 0.0, 0
        self.seed: int | None = cfg.seed + index
        self.actions: list[np.ndarray] = []
        self.seed_rng = np.random.default_rng([cfg.seed, 17, index])
        self.warm_rng = np.random.default_rng([cfg.seed, 7, index])
        self.noise = np.zeros(act_dim, np.float32)
        self.key = np.asarray(jax.random.fold_in(jax.random.PRNGKey(cfg.seed), SLOT_KEY_TAG + index))

    def reset(self) -> bool:
        """Start an episode if the last one ended; True if it did."""
        if not self.need_reset:
            return False
        self.obs = reset_checked(self.env, self.seed, first=not self.started)
        self.started = True
        self.actions, self.need_reset = [], False
        self.noise = np.zeros_like(self.noise)  # the OU process restarts with each episode
        return True

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        env_action = self.scaler.to_env(action)
        next_obs, reward, term, trunc, info = self.env.step(env_action)
        self.actions.append(np.asarray(env_action, np.float64))
        next_obs = np.asarray(next_obs, np.float32)
        self.ep_return += float(reward)
        self.ep_len += 1
        done = bool(term or trunc)
        if done:
            self.end_episode()
        return next_obs, float(reward), bool(term), done, info

    def end_episode(self) -> None:
        self.need_reset = True
        self.ep_return, self.ep_len = 0.0, 0
        self.seed = int(self.seed_rng.integers(0, 2**31 - 1))

    def state(self) -> dict[str, Any]:
        return {
            "obs": self.obs.tolist(),
            "need_reset": self.need_reset,
            "ep_return": self.ep_return,
            "ep_len": self.ep_len,
            "seed": self.seed,
            "actions": [a.tolist() for a in self.actions],
            "seed_rng": rng_state(self.seed_rng),
            "warm_rng": rng_state(self.warm_rng),
            "noise": self.noise.tolist(),
            "key": np.asarray(self.key).tolist(),
        }

    def load(self, st: dict[str, Any]) -> None:
        self.started = True  # a slot with a state has had its first episode
        self.need_reset, self.ep_return, self.ep_len = bool(st["need_reset"]), st["ep_return"], st["ep_len"]
        self.seed = st["seed"]
        set_rng_state(self.seed_rng, st["seed_rng"])
        set_rng_state(self.warm_rng, st["warm_rng"])
        self.noise = np.asarray(st["noise"], np.float32)
        self.key = np.asarray(st["key"], np.uint32)
        saved = np.asarray(st["obs"], np.float32)
        self.actions = [np.asarray(a, np.float64) for a in st["actions"]]
        if not self.need_reset:  # rebuild the episode in progress from its reset seed and actions
            obs, _ = self.env.reset(seed=self.seed)
            for a in self.actions:
                obs, *_ = self.env.step(a)
            if np.asarray(obs, np.float32).tobytes() != saved.tobytes():
                raise UserError(
                    f"{self.name} is not deterministic given its reset seed and actions: env {self.index} rebuilt to "
                    "a different observation, so this run cannot continue its collection exactly"
                )
        self.obs = saved


def close_episode(st: dict[str, Any]) -> dict[str, Any]:
    """A slot state whose episode in progress is over (the run's end: an extension starts new episodes), drawing
    the next reset seed as the slot itself would."""
    if st["need_reset"]:
        return st
    rng = np.random.default_rng()
    set_rng_state(rng, st["seed_rng"])
    seed = int(rng.integers(0, 2**31 - 1))
    return {**st, "need_reset": True, "ep_return": 0.0, "ep_len": 0, "seed": seed, "actions": [],
            "seed_rng": rng_state(rng)}  # fmt: skip


# ------------------------------------------------------------------------------------------ the Ray actor


class CollectorActor:
    """What runs in one Ray actor: slots ``indices`` of the run's ``total`` and a compiled batch-of-one policy."""

    def __init__(self, cfg: Config, indices: list[int], total: int, path: list[str]) -> None:
        for p in path:  # an env module found next to where the run started is found here too
            if p not in sys.path:
                sys.path.append(p)
        self.cfg, self.total = cfg, total
        probe = make_run_env(cfg)
        act_dim = probe.action_space.shape[0]
        probe.close()
        self.slots = [EnvSlot(cfg, i, act_dim) for i in indices]
        actor, _ = build_networks(cfg, act_dim)
        self.act = jax.jit(partial(act, actor, Hyper.of(cfg)))
        self.act_dim = act_dim

    def where(self) -> dict[str, Any]:
        ip, node = node_of_this_process()
        return {"host": socket.gethostname(), "ip": ip, "node": node, "pid": os.getpid()}

    def load(self, states: list[dict[str, Any] | None]) -> bool:
        for slot, st in zip(self.slots, states, strict=True):
            if st is not None:
                slot.load(st)
        return True

    def close_episodes(self) -> list[dict[str, Any]]:
        for slot in self.slots:
            if not slot.need_reset:
                slot.end_episode()
        return [slot.state() for slot in self.slots]

    def collect(
        self, policy: Any, steps: int, start: int, learning_starts: int, own: bool = False
    ) -> dict[str, Any]:
        """``steps`` env steps of every slot, step-major; transition (t, slot i) is env step
        ``start + t * total + i + 1`` (uniform actions up to ``learning_starts``); ``own`` (async): this actor's
        slots alone are counted, transition (t, j-th slot here) is env step ``start + t * slots + j + 1``. Returns
        the transitions (t, slot, ...), the episodes that ended, and each slot's state after the chunk; a
        non-finite env value is returned as ``error`` (the learner stops on it), not raised (that would read as a
        dead actor)."""
        m, d = len(self.slots), self.slots[0].obs.shape[0]
        out = {
            "obs": np.zeros((steps, m, d), np.float32),
            "action": np.zeros((steps, m, self.act_dim), np.float32),
            "reward": np.zeros((steps, m), np.float64),
            "next_obs": np.zeros((steps, m, d), np.float32),
            "terminated": np.zeros((steps, m), bool),
            "done": np.zeros((steps, m), bool),
            "first": np.zeros((steps, m), bool),
        }
        ends: list[tuple[int, int, float, int, float | None]] = []  # (t, slot index, return, length, success)
        explore: dict[str, Any] = {}
        for t in range(steps):
            for j, slot in enumerate(self.slots):
                step = start + t * m + j + 1 if own else start + t * self.total + slot.index + 1
                try:
                    out["first"][t, j] = slot.reset()
                except TrainingDiverged as e:  # a NaN reset after the first: the learner stops on it
                    return {"error": str(e)}
                if step <= learning_starts:
                    a = slot.warm_rng.uniform(-1.0, 1.0, self.act_dim).astype(np.float32)
                else:
                    a_dev, noise, key = self.act(policy, explore, slot.obs, slot.noise, slot.key)
                    a, slot.noise, slot.key = np.asarray(a_dev), np.asarray(noise), np.asarray(key)
                ret, length = slot.ep_return, slot.ep_len
                if not np.isfinite(a).all():
                    return {"error": str(actions_not_finite(step))}
                next_obs, reward, term, done, info = slot.step(a)
                if not (np.isfinite(next_obs).all() and math.isfinite(reward)):
                    return {"error": str(env_not_finite(step))}
                out["obs"][t, j], out["action"][t, j], out["reward"][t, j] = slot.obs, a, reward
                out["next_obs"][t, j], out["terminated"][t, j], out["done"][t, j] = next_obs, term, done
                slot.obs = next_obs
                if done:
                    success = None
                    if slot.goal:
                        v = info.get("is_success")
                        success = float("nan") if v is None else float(v)
                    ends.append((t, slot.index, ret + reward, length + 1, success))
        out["ends"] = ends
        out["states"] = [slot.state() for slot in self.slots]
        return out


# ------------------------------------------------------------------------------------------ set-up and checks


def memory_needs(cfg: Config, obs_dim: int, act_dim: int) -> list[Need]:
    """The learner's networks and replay (this process) and the actors' env processes (the cluster's)."""
    m = cfg.actors * cfg.num_envs
    rows = min(cfg.buffer_size + 1, 2 * cfg.total_steps + 1)
    return [memory_need(cfg, obs_dim, act_dim), ReplayBuffer.need(rows + m, obs_dim, act_dim)]


def check_cluster(ray: Any, cfg: Config) -> None:
    """The actors must fit what the cluster has free: their CPUs, and their processes' memory."""
    free = ray.available_resources()
    cpus = cfg.actors * cfg.actor_cpus
    where = f"the Ray cluster at {cfg.actor_address}" if cfg.actor_address else "this Ray cluster"
    if cpus > free.get("CPU", 0.0) + 1e-9:
        raise UserError(
            f"--actors {cfg.actors} x --actor-cpus {cfg.actor_cpus:g} needs {cpus:g} CPUs; {where} has "
            f"{free.get('CPU', 0.0):g} free: use fewer --actors, or --actor-cpus 0 to place them without reserving"
        )
    need = cfg.actors * max(1, cfg.num_envs) * ASYNC_PROCESS_BYTES
    mem = free.get("memory")
    if mem is not None and need > mem:
        raise UserError(
            f"--actors {cfg.actors} x --num-envs {cfg.num_envs} envs need about {need / 2**30:.1f} GiB; {where} has "
            f"{mem / 2**30:.1f} GiB free: use fewer actors or envs"
        )


def check_actor_env(cfg: Config) -> None:
    check_async_env(cfg, "--actors", "use --actors 0")


def build(
    cfg: Config, resume: bool, closing: contextlib.ExitStack
) -> tuple[ActorsEngine, RunDir, ckpt.Loaded | None]:
    """Check everything checkable (the env made in a fresh process, the cluster reached and large enough), then
    create (or lock and load) the run directory, then start the actors."""
    ray = import_ray(cfg.actor_address, "ddpgx train --actors")
    if cfg.actor_address:
        check_address(cfg.actor_address, "--actor-address")
    run = RunDir(cfg, resume)
    if cfg.compile_cache:
        enable_compile_cache(cfg.compile_cache)
    env = make_run_env(cfg)
    closing.callback(env.close)
    check_first_step(cfg)
    check_actor_env(cfg)
    obs_dim, act_dim = env.observation_space.shape[0], env.action_space.shape[0]
    check_memory(memory_needs(cfg, obs_dim, act_dim))
    layout = goal_layout(env)
    if cfg.target_success is not None and layout is None:
        raise UserError(
            f"--target-success needs a goal env that reports info['is_success']; {cfg.env} is not one"
        )
    m = cfg.actors * cfg.num_envs
    # each env slot carries its own exploration noise: the TrainState's (unused here) is shaped for one env, so
    # that a checkpoint does not depend on how the envs are spread over actors (a resume may re-spread them)
    learner = Learner(dataclasses.replace(cfg, num_envs=1), obs_dim, act_dim)
    state = learner.init(cfg.seed)
    buffer = make_buffer(cfg, env, obs_dim, act_dim, m)
    evaluator = Evaluator(partial(make_run_env, cfg), cfg.eval_episodes, seed=cfg.seed + EVAL_SEED_OFFSET)
    closing.callback(evaluator.close)
    if start_ray(ray, cfg.actor_address, min_cpus=math.ceil(cfg.actors * cfg.actor_cpus)):
        closing.callback(ray.shutdown)
    check_cluster(ray, cfg)
    closing.callback(run.close)
    check = checkpoint_check(state, buffer, cfg.obs_norm, cfg.obs_norm and cfg.goal_stats == "relabelled")
    inflight_template = ckpt.to_numpy(serialization.to_state_dict(state.actor))

    def check_all(loaded: ckpt.Loaded) -> str | None:
        st = dict(loaded.state)
        inflight = st.pop(INFLIGHT, None)
        part = loaded.manifest.get("actors")
        if inflight is None or not isinstance(part, dict) or len(part.get("slots", [])) != m:
            return f"the checkpoint lacks the state of the {m} actor env slots (--actors {cfg.actors} x --num-envs " \
                   f"{cfg.num_envs})"  # fmt: skip
        return ckpt.tree_mismatch(inflight_template, inflight) or check(dataclasses.replace(loaded, state=st))

    loaded = run.open(runfiles.run_manifest(cfg, env), check=check_all)
    engine = ActorsEngine(cfg, ray, learner, state, buffer, evaluator, layout, loaded, obs_dim)
    closing.callback(engine.close)
    return engine, run, loaded


INFLIGHT = "inflight_actor"  # the checkpoint's state tree: the actor variables of the cycle in flight


# ------------------------------------------------------------------------------------------ the engine


class ActorsEngine(LearnerSide):
    """Learner + replay in this process, collection in K Ray actors (host.Engine)."""

    def __init__(
        self,
        cfg: Config,
        ray: Any,
        learner: Learner,
        state: Any,
        buffer: PerEnvReplay,
        evaluator: Evaluator,
        layout: Any,
        loaded: ckpt.Loaded | None,
        obs_dim: int,
    ) -> None:
        self.cfg, self.ray, self.learner, self.buffer, self.evaluator = cfg, ray, learner, buffer, evaluator
        self.k, self.m = cfg.actors, cfg.actors * cfg.num_envs
        self.t = cycle_steps(cfg)
        self.pipelined = cfg.collect == "pipelined"
        self.goal = layout is not None
        self.stats = Normalizer.for_config(cfg, obs_dim, layout) if cfg.obs_norm else None
        self.goal_rng = np.random.default_rng([cfg.seed, 11])
        self.schedule = UpdateSchedule.of(cfg)
        self.metrics: Metrics | None = None
        self.clip_share: dict[str, float] = {}
        self.step, self.safe = 0, True
        self.units_done = 0  # async: update units run so far, in calls of one chunk's units
        self.call_units = max(1, self.t * cfg.num_envs // self.schedule.update_every)
        self.columns = LogColumns(
            self.goal, tuple(self.stats.groups()) if self.stats is not None else (), self.m > 1
        )
        # each slot's state at the end of its last chunk (None: not started)
        self.slot_states: list[dict[str, Any] | None] = [None] * self.m
        self.inflight: dict[str, Any] | None = None  # pipelined: the cycle in flight (steps, start)
        self.inflight_actor: Any = None
        if loaded is not None:
            self._restore(state, loaded)
        else:
            self.state = state
        self.remote = ray.remote(CollectorActor)
        self.workers: list[Any] = [None] * self.k
        self.loads: list[Any] = [None] * self.k
        self.log = Path(cfg.run_dir) / "actors.log"
        self.requests: dict[int, tuple[Any, tuple]] = {}  # actor -> (ref, its collect arguments)
        self.deaths = [0] * self.k  # each actor's deaths since its last answer
        self.asked_at: dict[int, float] = {}  # when each request in flight was made (time.monotonic)
        self.slowest = 0.0  # the longest an answer has taken, seconds
        self.stalled: set[int] = set()  # actors said to be late, until they answer
        # the slots' states where the requests in flight start (what a replacement actor loads)
        self.req_states: list[dict[str, Any] | None] = list(self.slot_states)
        # the caller registers close() only once this returns: no actor outlives a failure to start
        try:
            for a in range(self.k):
                self._start_actor(a)
            self._say_where()
        except BaseException:
            self.close()
            raise
        self.policy_ref: Any = None
        if self.pipelined:
            if self.inflight is not None:  # a checkpoint's cycle in flight: collect it again
                self._request_all(
                    self.ray.put(self.inflight_actor), self.inflight["steps"], self.inflight["start"]
                )
            else:
                self._request_next()
        else:
            self.received = self.requested = self.step  # env steps arrived; asked for (arrived and in flight)
            self._publish()
            for a in range(self.k):
                self._request_more(a)

    # -- actors
    def _slice(self, a: int) -> range:
        n = self.cfg.num_envs
        return range(a * n, (a + 1) * n)

    def _start_actor(self, a: int) -> None:
        # one thread each: K actors on K cores, and a policy forward pass that is the same bits on any node
        env_vars = {v: "1" for v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}
        env_vars["XLA_FLAGS"] = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
        env_vars["JAX_PLATFORMS"] = "cpu"
        worker = self.remote.options(
            num_cpus=self.cfg.actor_cpus, max_restarts=0, runtime_env={"env_vars": env_vars}
        ).remote(self.cfg, list(self._slice(a)), self.m, list(sys.path))
        source = self.req_states if self.pipelined else self.slot_states
        states = [source[i] for i in self._slice(a)]
        # the slots where its next request starts (an actor's calls run in the order they were made)
        self.loads[a] = worker.load.remote(states) if any(s is not None for s in states) else None
        self.workers[a] = worker

    def _say_where(self, which: list[int] | None = None) -> None:
        """Wait for actors ``which`` (all) to start and load their slots; say where each runs (stderr and
        actors.log in the run directory)."""
        which = list(range(self.k)) if which is None else which
        refs = [self.workers[a].where.remote() for a in which]
        loads = [self.loads[a] for a in which if self.loads[a] is not None]
        try:
            self.ray.get(loads, timeout=600)
            places = self.ray.get(refs, timeout=600)
        except self.ray.exceptions.RayTaskError as e:  # a slot that cannot be rebuilt: the env's one line
            raise UserError(describe_ray(e).partition(": ")[2] or describe_ray(e)) from None
        except Exception as e:  # noqa: BLE001 - an actor that cannot start: one line
            raise UserError(f"--actors: an actor could not start ({describe_ray(e)})") from None
        for a, p in zip(which, places, strict=True):
            s = self._slice(a)
            envs = f"env {s[0]}" if len(s) == 1 else f"envs {s[0]}-{s[-1]}"
            self._note(
                f"actor {a} ({envs}) runs on {p['host']} ({p['ip']}, node {p['node'][:12]}), pid {p['pid']}"
            )

    def _note(self, line: str) -> None:
        print(f"ddpgx: {line}", file=sys.stderr)
        with open(self.log, "a") as f:
            f.write(f"step {self.step}: {line}\n")

    def _request(self, a: int, policy_ref: Any, steps: int, start: int, *more: Any) -> None:
        self._send(a, (policy_ref, steps, start, self.cfg.learning_starts, *more))

    def _send(self, a: int, args: tuple) -> None:
        """Actor ``a`` collects ``args`` (CollectorActor.collect's); the request is timed from now."""
        self.requests[a] = (self.workers[a].collect.remote(*args), args)
        self.asked_at[a] = time.monotonic()
        self.stalled.discard(a)

    def _look_for_stalls(self) -> None:
        """An actor alive but not answering (an env stuck in its own code, a node cut off but not yet declared
        lost) is said once, with what to do: the learner cannot tell it from a slow one and keeps waiting."""
        now = time.monotonic()
        late = max(STALL_S, STALL_FACTOR * self.slowest)
        for a in sorted(self.requests):
            waited = now - self.asked_at.get(a, now)
            if a not in self.stalled and waited > late:
                self.stalled.add(a)
                self._note(
                    f"actor {a} has not answered for {waited:.0f} s (its slowest answer before took "
                    f"{self.slowest:.0f} s): its envs may be stuck; Ctrl-C twice stops the run, and "
                    "`ddpgx train --resume` continues from its last checkpoint"
                )

    def _request_more(self, a: int) -> None:
        """Async: ask actor ``a`` for its next chunk with the newest policy, numbered after every step asked for
        so far, and no step past the run's end (the last chunks are shorter; none once the end is asked for)."""
        n = self.cfg.num_envs
        # rounded up: a run resumed on another K x N split may have a step that is not a multiple of N (its last
        # chunk then goes past the end by less than N steps, which the step count does not show)
        steps = min(self.t, -(-(self.cfg.total_steps - self.requested) // n))
        if steps > 0:
            self._request(a, self.policy_ref, steps, self.requested, True)
            self.requested += steps * n

    def _request_all(self, policy_ref: Any, steps: int, start: int) -> None:
        for a in range(self.k):
            self._request(a, policy_ref, steps, start)

    def _request_next(self) -> None:
        """Pipelined: ask the actors for the next cycle with the current policy (before this cycle's updates)."""
        left = self.cfg.total_steps - self.step
        if left <= 0:
            self.inflight = None
            return
        steps = min(self.t, -(-left // self.m))
        self._publish()
        self.req_states = list(self.slot_states)
        self.inflight = {"steps": steps, "start": self.step}
        self._request_all(self.policy_ref, steps, self.step)

    def _publish(self) -> None:
        """The policy the actors act with from now: a host copy (the update donates the state's buffers)."""
        self.inflight_actor = jax.device_get(self.fresh().actor)
        self.policy_ref = self.ray.put(self.inflight_actor)

    def _replace(self, a: int, why: str) -> None:
        """Actor ``a`` is gone: a new one takes its slots from where its request started and collects it again."""
        _, args = self.requests[a]
        self.deaths[a] += 1
        if self.deaths[a] >= MAX_REPLACEMENTS:
            raise EnvProcessDied(
                f"actor {a} died {self.deaths[a]} times in a row on the same chunk of its envs ({why}): the env "
                "likely crashes its process there, or the node runs out of memory"
            )
        self._note(f"actor {a} stopped ({why}); a new actor collects its envs' share of this cycle again")
        if not self.pipelined:  # async: it goes on from its slots' last received state with the newest policy
            args = (self.policy_ref, *args[1:])
        try:
            self._start_actor(a)
            self._say_where([a])
            self._send(a, args)
        except (UserError, self.ray.exceptions.RayError, ConnectionError) as e:  # the cluster itself is gone
            why = str(e) if isinstance(e, UserError) else describe_ray(e)
            raise EnvProcessDied(f"actor {a} died and could not be replaced ({why})") from None

    def _take(self, a: int) -> dict[str, Any] | None:
        """Actor ``a``'s answer, or None if it died (it is replaced and asked again)."""
        ref, _ = self.requests[a]
        try:
            out = self.ray.get(ref)
        except (
            self.ray.exceptions.RayActorError
        ) as e:  # its process died (killed, crashed) or its node is lost
            why = "its process or node died" if "died" in str(e) else describe_ray(e)
            self._replace(a, why)
            return None
        except self.ray.exceptions.RayError as e:  # the env or the policy raised inside the actor
            raise UserError(f"actor {a} failed: {describe_ray(e)}") from None
        del self.requests[a]
        self.deaths[a] = 0
        took = time.monotonic() - self.asked_at.pop(a, time.monotonic())
        if a in self.stalled:
            self.stalled.discard(a)
            self._note(f"actor {a} answered after {took:.0f} s")
        self.slowest = max(self.slowest, took)
        if "error" in out:
            raise TrainingDiverged(out["error"])
        return out

    def _gather_all(self) -> list[dict[str, Any]]:
        """Pipelined: every actor's chunk of the cycle in flight (dead actors replaced until they answer)."""
        got: dict[int, dict[str, Any]] = {}
        while len(got) < self.k:
            waiting = {self.requests[a][0]: a for a in range(self.k) if a not in got}
            ready, _ = self.ray.wait(list(waiting), num_returns=1, timeout=POLL_S)
            if not ready:
                self._look_for_stalls()
            for ref in ready:
                a = waiting[ref]
                out = self._take(a)
                if out is not None:
                    got[a] = out
        return [got[a] for a in range(self.k)]

    def _gather_some(self) -> list[tuple[int, dict[str, Any]]]:
        """Async: the chunks that have arrived (waiting for one at least), each actor asked again at once."""
        got: list[tuple[int, dict[str, Any]]] = []
        while not got:
            assert self.requests, "advance past the run's end"
            refs = {self.requests[a][0]: a for a in self.requests}
            ready, _ = self.ray.wait(list(refs), num_returns=1, timeout=POLL_S)
            if ready:
                ready, _ = self.ray.wait(list(refs), num_returns=len(refs), timeout=0)
            else:
                self._look_for_stalls()
            for a in sorted(refs[r] for r in ready):
                out = self._take(a)
                if out is not None:
                    got.append((a, out))
                    self._request_more(a)
        return got

    # -- the learner's side
    def _store(self, chunks: list[tuple[list[int], dict[str, Any]]], start: int) -> list[Episode]:
        """Add chunks to the replay and the statistics, step-major in slot order (so any K gives the same)."""
        cols = {key: np.concatenate([c[key] for _, c in chunks], axis=1)
                for key in ("obs", "action", "reward", "next_obs", "terminated", "done", "first")}  # fmt: skip
        slots = [i for idx, _ in chunks for i in idx]
        stats, buf = self.stats, self.buffer
        ends = sorted((t, i, r, n, s) for _, c in chunks for (t, i, r, n, s) in c["ends"])
        end_at = {(t, i): (r, n, s) for t, i, r, n, s in ends}
        episodes = []
        steps = cols["obs"].shape[0]
        order = np.argsort(slots, kind="stable")
        for t in range(steps):
            for j in order:
                i = slots[j]
                if stats is not None:
                    if cols["first"][t, j]:
                        stats.push(cols["obs"][t, j])
                    stats.push(cols["next_obs"][t, j])
                buf.add(i, cols["obs"][t, j], cols["action"][t, j], cols["reward"][t, j], cols["next_obs"][t, j],
                        cols["terminated"][t, j], cols["done"][t, j])  # fmt: skip
                if (t, i) in end_at:
                    r, n, s = end_at[(t, i)]
                    if stats is not None and stats.goal is not None:
                        stats.push_goals(buf.last_episode_goals(i, n, self.goal_rng))
                    # pipelined: slot i's place among all M; async: its place in this chunk's slots
                    place = i if self.pipelined else int(j)
                    episodes.append(Episode(0, start + t * (self.m if self.pipelined else len(slots)) + place + 1,
                                            r, n, s, i))  # fmt: skip
        for idx, c in chunks:
            for i, st in zip(idx, c["states"], strict=True):
                self.slot_states[i] = st
        return episodes

    def _learn(self, before: int, step: int) -> None:
        """The update units due at env steps ``before + 1 .. step``, as one compiled call (pipelined: a cycle's
        units, the same count every cycle). Async: the due units in calls of one chunk's units each, so that
        chunks arriving together do not compile a new call shape; the few left wait for the next chunk (or the
        run's end), which keeps the updates within one chunk of the asked ratio."""
        if self.pipelined:
            self._update(self.schedule.units_between(before, step), before, step)
            return
        due = self.schedule.units_by(step) - self.units_done
        size = due if step >= self.cfg.total_steps else self.call_units
        while due >= size > 0:
            self._update(size, before, step)
            self.units_done += size
            due -= size

    def _update(self, units: int, before: int, step: int) -> None:
        cfg = self.cfg
        if not units:
            return
        batches = self.buffer.sample(
            cfg.batch_size, units * self.schedule.gradient_steps, cfg.n_step, cfg.gamma
        )
        self.state, new = self.learner.update(self.state, batches)
        if self.stats is not None:
            self.clip_share = self.stats.clip_share(batches.obs[-1], cfg.obs_clip)
        # with policy_delay, a call may not update the actor (its actor loss is nan): keep the last that did
        keep = self.metrics is not None and not self.schedule.actor_in_call(before, step)
        self.metrics = new._replace(actor_loss=self.metrics.actor_loss) if keep else new

    # -- host.Engine
    def advance(self, until: int) -> list[Episode]:
        """One cycle (pipelined) or the chunks that have arrived (async), then the updates due on them."""
        before = self.step
        if self.pipelined:
            assert self.inflight is not None, "advance past the run's end"
            outs = self._gather_all()
            chunks = [(list(self._slice(a)), out) for a, out in enumerate(outs)]
            episodes = self._store(chunks, before)
            self.step = before + self.inflight["steps"] * self.m
            self._request_next()  # the actors go on with the policy from before this cycle's updates
        else:
            got = self._gather_some()
            episodes = []
            for a, out in got:
                episodes += self._store([(list(self._slice(a)), out)], self.received)
                self.received += out["obs"].shape[0] * self.cfg.num_envs
            self.step = min(self.received, self.cfg.total_steps)
        self._learn(before, self.step)
        if not self.pipelined:
            self._publish()
        return episodes

    def losses(self, interval_s: float) -> list[LossRow | None]:
        return self.loss_rows(None)

    def snapshots(self) -> list[Snapshot]:
        """The TrainState with the cycle in flight's policy beside it, the replay, and in the manifest every
        slot's state where the cycle in flight started (pipelined) or after its last received chunk (async)."""
        inflight_actor = self.inflight_actor if self.inflight is not None else self.state.actor
        tree = {
            **serialization.to_state_dict(self.state),
            INFLIGHT: serialization.to_state_dict(inflight_actor),
        }
        slots = self.req_states if self.pipelined else self.slot_states
        manifest = {
            "rng": self.learner_rngs(),
            **self.learner_manifest(),
            "actors": {
                "slots": slots,
                "inflight": self.inflight if self.pipelined else None,
                "collect": self.cfg.collect,
                "units_done": self.units_done,
            },  # fmt: skip
        }
        return [Snapshot(tree, self.buffer.state_dict(), manifest, self.learner_counters())]

    def _restore(self, state: Any, loaded: ckpt.Loaded) -> None:
        tree = dict(loaded.state)
        inflight_actor = tree.pop(INFLIGHT)
        self.restore_learner(state, tree, loaded)
        self.inflight_actor = serialization.from_state_dict(self.state.actor, inflight_actor)
        part = loaded.manifest["actors"]
        self.slot_states = list(part["slots"])
        self.inflight = part.get("inflight") if self.pipelined else None
        self.units_done = int(part.get("units_done", 0))

    def end_episodes(self) -> None:
        """The run's end: the episodes in progress are closed in the replay and in the slots (an extension starts
        new ones); an async run's chunks in flight are dropped."""
        self.requests = {}  # async: the chunks in flight are dropped (their actors end with the run)
        self.inflight = None
        for i, st in enumerate(self.slot_states):
            if st is not None and not st["need_reset"]:
                self.buffer.end_episode(i)
                self.slot_states[i] = close_episode(st)
        self.req_states = list(self.slot_states)

    def close(self) -> None:
        for w in self.workers:
            if w is not None:
                with contextlib.suppress(Exception):
                    self.ray.kill(w)
        self.workers = []


def describe_ray(e: BaseException) -> str:
    """A Ray error in one line: its cause's last line."""
    cause = getattr(e, "cause", None) or e
    lines = [ln for ln in str(cause).strip().splitlines() if ln.strip()]
    return f"{type(cause).__name__}: {lines[-1] if lines else ''}"[:300] if lines else describe(cause)
