"""The Python engine: Gymnasium envs stepped from Python, one learner, one replay. Each ``advance`` is one iteration:
reset the envs whose episode ended -> act -> step -> store -> update (the due units as one compiled call, fused
with the next action) -> bookkeeping. The host (host.py) does the rest: logs, evaluations, checkpoints, stops.

A run can stop at any moment and continue with ``train(..., resume=True)`` from its latest checkpoint, ending
bitwise-identical to the uninterrupted run: a checkpoint holds every changing thing (the TrainState, the replay,
every random generator, the counters and the logs' lengths) and is taken where the engine is ``safe`` (one env:
at episode ends, so no simulator state is needed; several envs: anywhere, their episodes are replayed).
"""

from __future__ import annotations

import contextlib
import threading
import time
from dataclasses import asdict
from functools import partial
from typing import Any

import jax
import numpy as np

from ddpgx import checkpoint as ckpt
from ddpgx import runfiles
from ddpgx.collect import Collector
from ddpgx.config import Config
from ddpgx.envs import make_run_env, scaler_for
from ddpgx.errors import UserError
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
from ddpgx.learner import Learner, Metrics, enable_compile_cache, memory_need
from ddpgx.memory import Need, check_memory
from ddpgx.obsnorm import Normalizer
from ddpgx.replay import PerEnvReplay, ReplayBuffer
from ddpgx.rngstate import rng_state, set_rng_state
from ddpgx.run import RunDir
from ddpgx.schedule import UpdateSchedule, crossed

OBS_STATS_EVERY = 100  # --obs-norm: env steps between writes of the statistics into the networks


# ------------------------------------------------------------------------------------------ set-up and checks


def memory_needs(cfg: Config, obs_dim: int, act_dim: int) -> list[Need]:
    """What the Python engine allocates: the networks (on jax's device), the replay and the env processes (host)."""
    rows = min(cfg.buffer_size + 1, 2 * cfg.total_steps + 1)  # a row per step, plus one per episode end
    return [
        memory_need(cfg, obs_dim, act_dim),
        ReplayBuffer.need(rows + cfg.num_envs, obs_dim, act_dim),
        Collector.need(cfg.num_envs, cfg.vector),
    ]


def build(
    cfg: Config, resume: bool, closing: contextlib.ExitStack
) -> tuple[PyEngine, RunDir, ckpt.Loaded | None]:
    """Check everything checkable, then create (or lock and load) the run directory, then the engine. Everything
    opened is closed by ``closing``."""
    run = RunDir(cfg, resume)
    if cfg.compile_cache:
        enable_compile_cache(cfg.compile_cache)
    env = make_run_env(cfg)  # the first env: the checks, the spaces, the goal layout and HER's rewards
    closing.callback(env.close)
    check_first_step(cfg)
    obs_dim, act_dim = env.observation_space.shape[0], env.action_space.shape[0]
    check_memory(memory_needs(cfg, obs_dim, act_dim))
    learner = Learner(cfg, obs_dim, act_dim)
    state = learner.init(cfg.seed)
    buffer = make_buffer(cfg, env, obs_dim, act_dim)
    evaluator = Evaluator(partial(make_run_env, cfg), cfg.eval_episodes, seed=cfg.seed + EVAL_SEED_OFFSET)
    closing.callback(evaluator.close)
    if cfg.num_envs > 1 and cfg.vector == "async":  # one env stays in this process whatever --vector says
        check_async_env(cfg)
    layout = goal_layout(env)
    if cfg.target_success is not None and layout is None:
        raise UserError(
            f"--target-success needs a goal env that reports info['is_success']; {cfg.env} is not one"
        )
    collector = Collector(
        partial(make_run_env, cfg),
        env,
        cfg.num_envs,
        cfg.vector,
        cfg.seed,
        scaler_for(env),
        layout is not None,
    )
    closing.callback(collector.close)
    collector.reset_done()  # a NaN from reset is refused before the run directory exists
    closing.callback(run.close)  # releases the lock however open() or the run ends (a no-op if never taken)
    check = checkpoint_check(
        state, buffer, cfg.obs_norm, cfg.obs_norm and cfg.goal_stats == "relabelled", cfg.num_envs
    )
    loaded = run.open(runfiles.run_manifest(cfg, env), check=check)
    engine = PyEngine(cfg, collector, learner, state, buffer, evaluator, layout, loaded)
    closing.callback(engine.close)
    return engine, run, loaded


# ------------------------------------------------------------------------------------------ the engine


class PyEngine(LearnerSide):
    """Collector + learner + replay of one run (host.Engine)."""

    def __init__(
        self,
        cfg: Config,
        collector: Collector,
        learner: Learner,
        state: Any,
        buffer: PerEnvReplay,
        evaluator: Evaluator,
        layout: Any,
        loaded: ckpt.Loaded | None,
    ) -> None:
        self.cfg, self.collector, self.learner, self.buffer, self.evaluator = (
            cfg,
            collector,
            learner,
            buffer,
            evaluator,
        )
        self.n = n = cfg.num_envs
        self.act_dim = collector.envs.single_action_space.shape[0]
        obs_dim = collector.obs.shape[1]
        self.goal = layout is not None  # goal envs log their success rate beside the returns
        self.stats = Normalizer.for_config(cfg, obs_dim, layout) if cfg.obs_norm else None
        self.rng = np.random.default_rng([cfg.seed, 7])  # uniform warm-up actions
        self.goal_rng = np.random.default_rng(
            [cfg.seed, 11]
        )  # --goal-stats relabelled: goals for the statistics
        self.schedule = UpdateSchedule.of(cfg)
        self.metrics: Metrics | None = None
        self.clip_share: dict[str, float] = {}
        self.step, self.safe = 0, False
        self.columns = LogColumns(
            self.goal, tuple(self.stats.groups()) if self.stats is not None else (), n > 1
        )
        if loaded is not None:
            self._restore(state, loaded)
        else:
            self.state = state
            if self.stats is not None:
                for row in collector.obs:
                    self.stats.push(row)
            if learner.param_noise:
                self.state = learner.resample_param_noise(self.state)
        g = self.schedule.gradient_steps
        self.compiling: threading.Thread | None = learner.precompile(
            self.state, g * self.schedule.usual_units(n), cfg.batch_size, cfg.eval_episodes, n
        )
        self.zero_noise = np.zeros(
            self.state.noise.shape, np.float32
        )  # numpy: a fresh device copy, safe to donate
        self.fused_action: Any = None if n == 1 or collector.pending is None else collector.pending
        self.update_s = 0.0  # --profile: seconds in updates since the last log row

    def _restore(self, state: Any, loaded: ckpt.Loaded) -> None:
        self.restore_learner(state, loaded.state, loaded)
        m = loaded.manifest
        set_rng_state(self.rng, m["rng"]["warmup"])
        self.collector.load(m.get("collector"), m["rng"])

    # -- host.Engine
    def advance(self, until: int) -> list[Episode]:
        """One iteration: N env steps (``until`` is for engines that can run further at once)."""
        cfg, n, collector, learner, stats = self.cfg, self.n, self.collector, self.learner, self.stats
        state = self.state
        before, step = self.step, self.step + n  # this iteration's env steps: before + 1 .. step
        if self.compiling is not None and (
            step >= cfg.learning_starts or crossed(before, step, cfg.eval_every) or step == cfg.total_steps
        ):
            self.compiling.join()  # compiled behind the warm-up steps; needed from here on
            self.compiling = None
        # ---- reset the envs whose episode ended (the OU process restarts with each episode)
        reset = collector.reset_done()
        if reset.any():
            if n == 1:
                state = state.replace(noise=self.zero_noise)
            else:
                noise = np.array(state.noise)
                noise[reset] = 0.0
                state = state.replace(noise=noise)
            if stats is not None:
                for i in np.flatnonzero(reset):
                    stats.push(collector.obs[i])
            if learner.param_noise:  # a new perturbed actor for each episode
                state = learner.resample_param_noise(state)
            self.fused_action = None
        # ---- act: uniform warm-up, the action computed with the last update, or a fresh one
        obs_in = collector.obs[0] if n == 1 else collector.obs
        if before + 1 <= cfg.learning_starts:
            action = self.rng.uniform(-1.0, 1.0, self.act_dim if n == 1 else (n, self.act_dim)).astype(
                np.float32
            )
        elif self.fused_action is not None:
            action, self.fused_action = np.asarray(self.fused_action), None
        else:
            a_dev, noise, key = learner.act(state.actor, state.explore, obs_in, state.noise, state.key)
            state = state.replace(noise=noise, key=key)
            action = np.asarray(a_dev)
        actions = action.reshape(n, self.act_dim)
        # ---- step, store, bookkeeping
        next_obs, reward, terminated, done, ends = collector.step(actions, step)
        self.state = state
        if stats is not None:
            for row in next_obs:
                stats.push(row)
            if crossed(before, step, OBS_STATS_EVERY):
                state = self.fresh()
        for i in range(n):
            self.buffer.add(i, collector.obs[i], actions[i], reward[i], next_obs[i], terminated[i], done[i])
        if stats is not None and stats.goal is not None:  # the goals of each new episode, env by env
            for e in ends:
                stats.push_goals(self.buffer.last_episode_goals(e.env, e.length, self.goal_rng))
        collector.advance(next_obs)
        # ---- learn: the update units due in this iteration, as one compiled call
        units = self.schedule.units_between(before, step)
        if units:
            batches = self.buffer.sample(
                cfg.batch_size, units * self.schedule.gradient_steps, cfg.n_step, cfg.gamma
            )
            t_upd = time.perf_counter()
            # the next step acts on these observations: one compiled call does both (after an episode end the
            # action is dropped; one compiled program either way, never a second compile mid-run)
            obs_in = collector.obs[0] if n == 1 else collector.obs
            state, new, self.fused_action = learner.update_and_act(state, batches, obs_in)
            if stats is not None and crossed(before, self.schedule.next_call_end(step, n) - n, cfg.log_every):
                self.clip_share = stats.clip_share(
                    batches.obs[-1], cfg.obs_clip
                )  # the last call before a log
            # with policy_delay, a call may not update the actor (its actor loss is nan): the log shows the loss
            # of the last call that did (decided on the host from the step, so nothing waits)
            keep = self.metrics is not None and not self.schedule.actor_in_call(before, step)
            self.metrics = new._replace(actor_loss=self.metrics.actor_loss) if keep else new
            if cfg.profile:
                jax.block_until_ready(self.metrics)
                self.update_s += time.perf_counter() - t_upd
        if (
            learner.param_noise
            and step > self.schedule.start
            and crossed(before, step, cfg.param_noise_interval)
        ):
            state, _ = learner.adapt_param_noise(state, self.buffer.sample(cfg.batch_size).obs)
        self.state, self.step = state, step
        self.safe = n > 1 or bool(done[0])  # one env: checkpoints at episode ends (no simulator state needed)
        return [Episode(0, before + e.env + 1, e.ret, e.length, e.success, e.env) for e in ends]

    def losses(self, interval_s: float) -> list[LossRow | None]:
        frac = self.update_s / interval_s if self.cfg.profile else None
        self.update_s = 0.0
        return self.loss_rows(frac)

    def snapshots(self) -> list[Snapshot]:
        """Everything that changes while the run goes on: the TrainState and the replay (their own files), and
        in the manifest every random generator, the envs' episodes and the observation statistics."""
        collector = self.collector
        collector.pending = (
            None if self.fused_action is None or self.n == 1 else np.asarray(self.fused_action)
        )
        manifest = {
            "rng": {**self.learner_rngs(), "warmup": rng_state(self.rng), **collector.rng_states()},
            **self.learner_manifest(),
            **({"collector": asdict(collector.state())} if self.n > 1 else {}),
        }
        return [Snapshot(self.state, self.buffer.state_dict(), manifest, self.learner_counters())]

    def end_episodes(self) -> None:
        """The run's end is a checkpoint too, so it can be extended: episodes in progress are closed in the
        buffer (the extension starts new ones)."""
        for i in np.flatnonzero(~self.collector.need_reset):
            self.buffer.end_episode(i)
        self.collector.close_episodes()
        self.fused_action = None

    def close(self) -> None:
        if self.compiling is not None:  # an error while XLA compiles in the background must wait for it to
            self.compiling.join()  # finish: leaving with the thread alive can abort the process (SIGABRT)
            self.compiling = None
