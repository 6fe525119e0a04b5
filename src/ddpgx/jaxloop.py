"""The whole training loop as one compiled program, for JAX-native envs (``--env gymnax:Pendulum-v1``).

For an env whose step is a JAX function (jaxenvs.py), everything the Python engine (pyengine.py) does per env step
runs inside one ``jax.lax.scan``: acting (uniform warm-up, then mu(s) + noise), N env steps, the replay write (a
ring of JAX arrays), the update units the schedule says are due (each: ``gradient_steps`` batches sampled in the
graph and ``learner.update_many``, the very function the Python engine calls) and the episode bookkeeping. Many
seeds run as one program: the iteration is ``jax.vmap``-ed over a leading seed axis of the carry, while the step
counter, and so every "is an update / the warm-up due" decision, is shared and stays a real branch; one seed runs
unbatched, so its own branches (policy delay's) stay branches too. A row of non-finite env data never enters the
ring: it is flagged, and the engine stops the run at the chunk's end.

The program runs in chunks of ``--chunk-steps`` env steps. ``CompiledEngine`` is the engine host.py drives: between
chunks the host writes episodes.csv, train.csv and eval.csv, has the engine evaluate (noise-free, on separate env
instances, in the graph too), checkpoints and draws the progress bar. Chunks end where the host has something to do (a log, an evaluation, a checkpoint, the run's end),
and a chunk shorter than the compiled length skips its tail with a branch, so one program serves every chunk and
the chunk size never changes a bit of the results.

The carry (TrainState, replay ring, env states, keys, episode sums) is the checkpoint: each seed's slice goes to
that seed's own run directory, and ``--resume`` continues all seeds bitwise where the uninterrupted run would be.
A group resumes from the newest step all its seeds have, so no seed's checkpoint is deleted before every seed has
written the newer one (``GroupCheckpoints``: ``--keep-checkpoints`` counts the group's complete checkpoints); a
group whose group.json is lost is rebuilt from its seeds' config.json files.

What differs from the Python loop: every random draw comes from JAX keys (env resets and steps, warm-up actions,
replay indices; the networks are initialized by the same numpy draws), one replay ring takes all N envs' rows in
env order, and with N > update_every each due unit is its own ``update_many`` call (``--target-update call`` then
moves the targets once per unit, not once per iteration).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import shutil
import sys
from collections.abc import Callable, Iterator, Mapping
from functools import partial
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import serialization, struct
from jax._src import xla_bridge
from jax.sharding import Mesh, NamedSharding, PartitionSpec, Sharding, SingleDeviceSharding

from ddpgx import checkpoint as ckpt
from ddpgx import runfiles
from ddpgx.config import Config, env_name
from ddpgx.envs import ActionScaler
from ddpgx.errors import TrainingDiverged, UserError, actions_not_finite, env_not_finite, warn
from ddpgx.evaluate import EVAL_SEED_OFFSET
from ddpgx.host import Episode, EvalRow, LogColumns, LossRow, Snapshot, check_eval_returns, counters_problem
from ddpgx.jaxenvs import JaxEnv, JaxGymEnv, checked_jax_env
from ddpgx.learner import (
    NEWER_FIELDS,
    Learner,
    TrainState,
    act,
    act_greedy,
    enable_compile_cache,
    memory_need,
    policy_vars,
    update_many,
)
from ddpgx.memory import HOST, Need, check_memory, jax_device
from ddpgx.replay import Batch
from ddpgx.run import (
    FINAL_PARAMS,
    RESUMABLE_CHANGES,
    FinalRecovered,
    RunDir,
    check_new_run_dir,
    config_from_dict,
    finished_for_good,
    load_run_config,
)
from ddpgx.schedule import UpdateSchedule

GROUP_FILE = "group.json"  # --num-seeds > 1: the group directory's record of its seeds
LOOP_KEY_TAG = (
    17  # the loop's key (envs, warm-up, replay) is fold_in(PRNGKey(seed), 17): apart from TrainState.key
)

NOT_BAD, BAD_ENV, BAD_ACTION = 0, 1, 2  # per stepped row: fine, the env's output non-finite, the action's


# ------------------------------------------------------------------------------------------ the replay ring


class Ring(struct.PyTreeNode):
    """The transition ring as JAX arrays: row ``ptr`` is written next; ``size`` rows are filled."""

    obs: jax.Array
    action: jax.Array
    reward: jax.Array
    next_obs: jax.Array
    terminated: jax.Array
    ptr: jax.Array
    size: jax.Array


ROWS = ("obs", "action", "reward", "next_obs", "terminated")  # the ring's per-transition arrays
RING_FIELDS = (*ROWS, "ptr", "size")  # every array of a ring and of its checkpoint's replay.npz


def ring_init(capacity: int, obs_dim: int, act_dim: int) -> Ring:
    f32 = jnp.float32
    return Ring(
        jnp.zeros((capacity, obs_dim), f32),
        jnp.zeros((capacity, act_dim), f32),
        jnp.zeros((capacity,), f32),
        jnp.zeros((capacity, obs_dim), f32),
        jnp.zeros((capacity,), f32),
        jnp.zeros((), jnp.int32),
        jnp.zeros((), jnp.int32),
    )


def ring_add(ring: Ring, obs: jax.Array, action: jax.Array, reward: jax.Array, next_obs: jax.Array,
             terminated: jax.Array, valid: jax.Array | None = None) -> Ring:  # fmt: skip
    """Write N rows (one per env, in env order) at ``ptr``, wrapping around; rows where ``valid`` is False (non-finite
    env data) are not written and take no place."""
    n, cap = obs.shape[0], ring.obs.shape[0]
    valid = jnp.ones((n,), bool) if valid is None else valid
    pos = jnp.cumsum(valid.astype(jnp.int32)) - 1  # each valid row's place among this write's valid rows
    idx = jnp.where(valid, (ring.ptr + pos) % cap, cap)  # an invalid row's index is out of bounds: dropped
    written = jnp.sum(valid.astype(jnp.int32))
    put = lambda a, x: a.at[idx].set(x, mode="drop")  # noqa: E731
    return ring.replace(
        obs=put(ring.obs, obs),
        action=put(ring.action, action),
        reward=put(ring.reward, reward),
        next_obs=put(ring.next_obs, next_obs),
        terminated=put(ring.terminated, terminated),
        ptr=(ring.ptr + written) % cap,
        size=jnp.minimum(ring.size + written, cap),
    )


def ring_shape(capacity: int, obs_dim: int, act_dim: int) -> Ring:
    """The ring's shapes and dtypes (jax.ShapeDtypeStruct leaves): nothing is allocated."""
    return jax.eval_shape(partial(ring_init, capacity, obs_dim, act_dim))


def stacked_ring(shapes: Ring, replays: list[dict[str, np.ndarray] | None], sharding: Sharding) -> Ring:
    """Every seed's ring as one ring with a leading seed axis, placed by ``sharding``: zeros, and each resumed
    seed's checkpointed rows (``replays[i]``, None for a fresh seed) in its slice. Made one device's share of one
    array at a time, so the start holds the S rings and little more (making each seed's ring and then stacking
    them held 2S + 1)."""

    def leaf(name: str) -> jax.Array:
        one = getattr(shapes, name)

        def part(index: tuple[slice, ...]) -> np.ndarray:  # this device's seeds, whole rows
            seeds = range(len(replays))[index[0]]
            out = np.zeros((len(seeds), *one.shape), one.dtype)
            for j, i in enumerate(seeds):
                d = replays[i]
                if d is not None:
                    if name in ROWS:
                        out[j, : int(d["size"])] = d[name]
                    else:
                        out[j] = d[name]
            return out

        return jax.make_array_from_callback((len(replays), *one.shape), sharding, part)

    return Ring(**{name: leaf(name) for name in RING_FIELDS})


def ring_need(capacity: int, obs_dim: int, act_dim: int) -> Need:
    """One seed's ring, on jax's device (allocated whole at the start)."""
    row = (2 * obs_dim + act_dim + 2) * 4
    return Need(f"a replay ring of {capacity} rows", capacity * row, jax_device(), "a smaller --buffer-size")


def ring_sample(ring: Ring, key: jax.Array, k: int, batch_size: int) -> Batch:
    """K batches of ``batch_size`` rows drawn uniformly (with replacement) from the filled rows: (K, batch, ...)."""
    idx = jax.random.randint(key, (k, batch_size), 0, ring.size)
    return Batch(ring.obs[idx], ring.action[idx], ring.reward[idx], ring.next_obs[idx], ring.terminated[idx])


class RingRows(Mapping):
    """Seed ``i``'s filled rows and pointers, as its checkpoint's replay.npz holds them (rows never written stay
    zeros, as at the start). Each array is fetched from the device when read, and checkpoint.write_npz reads them
    one at a time: a checkpoint copies one array of one seed, not every seed's ring. Read it before the next chunk
    (which takes the carry's buffers)."""

    def __init__(self, ring: Ring, i: int):
        self.ring, self.i, self.size = ring, i, int(ring.size[i])

    def __iter__(self) -> Iterator[str]:
        return iter(RING_FIELDS)

    def __len__(self) -> int:
        return len(RING_FIELDS)

    def __getitem__(self, name: str) -> np.ndarray:
        leaf = getattr(self.ring, name)
        rows = (slice(None, self.size),) if name in ROWS else ()
        if jax_device() == HOST:  # a view of the device buffer holding seed i (numpy reads XLA's CPU buffers)
            for shard in leaf.addressable_shards:
                start, stop, _ = shard.index[0].indices(leaf.shape[0])
                if start <= self.i < stop:
                    return np.asarray(shard.data)[(self.i - start, *rows)]
        return np.asarray(leaf[(self.i, *rows)])  # an accelerator: the slice, copied to the host


def check_ring_state(template: Ring, d: dict[str, np.ndarray]) -> str | None:
    for k in RING_FIELDS:
        if k not in d:
            return f"replay.npz lacks {k}"
    size, cap = int(d["size"]), template.obs.shape[0]
    if not 0 <= size <= cap or not 0 <= int(d["ptr"]) < cap:
        return f"replay.npz's size {size} / ptr {int(d['ptr'])} do not fit a ring of {cap} rows"
    for k in ROWS:
        want = (size, *getattr(template, k).shape[1:])
        if d[k].shape != want or d[k].dtype != np.float32:
            return f"replay.npz's {k} is {d[k].dtype}{d[k].shape}, the config implies float32{want}"
    return None


# ------------------------------------------------------------------------------------------ the program


class Carry(struct.PyTreeNode):
    """Everything that changes while one seed trains (the seed axis is added in front for many seeds)."""

    train: TrainState
    ring: Ring
    env_state: Any  # the N envs' states
    obs: jax.Array  # (N, obs_dim): the observations the next action is for
    ep_return: jax.Array  # (N,) the running episodes' returns and lengths
    ep_length: jax.Array
    key: jax.Array  # envs, warm-up actions, replay indices
    metrics: (
        jax.Array
    )  # (3,) critic loss, actor loss (of the last unit with an actor step), mean Q; nan before


class Program:
    """The compiled loop for one config and env: ``init``, ``chunk`` and ``evaluate``, for S seeds at once."""

    def __init__(self, cfg: Config, jenv: JaxEnv, learner: Learner) -> None:
        self.cfg, self.jenv, self.learner = cfg, jenv, learner
        self.n = cfg.num_envs
        self.schedule = UpdateSchedule.of(cfg)
        # the most units one iteration of N env steps can hold: each runs only if due (a branch on the shared step)
        u = self.schedule.update_every
        self.max_units = self.n // u + (1 if self.n % u else 0)
        self.chunk_iters = max(1, -(-cfg.chunk_steps // self.n))  # iterations of one compiled call
        self.static = dict(
            actor=learner.actor, critic=learner.critic, actor_tx=learner.actor_tx,
            critic_tx=learner.critic_tx, hp=learner.hp,
        )  # fmt: skip
        self.scaler = ActionScaler(jnp.asarray(jenv.low), jnp.asarray(jenv.high))
        self.chunk = jax.jit(self._chunk, donate_argnums=0)
        self.evaluate = jax.jit(jax.vmap(self._evaluate))
        self.update_unit = jax.jit(self._unit)  # what an iteration runs per due unit (tests compare it)

    # -- one seed
    def init(self, seed: int, ring: bool = True) -> Carry:
        """Seed ``seed``'s carry: the Python loop's initial TrainState (same numpy draws), an empty ring and
        N fresh episodes. ``ring=False``: the ring's shapes only, nothing allocated (``build`` makes all seeds'
        rings at once, in place: ``stacked_ring``)."""
        train = self.learner.init(seed)
        key = jax.random.fold_in(jax.random.PRNGKey(seed), LOOP_KEY_TAG)
        key, k_reset = jax.random.split(key)
        obs, env_state = jax.vmap(self.jenv.reset)(jax.random.split(k_reset, self.n))
        j = self.jenv
        return Carry(
            train=train,
            ring=(ring_init if ring else ring_shape)(self.cfg.buffer_size, j.obs_dim, j.act_dim),
            env_state=env_state,
            obs=obs.astype(jnp.float32),
            ep_return=jnp.zeros((self.n,), jnp.float32),
            ep_length=jnp.zeros((self.n,), jnp.int32),
            key=key,
            metrics=jnp.full((3,), jnp.nan, jnp.float32),
        )

    def to_env(self, a: jax.Array) -> jax.Array:
        """[-1, 1] -> the env's bounds: envs.ActionScaler's map, in the graph."""
        return self.scaler.to_env(a)

    def _unit(self, train: TrainState, metrics: jax.Array, batches: Batch) -> tuple[TrainState, jax.Array]:
        """One update unit: ``update_many`` on K batches, the metrics kept as the Python loop keeps them."""
        train, m = update_many(train, batches, **self.static)
        actor_loss = jnp.where(jnp.isnan(m.actor_loss), metrics[1], m.actor_loss)
        return train, jnp.stack([m.critic_loss, actor_loss, m.mean_q]).astype(jnp.float32)

    def _units_by(self, step: jax.Array) -> jax.Array:
        return self.schedule.units_by(step, maximum=jnp.maximum)

    def _iteration(self, c: Carry, before: jax.Array) -> tuple[Carry, tuple[jax.Array, jax.Array, jax.Array]]:
        """N env steps of one seed, after ``before`` env steps (shared by all seeds, so branches stay branches)."""
        cfg, n, j = self.cfg, self.n, self.jenv
        key, k_uniform, k_env, k_sample = jax.random.split(c.key, 4)

        def explore(t: TrainState) -> tuple[jax.Array, TrainState]:
            a, noise, tkey = act(
                self.learner.actor, self.learner.hp, t.actor, t.explore, c.obs, t.noise, t.key
            )
            return a, t.replace(noise=noise, key=tkey)

        def uniform(t: TrainState) -> tuple[jax.Array, TrainState]:
            return jax.random.uniform(k_uniform, (n, j.act_dim), jnp.float32, -1.0, 1.0), t

        a, train = jax.lax.cond(before + 1 <= cfg.learning_starts, uniform, explore, c.train)
        next_obs, env_state, reward, terminated, truncated, final = jax.vmap(j.step)(
            jax.random.split(k_env, n), c.env_state, self.to_env(a)
        )
        reward, final = reward.astype(jnp.float32), final.astype(jnp.float32)
        # a row with a non-finite observation, reward or final observation never enters the ring; the host stops
        # the run at the chunk's end (DM Control's `done` also means "the physics went NaN")
        act_ok = jnp.isfinite(a).all(-1)  # a NaN action is the learner's divergence, not the env's fault
        ok = act_ok & jnp.isfinite(c.obs).all(-1) & jnp.isfinite(reward) & jnp.isfinite(final).all(-1)
        ring = ring_add(c.ring, c.obs, a, reward, final, terminated.astype(jnp.float32), ok)
        done = jnp.logical_or(terminated, truncated)
        ret, length = c.ep_return + reward, c.ep_length + 1
        # the OU process restarts with each episode (Gaussian noise keeps an unused zero state)
        reset = done[:, None] if train.noise.ndim == 2 else jnp.any(done)
        train = train.replace(noise=jnp.where(reset, 0.0, train.noise))
        # the update units due in env steps before + 1 .. before + n, each on batches drawn after this write
        units = self._units_by(before + n) - self._units_by(before)
        metrics = c.metrics
        g, b = self.schedule.gradient_steps, cfg.batch_size
        for u in range(self.max_units):

            def run(args: tuple[TrainState, jax.Array], u: int = u) -> tuple[TrainState, jax.Array]:
                batches = ring_sample(ring, jax.random.fold_in(k_sample, u), g, b)
                return self._unit(*args, batches)

            train, metrics = jax.lax.cond(u < units, run, lambda args: args, (train, metrics))
        carry = Carry(
            train=train,
            ring=ring,
            env_state=env_state,
            obs=next_obs.astype(jnp.float32),
            ep_return=jnp.where(done, 0.0, ret),
            ep_length=jnp.where(done, 0, length),
            key=key,
            metrics=metrics,
        )
        bad = jnp.where(act_ok, jnp.where(ok, NOT_BAD, BAD_ENV), BAD_ACTION).astype(jnp.int8)
        return carry, (done, ret, length, bad)

    def _chunk(self, carry: Carry, start: jax.Array, n_iter: jax.Array) -> tuple[Carry, Any]:
        """``n_iter`` (at most ``chunk_iters``) iterations of every seed from env step ``start``; returns the carry
        and, per iteration, seed and env: (episode ended, its return, its length, a non-finite row).

        Several seeds are vmapped. One seed runs unbatched, so its own branches (policy delay's) stay branches; its
        seed axis is dropped once before the scan and added back once after it (per iteration, slicing and
        re-stacking the carry would copy the whole replay ring every step)."""
        batched = carry.ep_return.shape[0] > 1
        step = jax.vmap(self._iteration, in_axes=(0, None)) if batched else self._iteration
        lead = carry.ep_return.shape[:1] if batched else ()
        empty = tuple(jnp.zeros((*lead, self.n), t) for t in (bool, jnp.float32, jnp.int32, jnp.int8))

        def body(c: Carry, i: jax.Array) -> tuple[Carry, Any]:
            return jax.lax.cond(i < n_iter, lambda c: step(c, start + i * self.n), lambda c: (c, empty), c)

        iters = jnp.arange(self.chunk_iters, dtype=jnp.int32)
        if batched:
            return jax.lax.scan(body, carry, iters)
        one, outs = jax.lax.scan(body, unstack(carry, 0), iters)
        return jax.tree_util.tree_map(lambda x: x[None], one), jax.tree_util.tree_map(
            lambda y: y[:, None], outs
        )

    def _evaluate(self, actor_vars: Any, key: jax.Array) -> tuple[jax.Array, jax.Array]:
        """Returns and lengths of ``eval_episodes`` noise-free episodes of one seed's actor, on env instances of
        their own."""
        e, j = self.cfg.eval_episodes, self.jenv
        key, k_reset = jax.random.split(key)
        obs, state = jax.vmap(j.reset)(jax.random.split(k_reset, e))

        def body(c: Any, _: Any) -> tuple[Any, None]:
            obs, state, ret, length, alive, key = c
            key, sub = jax.random.split(key)
            a = act_greedy(self.learner.actor, actor_vars, obs.astype(jnp.float32))
            obs, state, r, term, trunc, _ = jax.vmap(j.step)(jax.random.split(sub, e), state, self.to_env(a))
            ret = ret + jnp.where(alive, r, 0.0)
            length = length + alive.astype(jnp.int32)
            return (obs, state, ret, length, alive & ~(term | trunc), key), None

        init = (
            obs,
            state,
            jnp.zeros((e,), jnp.float32),
            jnp.zeros((e,), jnp.int32),
            jnp.ones((e,), bool),
            key,
        )
        (_, _, ret, length, _, _), _ = jax.lax.scan(body, init, None, length=j.max_steps)
        return ret, length


def eval_keys(seeds: list[int], step: int) -> jax.Array:
    """The evaluation's keys at ``step``: a function of the seed and the step only (no state to checkpoint)."""
    return jnp.stack([jax.random.fold_in(jax.random.PRNGKey(s + EVAL_SEED_OFFSET), step) for s in seeds])


def cpu_device_count(num_seeds: int, recorded: int | None = None) -> int:
    """How many XLA CPU devices a group of ``num_seeds`` runs on: the number its group.json ``recorded`` when it
    started (a resume partitions the seeds as the run did: the partition changes the bits), else one per core, as
    many as divide the seeds."""
    if recorded is not None and recorded >= 1 and num_seeds % recorded == 0:
        return recorded
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(d for d in range(1, min(cores, num_seeds) + 1) if num_seeds % d == 0)


def cpu_devices_for(num_seeds: int, recorded: int | None = None) -> None:
    """Many seeds on a CPU: one XLA CPU device per core (as many as divide the seeds), so that ``shard_seeds`` can
    give each core its share of the seeds. XLA runs one program's small matmuls on one core at a time, so
    vmapped seeds alone leave the other cores idle. Possible only before jax starts its backend (a fresh
    `ddpgx train`); later, or with one seed, nothing changes. GPUs are unaffected (this sets the CPU backend only).
    A resume (``recorded``: the group's count) gets the run's partition, whatever this machine's cores."""
    n = cpu_device_count(num_seeds, recorded)
    if n > 1 and not xla_bridge.backends_are_initialized():
        jax.config.update("jax_num_cpu_devices", n)


def seed_partition(num_seeds: int) -> int:
    """How many devices ``shard_seeds`` splits the seeds over in this process (1: not split)."""
    d = len(jax.devices())
    return d if d > 1 and num_seeds % d == 0 else 1


def recorded_partition(group: Path) -> int | None:
    """The seed partition a group's group.json recorded (None: none recorded, a group from before it was)."""
    try:
        value = json.loads((group / GROUP_FILE).read_text()).get("seed_partition")
    except (OSError, ValueError, AttributeError):
        return None
    return value if isinstance(value, int) else None


def seed_sharding(num_seeds: int) -> Sharding:
    """Where the carry's seed axis lives: split over the default backend's devices when there are several and
    they divide the seeds (the program is then partitioned by seed: each device runs its seeds), else on the
    default device."""
    devices = jax.devices()
    if len(devices) < 2 or num_seeds % len(devices):
        return SingleDeviceSharding(devices[0])
    return NamedSharding(Mesh(np.array(devices), ("seed",)), PartitionSpec("seed"))


def shard_seeds(carry: Carry, num_seeds: int) -> Carry:
    """The carry placed by ``seed_sharding``, every leaf (leaves already placed so are not copied). All placed
    alike, the chunk compiles once: a mix of placed and unplaced inputs compiles again for its placed outputs."""
    return jax.device_put(carry, seed_sharding(num_seeds))


def stack(trees: list[Any]) -> Any:
    return jax.tree_util.tree_map(lambda *x: jnp.stack(x), *trees)


def unstack(tree: Any, i: int) -> Any:
    return jax.tree_util.tree_map(lambda x: x[i], tree)


# ------------------------------------------------------------------------------------------ checks


def check_supported(cfg: Config) -> None:
    """One line naming the first switch the compiled loop does not support, and why."""
    unsupported = [
        (cfg.her, "--her (gymnax has no goal envs)"),
        (cfg.obs_norm, "--obs-norm (its float64 statistics live on the host)"),
        (cfg.n_step > 1, "--n-step > 1"),
        (cfg.noise == "param", "--noise param (its perturbed actor is drawn per episode on the host)"),
        (cfg.profile, "--profile"),
        (cfg.vector == "async" and cfg.num_envs > 1, "--vector async (the envs step inside the compiled program)"),
        (cfg.target_return is not None and cfg.num_seeds > 1,
         "--target-return with --num-seeds > 1 (the seeds run in lock-step; stop them together with --total-steps, "
         "or run seeds apart)"),
    ]  # fmt: skip
    for on, what in unsupported:
        if on:
            raise UserError(
                f"the compiled loop of JAX-native envs ({cfg.env}) does not support {what}; drop it, "
                "or train the Gymnasium twin of the env with the Python loop"
            )
    if cfg.target_success is not None:
        raise UserError(f"--target-success needs a goal env; {cfg.env} reports no success")


# ------------------------------------------------------------------------------------------ run directories


def seed_configs(cfg: Config) -> list[Config]:
    """One Config per seed. One seed: ``cfg`` itself. Many: seed, seed + 1, ... each in its own run directory
    under the group directory ``cfg.run_dir``, named as a single run would be (``report`` groups them)."""
    if cfg.num_seeds == 1:
        return [cfg]
    name = env_name(cfg.env)
    group = Path(cfg.run_dir)
    return [
        cfg.replace(seed=cfg.seed + i, run_dir=str(group / f"{name}__{cfg.preset}__s{cfg.seed + i}"))
        for i in range(cfg.num_seeds)
    ]


def group_config(run_dir: Path | str) -> Config | None:
    """The Config of the seed group in ``run_dir``: its group.json, or, when that is gone, the config its seeds'
    config.json files hold (``rebuilt_group_config``); None when ``run_dir`` holds no seed group."""
    path = Path(run_dir) / GROUP_FILE
    if not path.is_file():
        return rebuilt_group_config(Path(run_dir))
    try:
        return config_from_dict(json.loads(path.read_text())["config"])
    except (json.JSONDecodeError, KeyError, TypeError) as e:
        raise UserError(f"{path} is not a valid ddpgx seed group: {e}") from None


def rebuilt_group_config(group: Path) -> Config | None:
    """A seed group's config from its seeds' config.json files (each holds the whole config, with its own seed and
    run directory), for a group whose group.json is gone; None when ``group`` holds no run of a seed group. The
    seeds must be the whole group, named and configured as ``seed_configs`` makes them; else one line."""
    if not group.is_dir() or (group / "config.json").is_file():
        return None
    seeds = {p.name: load_run_config(p) for p in sorted(group.iterdir()) if (p / "config.json").is_file()}
    seeds = {name: c for name, c in seeds.items() if c.num_seeds > 1}
    if not seeds:
        return None
    first = min(seeds.values(), key=lambda c: c.seed)
    # an interrupted resume may have recorded a longer run in some seeds only: the longest is the one asked for
    cfg = first.replace(run_dir=str(group), total_steps=max(c.total_steps for c in seeds.values()))
    want = {Path(c.run_dir).name: c for c in seed_configs(cfg)}
    lost = f"{group} has lost its {GROUP_FILE}, and its seeds' run directories"
    again = "the group cannot be resumed; train it again in a new --run-dir"
    if set(want) != set(seeds):
        raise UserError(f"{lost} ({', '.join(seeds)}) are not the {cfg.num_seeds} seeds its config.json files "
                         f"name ({', '.join(want)}); {again}")  # fmt: skip
    for name, c in seeds.items():
        for f in dataclasses.fields(Config):
            mine, group_s = getattr(c, f.name), getattr(want[name], f.name)
            if f.name not in RESUMABLE_CHANGES | {"seed"} and mine != group_s:
                raise UserError(f"{lost} disagree on --{f.name.replace('_', '-')} ({name}: {mine}, "
                                 f"{Path(first.run_dir).name}: {group_s}); {again}")  # fmt: skip
        if c.seed != want[name].seed:
            raise UserError(f"{lost} disagree on the seeds ({name} holds seed {c.seed}); {again}")
    return cfg


def resolve_group(cfg: Config, resume: bool) -> Config:
    """Resuming one seed of a group resumes the group: its seeds share one program."""
    if not resume or cfg.num_seeds == 1:
        return cfg
    here = Path(cfg.run_dir)
    if not here.exists():
        raise UserError(f"{here} does not exist; pass the directory `ddpgx train` wrote (--run-dir)")
    if group_config(here) is not None:
        return cfg
    group = group_config(here.parent) if (here / "config.json").is_file() else None
    if group is not None:
        warn(f"{here} is one of {group.num_seeds} seeds trained together; resuming the group {here.parent}")
        return cfg.replace(seed=group.seed, run_dir=str(here.parent))
    raise UserError(
        f"{here} was trained with --num-seeds {cfg.num_seeds} but its group's {GROUP_FILE} is missing"
    )


def loop_part(carry: Carry) -> dict[str, Any]:
    """The carry's part outside the TrainState and the ring, as a checkpoint holds it."""
    return {"env_state": leaves_dict(carry.env_state), "obs": carry.obs, "ep_return": carry.ep_return,
            "ep_length": carry.ep_length, "key": carry.key, "metrics": carry.metrics}  # fmt: skip


def checkpoint_state(carry: Carry) -> dict[str, Any]:
    """What a checkpoint's state.msgpack holds: the TrainState at the top (so policy loading finds "actor"),
    the rest of the carry under "loop"."""
    return {**serialization.to_state_dict(carry.train), "loop": serialization.to_state_dict(loop_part(carry))}


def leaves_dict(tree: Any) -> dict[str, Any]:
    """Any env's state (gymnax's dataclasses, MJX's Data) as {"0": leaf, "1": leaf, ...} in pytree order: what
    msgpack can hold; the template's tree structure puts it back."""
    return {str(i): leaf for i, leaf in enumerate(jax.tree_util.tree_leaves(tree))}


def leaves_back(template: Any, d: dict[str, Any]) -> Any:
    treedef = jax.tree_util.tree_structure(template)
    return jax.tree_util.tree_unflatten(treedef, [d[str(i)] for i in range(treedef.num_leaves)])


def carry_from_checkpoint(template: Carry, loaded: ckpt.Loaded) -> Carry:
    """The carry a checkpoint holds, without its ring (``stacked_ring`` puts every seed's rows in place)."""
    d = loaded.state
    train = serialization.from_state_dict(
        template.train, {**NEWER_FIELDS, **{k: v for k, v in d.items() if k != "loop"}}
    )
    rest = serialization.from_state_dict(loop_part(template), d["loop"])
    rest["env_state"] = leaves_back(template.env_state, rest["env_state"])
    return jax.tree_util.tree_map(jnp.asarray, Carry(train=train, ring=None, **rest))


def make_check(
    template: Carry, step: int | None = None, replay: bool = True
) -> Callable[[ckpt.Loaded], str | None]:
    """A checkpoint fits when its trees have the template's keys, shapes and dtypes (and its replay, unless
    ``replay`` is False: a look at the step only), and, given ``step``, is at that step."""
    want = ckpt.to_numpy(checkpoint_state(template))

    def check(loaded: ckpt.Loaded) -> str | None:
        problem = ckpt.tree_mismatch(want, loaded.state)
        problem = problem or (check_ring_state(template.ring, loaded.replay) if replay else None)
        if problem:
            return problem
        problem = counters_problem(loaded.manifest)
        if problem:
            return problem
        if step is not None and loaded.manifest["step"] != step:
            return (
                f"it is at step {loaded.manifest['step']}, past the step {step} every seed of the group has"
            )
        return None

    return check


# ------------------------------------------------------------------------------------------ a group's checkpoints


class GroupCheckpoints:
    """The checkpoints of a seed group's runs, which resume together from one step all of them have. The host
    writes the seeds' checkpoints one after another; a seed's older ones are deleted only once every seed has
    written the newer one, so a group killed between two seeds' writes still has a step in common.
    ``--keep-checkpoints`` counts the group's complete checkpoints: each seed keeps the newest ``keep`` steps that
    every seed has, and nothing else."""

    def __init__(self, keep: int) -> None:
        self.keep = keep
        self.runs: list[SeedRunDir] = []
        self.written: dict[Path, int] = {}  # each run's last checkpoint step written in this process

    def saved(self, run: SeedRunDir, step: int) -> None:
        self.written[run.path] = step
        if all(self.written.get(r.path) == step for r in self.runs):
            self.prune(step)

    def prune(self, step: int) -> None:
        """Keep the newest ``keep`` steps up to ``step`` that every seed has; delete the rest (older ones, and any a
        killed process left past the step the group continued from)."""
        have = [checkpoint_steps(r.path) for r in self.runs]
        kept = sorted(s for s in set.intersection(*map(set, have)) if s <= step)[-self.keep :]
        for steps in have:
            for s, path in steps.items():
                if s not in kept:
                    shutil.rmtree(path, ignore_errors=True)

    def common_step(self, template: Carry) -> int | None:
        """The newest step every seed has a valid checkpoint of (checked as the resume will load it); None when a
        seed has none at all (the group was stopped before its first checkpoint was complete: it starts over)."""
        have = [checkpoint_steps(r.path) for r in self.runs]
        if not all(have):
            return None
        for step in sorted(set.intersection(*map(set, have)), reverse=True):
            check = make_check(template, step, replay=False)
            try:
                for r in self.runs:
                    ckpt.load(r.path, check=check, replay=False)
            except ckpt.CheckpointError:
                continue
            return step
        listed = "; ".join(f"{r.path.name}: {', '.join(map(str, sorted(s))) or 'none'}"
                           for r, s in zip(self.runs, have, strict=True))  # fmt: skip
        raise UserError(
            f"the seeds of the group {Path(self.runs[0].path).parent} have no valid checkpoint at a step they all "
            f"have ({listed}), and a group resumes all its seeds from one step; train it again in a new --run-dir"
        )

    def start_over(self) -> None:
        """A group whose seeds do not all have a checkpoint starts again from step 0, each seed as a run stopped before
        its first checkpoint does (run.py): the checkpoints some seeds wrote cannot be continued without the others'
        states, so they go (under each run's lock), and opening the runs clears the rest."""
        for r in self.runs:
            if checkpoint_steps(r.path):
                r.lock.acquire()
                try:
                    shutil.rmtree(r.path / ckpt.DIRNAME)
                finally:
                    r.lock.release()
        warn(f"not every seed of the group {self.runs[0].path.parent} had a checkpoint yet: the group starts again "
             "from step 0")  # fmt: skip


def recover_group_finals(runs: list[SeedRunDir], check: Callable[[ckpt.Loaded], str | None], total_steps: int,
                         open_run: Callable[[RunDir], Any], group: Path) -> None:  # fmt: skip
    """A group stopped while its seeds wrote their final files, after every seed's final checkpoint: each seed
    without final.msgpack writes it from its final checkpoint (as one run does, run.py), and the group is complete
    (``FinalRecovered`` for the whole group). Otherwise nothing happens here."""
    manifests = tuple(ckpt.load(r.path, check=check, replay=False).manifest for r in runs)
    missing = [r for r in runs if not (r.path / FINAL_PARAMS).exists()]
    if not missing or not all(finished_for_good(m, total_steps) for m in manifests):
        return
    recovered = []
    # each raises FinalRecovered, or a UserError when its final checkpoint is not the newest valid one
    for r in missing:
        try:
            open_run(r)
        except FinalRecovered as e:
            recovered.append(e)
    first = recovered[0]
    raise FinalRecovered(first.loaded, first.path, group, manifests, tuple(r.path for r in runs))


def checkpoint_steps(run: Path) -> dict[int, Path]:
    """The steps of a run directory's complete checkpoints, and their directories."""
    out = {}
    for path in ckpt.candidates(run):
        with contextlib.suppress(ValueError):
            out[int(path.name.removeprefix("step_"))] = path
    return out


class SeedRunDir(RunDir):
    """One seed's run directory in a group: its checkpoints are pruned by the group (``GroupCheckpoints``)."""

    def __init__(self, cfg: Config, resume: bool, group: GroupCheckpoints) -> None:
        super().__init__(cfg, resume)
        self.group = group
        group.runs.append(self)

    def save_checkpoint(self, step: int, state: Any, replay: dict[str, Any], manifest: dict[str, Any],
                        finished: str | None = None) -> None:  # fmt: skip
        keep_all = sys.maxsize  # ckpt.save deletes none: the group prunes once every seed has this step
        ckpt.save(self.path, step, state, replay, {**manifest, "finished": finished}, keep_all)
        self.group.saved(self, step)


# ------------------------------------------------------------------------------------------ the engine


class CompiledEngine:
    """The Program, its carry (S seeds' TrainStates, rings, env states) and the step they are at (host.Engine).
    Run i is seed ``seeds[i]``."""

    def __init__(self, cfg: Config, program: Program, carry: Carry, seeds: list[int], step: int) -> None:
        self.cfg, self.program, self.carry, self.seeds, self.step = cfg, program, carry, seeds, step
        self.n = cfg.num_envs
        self.safe = True  # the carry is the whole state: any chunk boundary can be checkpointed
        self.columns = LogColumns(env_column=self.n > 1)

    def advance(self, until: int) -> list[Episode]:
        """One chunk: as many iterations of N env steps as reach ``until``, at most the compiled length."""
        n, step = self.n, self.step
        n_iter = min(self.program.chunk_iters, max(1, -(-(until - step) // n)))
        self.carry, out = self.program.chunk(self.carry, jnp.int32(step), jnp.int32(n_iter))
        done, ret, length, bad = (np.asarray(x)[:n_iter] for x in out)
        self.step = step + n_iter * n
        if bad.any():  # iteration, seed, env of the first non-finite row (it never entered the ring)
            it, s_i, e = (int(x[0]) for x in np.nonzero(bad))
            at = step + it * n + e + 1
            why = actions_not_finite if bad[it, s_i, e] == BAD_ACTION else env_not_finite
            raise why(at, self._who(s_i))
        ended = list(zip(*np.nonzero(done), strict=True))
        for it, s_i, e in ended:  # finite rewards whose sum overflows float32 (the probe saw too few steps)
            if not np.isfinite(ret[it, s_i, e]):
                raise TrainingDiverged(
                    f"{self._who(s_i)}an episode's return became {ret[it, s_i, e]} at step {step + it * n + e + 1}"
                    ": the env's rewards overflow float32; check the env's parameters (--env-kwargs)"
                )
        return [
            Episode(
                int(s_i),
                step + int(it) * n + int(e) + 1,
                float(ret[it, s_i, e]),
                int(length[it, s_i, e]),
                env=int(e),
            )
            for it, s_i, e in ended
        ]

    def _who(self, i: int) -> str:
        return f"seed {self.seeds[i]}: " if len(self.seeds) > 1 else ""

    def losses(self, interval_s: float) -> list[LossRow | None]:
        if self.program.schedule.units_by(self.step) == 0:  # nothing learned yet: no losses
            return [None] * len(self.seeds)
        return [LossRow(*(float(x) for x in row)) for row in np.asarray(self.carry.metrics)]

    def evaluate(self, step: int) -> list[EvalRow]:
        returns, lengths = (
            np.asarray(x)
            for x in self.program.evaluate(policy_vars(self.carry.train), eval_keys(self.seeds, step))
        )
        for i, r in enumerate(returns):
            check_eval_returns(r, step, self._who(i))
        return [
            EvalRow(float(r.mean()), float(r.std()), None, float(n.mean()))
            for r, n in zip(returns, lengths, strict=True)
        ]

    def policy(self, i: int) -> tuple[Any, Any]:
        train = unstack(self.carry.train, i)
        return policy_vars(train), train.critic

    def snapshots(self) -> list[Snapshot]:
        host = jax.device_get(self.carry.replace(ring=None))  # the ring stays: RingRows reads it when written
        out = []
        for i in range(len(self.seeds)):
            one = unstack(host, i)
            manifest = {"loop": "compiled", "seeds": self.seeds}
            metrics = [float(x) for x in np.asarray(one.metrics)]
            rows = RingRows(self.carry.ring, i)
            out.append(Snapshot(checkpoint_state(one), rows, manifest, {"metrics": metrics}))
        return out

    def end_episodes(self) -> None:
        """The carry keeps its episodes: an extension continues them."""


def build(
    cfg: Config, resume: bool, closing: contextlib.ExitStack
) -> tuple[Config, CompiledEngine, list[RunDir], list[ckpt.Loaded | None], Path]:
    """Check, then create (or lock and load) every seed's run directory, then the engine. Returns the group's config
    (resuming one seed of a group resumes the group), the engine, the runs, their checkpoints and the directory
    the result names."""
    check_supported(cfg)
    cfg = resolve_group(cfg, resume)
    recorded = recorded_partition(Path(cfg.run_dir)) if resume and cfg.num_seeds > 1 else None
    cpu_devices_for(cfg.num_seeds, recorded)
    jenv = checked_jax_env(cfg.env, cfg.env_kwargs)  # probed: bad env parameters are one line before any file
    s = cfg.num_seeds
    needs = [
        memory_need(cfg, jenv.obs_dim, jenv.act_dim),
        ring_need(cfg.buffer_size, jenv.obs_dim, jenv.act_dim),
    ]
    if s > 1:
        needs = [dataclasses.replace(n, what=f"{s} seeds of {n.what}", nbytes=s * n.nbytes) for n in needs]
    if jax_device() != HOST:  # a checkpoint slices one seed's observations on the device before fetching them
        needs.append(Need("a checkpoint's copy of one seed's observations", cfg.buffer_size * jenv.obs_dim * 4,
                          jax_device(), "a smaller --buffer-size"))  # fmt: skip
    # the chunk's per-iteration outputs (episode ends, returns, lengths, non-finite flags) of every seed and env
    iters = max(1, -(-cfg.chunk_steps // cfg.num_envs))
    needs.append(Need(f"--chunk-steps {cfg.chunk_steps}'s per-step outputs", iters * s * cfg.num_envs * 10,
                      jax_device(), "a smaller --chunk-steps"))  # fmt: skip
    check_memory(needs, also="fewer --num-seeds" if s > 1 else "")
    cfgs = seed_configs(cfg)
    # validates every seed's directory before anything is written
    checkpoints = GroupCheckpoints(cfg.keep_checkpoints)
    runs = [RunDir(cfgs[0], resume)] if s == 1 else [SeedRunDir(c, resume, checkpoints) for c in cfgs]
    group = Path(cfg.run_dir)
    if cfg.num_seeds > 1 and not resume:
        check_new_run_dir(group)
    if cfg.compile_cache:
        enable_compile_cache(cfg.compile_cache)
    program = Program(cfg, jenv, Learner(cfg, jenv.obs_dim, jenv.act_dim))
    seeds = [c.seed for c in cfgs]
    template = program.init(seeds[0], ring=False)
    manifest_env = JaxGymEnv(cfg.env, cfg.env_kwargs)
    closing.callback(manifest_env.close)
    for r in runs:
        closing.callback(r.close)
    loaded: list[ckpt.Loaded | None] = []
    partition = seed_partition(s)
    if recorded is not None and partition != recorded:
        warn(
            f"this group ran with its seeds split over {recorded} XLA CPU device(s), this process has {partition}: "
            "it continues, but not bitwise as the uninterrupted run would (resume it in a fresh process: "
            f"ddpgx train --resume {cfg.run_dir})"
        )
    record = {"config": dataclasses.asdict(cfg), "seeds": seeds, "runs": [Path(c.run_dir).name for c in cfgs],
              "seed_partition": partition if recorded is None else recorded}  # fmt: skip
    if resume:  # every seed continues from the newest step all of them have a checkpoint of
        common = checkpoints.common_step(template) if s > 1 else None
        if s > 1 and common is None:
            checkpoints.start_over()

        def open_run(r: RunDir) -> ckpt.Loaded | None:
            return r.open(runfiles.run_manifest(r.cfg, manifest_env), check=make_check(template, common))

        if s > 1 and common is not None:
            recover_group_finals(
                runs, make_check(template, common, replay=False), cfg.total_steps, open_run, group
            )
        loaded += [open_run(r) for r in runs]
        if s > 1:  # the group's record (rebuilt if it was lost), with the run's length as it is now
            runfiles.write_json(group / GROUP_FILE, record)
    else:
        if s > 1:
            group.mkdir(parents=True, exist_ok=True)
            runfiles.write_json(group / GROUP_FILE, record)
        for r in runs:
            loaded.append(r.open(runfiles.run_manifest(r.cfg, manifest_env)))
    carries = [
        program.init(c.seed, ring=False).replace(ring=None)
        if ld is None
        else carry_from_checkpoint(template, ld)
        for c, ld in zip(cfgs, loaded, strict=True)
    ]
    ring = stacked_ring(template.ring, [None if ld is None else ld.replay for ld in loaded], seed_sharding(s))
    step = 0 if loaded[0] is None else loaded[0].manifest["counters"]["step"]
    engine = CompiledEngine(cfg, program, shard_seeds(stack(carries).replace(ring=ring), s), seeds, step)
    return cfg, engine, runs, loaded, group


__all__ = ["Program", "Carry", "Ring", "CompiledEngine", "build", "group_config", "seed_configs"]
