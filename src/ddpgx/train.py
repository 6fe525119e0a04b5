"""The training loop: act -> step -> store -> update -> evaluate -> log -> checkpoint. The maths is in learner.py;
the run directory's life (lock, config.json, checkpoints, final files) is in run.py.

A run can stop at any moment (crash, kill, pre-emption) and continue with ``train(..., resume=True)`` from its
latest checkpoint, ending bitwise-identical to the uninterrupted run: checkpoints hold every changing thing (the
TrainState, the replay buffer, every random generator, the loop's counters and the logs' lengths) and are taken at
episode ends, so no simulator state is needed. A run's last checkpoint is taken when it ends, so a finished run
can be extended with a larger ``total_steps``; the extension starts a new episode.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import serialization

from ddpgx import checkpoint as ckpt
from ddpgx import runfiles
from ddpgx.collect import Collector, EnvProcessDied
from ddpgx.config import Config, check_memory, preset_config, resolve, validate
from ddpgx.envs import make_run_env, scaler_for
from ddpgx.errors import TrainingDiverged, UserError, warn
from ddpgx.evaluate import Evaluator
from ddpgx.goals import goal_layout
from ddpgx.learner import NEWER_FIELDS, Learner, Metrics, enable_compile_cache, policy_vars
from ddpgx.logs import RunLogger
from ddpgx.obsnorm import Normalizer
from ddpgx.replay import PerEnvReplay, ReplayBuffer
from ddpgx.run import RunDir, load_run_config
from ddpgx.schedule import UpdateSchedule, crossed

EVAL_SEED_OFFSET = 1_000_003  # evaluation envs are seeded apart from the training env
OBS_STATS_EVERY = 100  # --obs-norm: env steps between writes of the statistics into the networks


@dataclass(frozen=True)
class TrainResult:
    run_dir: Path
    final_eval_mean: float
    final_eval_std: float
    steps: int
    wall_s: float
    params_path: Path
    runs: tuple[Path, ...] = ()  # --num-seeds > 1: each seed's run directory (run_dir is their group's)


class Interrupted(Exception):
    """SIGINT/SIGTERM arrived (``signum``; 0 when ``train``'s ``stop`` asked); a checkpoint was saved at ``step``."""

    def __init__(self, step: int, run_dir: Path, signum: int) -> None:
        super().__init__(f"saved at step {step}; resume with: ddpgx train --resume {run_dir}")
        self.step, self.run_dir, self.signum = step, run_dir, signum


@dataclass
class Counters:
    """The loop's own progress, saved in every checkpoint."""

    step: int = 0
    episode: int = 0
    wall_s: float = 0.0
    last_eval: list[float] | None = None
    last_return: float = float("nan")
    metrics: list[float] | None = None
    next_checkpoint: int = 0
    csv_sizes: dict[str, int] = field(default_factory=dict)
    clip_share: dict[str, float] = field(default_factory=dict)  # --obs-norm: of the last batch before a log
    best: list[float] | None = None  # [step, mean return] of the best noise-free evaluation (best.msgpack)


class _Signals:
    """SIGINT/SIGTERM set a flag the loop checks at episode ends; a second signal stops at once."""

    def __init__(self) -> None:
        self.received: int | None = None
        self.previous: dict[int, Any] = {}

    def __enter__(self) -> _Signals:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self.previous[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        if self.received is not None:
            raise KeyboardInterrupt
        self.received = signum

    def __exit__(self, *exc: Any) -> None:
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)


def make_buffer(cfg: Config, env: Any, obs_dim: int, act_dim: int) -> PerEnvReplay:
    """The run's replay, one buffer per env: HER's episode replay for ``--her`` on a goal env, else the
    transition ring; the capacity is shared out among the envs."""
    from ddpgx.goals import find_flatten

    layout = goal_layout(env)
    n = cfg.num_envs
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
    from ddpgx.her import HerBuffer

    reward_fn = find_flatten(env).reward_fn
    bufs = [
        HerBuffer(share, max_steps, layout, act_dim, reward_fn, cfg.her_k, cfg.her_strategy, seed=cfg.seed)
        for _ in range(n)
    ]
    return PerEnvReplay(bufs, seed=cfg.seed)


def success_of(info: dict) -> float:
    """An episode's success, from its last step's ``info["is_success"]`` (NaN where the env gives none)."""
    v = info.get("is_success")
    return float("nan") if v is None else float(v)


def checkpoint_check(
    state: Any, buffer: PerEnvReplay, obs_norm: bool = False, goal_stats: bool = False, num_envs: int = 1
):
    """A checkpoint fits this run when its trees have the keys, shapes and dtypes the config implies."""
    template = runfiles.jax_to_numpy(serialization.to_state_dict(state))

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
            Counters(**loaded.manifest["counters"])
            loaded.manifest["rng"]["replay"], loaded.manifest["rng"]["eval"]  # noqa: B018
        except (KeyError, TypeError) as e:
            return f"manifest.json lacks the loop's counters or random states ({type(e).__name__}: {e})"
        return None

    return check


def train(cfg: Config, resume: bool = False, stop: Callable[[], bool] | None = None) -> TrainResult:
    """Train DDPG as ``cfg`` says; returns where everything went and the final noise-free evaluation.

    With ``resume=True``, ``cfg.run_dir`` must be an existing run: it continues from its latest valid checkpoint
    (``cfg.total_steps`` may be larger than the original, to extend it). Everything is validated (the config, the
    env, the memory the run needs) before the run directory is created or locked. ``stop`` is asked at every
    episode end; once it says True the run checkpoints and raises ``Interrupted``, as on SIGINT (sweeps use it).
    """
    t_start = time.perf_counter()
    if not isinstance(cfg, Config):
        raise UserError(
            f"train() takes a Config (preset_config(...)), got {type(cfg).__name__} {str(cfg)[:60]!r}"
        )
    cfg = validate(resolve(cfg))
    from ddpgx.jaxenvs import suite_of

    if suite_of(cfg.env) is not None:  # a JAX-native env: the whole loop is one compiled program
        from ddpgx.jaxloop import train_compiled

        return train_compiled(cfg, resume, stop, t_start)
    run = RunDir(cfg, resume)
    if cfg.compile_cache:
        enable_compile_cache(cfg.compile_cache)
    with contextlib.ExitStack() as closing:
        env = make_run_env(cfg)  # the first env: the checks, the spaces, the goal layout and HER's rewards
        closing.callback(env.close)
        check_time_limit(cfg, env)
        check_first_step(cfg)
        scaler = scaler_for(env)
        obs_dim, act_dim = env.observation_space.shape[0], env.action_space.shape[0]
        check_memory(cfg, obs_dim, act_dim)
        first_update = max(cfg.learning_starts, cfg.batch_size) + cfg.update_every - 1
        if cfg.total_steps < first_update and not resume:
            warn(
                f"--total-steps {cfg.total_steps} is below the {first_update} steps before the first update "
                "(--learning-starts, a first --batch-size of data, --update-every): no gradient update will run"
            )
        learner = Learner(cfg, obs_dim, act_dim)
        state = learner.init(cfg.seed)
        buffer = make_buffer(cfg, env, obs_dim, act_dim)
        rng = np.random.default_rng([cfg.seed, 7])  # uniform warm-up actions
        evaluator = Evaluator(partial(make_run_env, cfg), cfg.eval_episodes, seed=cfg.seed + EVAL_SEED_OFFSET)
        closing.callback(evaluator.close)
        if cfg.num_envs > 1 and cfg.vector == "async":  # one env stays in this process whatever --vector says
            check_async_env(cfg)
        layout = goal_layout(env)
        collector = Collector(
            partial(make_run_env, cfg), env, cfg.num_envs, cfg.vector, cfg.seed, scaler, layout is not None
        )
        closing.callback(collector.close)
        collector.reset_done()  # a NaN from reset is refused before the run directory exists
        # releases the lock however open() or the loop ends (a no-op if never taken)
        closing.callback(run.close)
        check = checkpoint_check(
            state, buffer, cfg.obs_norm, cfg.obs_norm and cfg.goal_stats == "relabelled", cfg.num_envs
        )
        loaded = run.open(runfiles.run_manifest(cfg, env), check=check)
        return _loop(
            cfg, run, collector, learner, state, buffer, rng, evaluator, loaded, t_start, stop, layout
        )


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


def check_time_limit(cfg: Config, env: Any) -> None:
    """An env without a time limit gets envs.DEFAULT_MAX_EPISODE_STEPS (episodes that never end would never be
    logged, and a stop signal would wait for an episode end that never comes): say so once."""
    if getattr(env, "ddpgx_default_limit", False):
        from ddpgx.envs import DEFAULT_MAX_EPISODE_STEPS

        warn(
            f"{cfg.env} has no time limit; its episodes end after {DEFAULT_MAX_EPISODE_STEPS} steps (pass "
            "--env-kwargs max_episode_steps=N for another limit)"
        )


def check_async_env(cfg: Config) -> None:
    """--vector async makes each env in a subprocess from the config alone: try that once, in a fresh interpreter
    with this one's import path, so an env only this process knows (registered inside a script) is one line now
    instead of a subprocess traceback later."""
    import pickle
    import subprocess
    import sys

    probe = "import pickle, sys; path, make = pickle.loads(sys.stdin.buffer.read()); sys.path[:] = path; pickle.loads(make)().close()"
    try:
        payload = pickle.dumps((sys.path, pickle.dumps(partial(make_run_env, cfg))))
        r = subprocess.run([sys.executable, "-c", probe], input=payload, capture_output=True, timeout=300)
        failed, why = (
            r.returncode != 0,
            (r.stderr.decode(errors="replace").strip().splitlines() or ["exit"])[-1],
        )
    except Exception as e:  # noqa: BLE001 - unpicklable config values or a probe that cannot start
        failed, why = True, f"{type(e).__name__}: {e}"
    if failed:
        raise UserError(
            f"--vector async cannot make {cfg.env} in a subprocess ({why[:200]}); an env registered inside a script "
            "is unknown there: name it module:Id or module:Class, or use --vector sync"
        )


def _loop(
    cfg: Config,
    run: RunDir,
    collector: Collector,
    learner: Learner,
    state: Any,
    buffer: PerEnvReplay,
    rng: np.random.Generator,
    evaluator: Evaluator,
    loaded: ckpt.Loaded | None,
    t_start: float,
    stop: Callable[[], bool] | None,
    layout: Any,
) -> TrainResult:
    n = cfg.num_envs
    obs_dim, act_dim = collector.obs.shape[1], collector.envs.single_action_space.shape[0]
    c = Counters(next_checkpoint=cfg.checkpoint_every)
    stats = Normalizer.for_config(cfg, obs_dim, layout) if cfg.obs_norm else None
    goal_rng = np.random.default_rng(
        [cfg.seed, 11]
    )  # --goal-stats relabelled: goals drawn for the statistics
    schedule = UpdateSchedule.of(cfg)

    def fresh(state: Any) -> Any:
        """The state with the latest observation statistics in its networks. The loop writes them every
        OBS_STATS_EVERY env steps and before every evaluation and the final save, not before every compiled call:
        that would copy 8 small arrays to the device each step for statistics that barely move. The float64
        statistics take in every observation all along. Step-based, so a resumed run writes them where the
        uninterrupted one did."""
        if stats is not None and stats.changed:
            state = learner.set_obs_stats(state, *stats.mean_std())
            stats.changed = False
        return state

    if loaded is not None:
        m = loaded.manifest
        # a checkpoint written before parameter noise (or --policy-avg) existed lacks its entry: nothing to keep
        state = serialization.from_state_dict(state, {**NEWER_FIELDS, **loaded.state})
        state = jax.tree_util.tree_map(jnp.asarray, state)
        buffer.load_state_dict(loaded.replay)
        ckpt.set_rng_state(buffer.rng, m["rng"]["replay"])
        ckpt.set_rng_state(rng, m["rng"]["warmup"])
        collector.load(m.get("collector"), m["rng"])
        evaluator.load_state(m["rng"]["eval"])
        if "goal_stats" in m["rng"]:
            ckpt.set_rng_state(goal_rng, m["rng"]["goal_stats"])
        if stats is not None:
            stats.load_state(m["obs_stats"])
        c = Counters(**m["counters"])
    else:
        if stats is not None:
            for row in collector.obs:
                stats.push(row)
        if learner.param_noise:
            state = learner.resample_param_noise(state)

    goal = layout is not None  # goal envs log their success rate beside the returns
    logger = RunLogger(
        run.path,
        cfg.total_steps,
        c.step,
        cfg.tensorboard,
        cfg.progress,
        wall_offset=c.wall_s,
        purge_step=c.step + 1 if loaded is not None else None,
        success=goal,
        clip_groups=tuple(stats.groups()) if stats is not None else (),
        env_column=n > 1,
    )
    logger.last_return = c.last_return
    if c.last_eval is not None:
        logger.last_eval = c.last_eval[0]
        logger.last_success = c.last_eval[2] if len(c.last_eval) > 2 else float("nan")
    metrics: Metrics | None = None if c.metrics is None else Metrics(*(jnp.float32(x) for x in c.metrics))

    def save_checkpoint(step: int, finished: str | None = None) -> None:
        """Everything that changes while the run goes on, in one place: the TrainState and the replay (their own
        files), and in the manifest the loop's counters, every random generator, the envs' episodes and the
        observation statistics."""
        logger.flush()
        c.step, c.wall_s = step, logger.wall()
        c.last_return = logger.last_return
        c.metrics = None if metrics is None else [float(x) for x in jax.device_get(metrics)]
        c.csv_sizes = logger.csv_sizes()
        collector.pending = None if fused_action is None or n == 1 else np.asarray(fused_action)
        manifest = {
            "env": cfg.env,
            "preset": cfg.preset,
            "counters": dataclasses.asdict(c),
            "rng": {
                "replay": ckpt.rng_state(buffer.rng),
                "warmup": ckpt.rng_state(rng),
                **collector.rng_states(),
                "eval": evaluator.state(),
                **({"goal_stats": ckpt.rng_state(goal_rng)} if stats is not None and stats.goal else {}),
            },
            **({"obs_stats": stats.state()} if stats is not None else {}),
            **({"collector": dataclasses.asdict(collector.state())} if n > 1 else {}),
        }
        run.save_checkpoint(step, state, buffer.state_dict(), manifest, finished)

    g = schedule.gradient_steps
    compiling: threading.Thread | None = learner.precompile(
        state, g * schedule.usual_units(n), cfg.batch_size, cfg.eval_episodes, n
    )
    zero_noise = np.zeros(
        state.noise.shape, np.float32
    )  # numpy: a fresh device copy each time, safe to donate
    t_tick, s_tick, sps, update_s = time.perf_counter(), c.step, 0.0, 0.0
    step = c.step
    fused_action: Any = None if n == 1 or collector.pending is None else collector.pending
    solved: str | None = None  # the early stop that ended the run
    try:
        with _Signals() as signals:
            while step < cfg.total_steps:
                before, step = step, step + n  # this iteration's env steps: before + 1 .. step
                if compiling is not None and (
                    step >= cfg.learning_starts
                    or crossed(before, step, cfg.eval_every)
                    or step == cfg.total_steps
                ):
                    compiling.join()  # compiled behind the warm-up steps; needed from here on
                    compiling = None
                # ---- reset the envs whose episode ended (the OU process restarts with each episode)
                reset = collector.reset_done()
                if reset.any():
                    if n == 1:
                        state = state.replace(noise=zero_noise)
                    else:
                        noise = np.array(state.noise)
                        noise[reset] = 0.0
                        state = state.replace(noise=noise)
                    if stats is not None:
                        for i in np.flatnonzero(reset):
                            stats.push(collector.obs[i])
                    if learner.param_noise:  # a new perturbed actor for each episode
                        state = learner.resample_param_noise(state)
                    fused_action = None
                # ---- act: uniform warm-up, the action computed with the last update, or a fresh one
                obs_in = collector.obs[0] if n == 1 else collector.obs
                if before + 1 <= cfg.learning_starts:
                    action = rng.uniform(-1.0, 1.0, act_dim if n == 1 else (n, act_dim)).astype(np.float32)
                elif fused_action is not None:
                    action, fused_action = np.asarray(fused_action), None
                else:
                    a_dev, noise, key = learner.act(
                        state.actor, state.explore, obs_in, state.noise, state.key
                    )
                    state = state.replace(noise=noise, key=key)
                    action = np.asarray(a_dev)
                actions = action.reshape(n, act_dim)
                # ---- step, store, bookkeeping
                next_obs, reward, terminated, done, ends = collector.step(actions, step)
                if stats is not None:
                    for row in next_obs:
                        stats.push(row)
                    if crossed(before, step, OBS_STATS_EVERY):
                        state = fresh(state)
                for i in range(n):
                    buffer.add(
                        i, collector.obs[i], actions[i], reward[i], next_obs[i], terminated[i], done[i]
                    )
                if stats is not None and stats.goal is not None:  # the goals of each new episode, env by env
                    for e in ends:
                        stats.push_goals(buffer.last_episode_goals(e.env, e.length, goal_rng))
                collector.advance(next_obs)
                for e in ends:
                    c.episode += 1
                    logger.episode(before + e.env + 1, c.episode, e.ret, e.length, e.success, env=e.env)
                # ---- learn: the update units due in this iteration, as one compiled call
                units = schedule.units_between(before, step)
                if units:
                    batches = buffer.sample(cfg.batch_size, units * g, cfg.n_step, cfg.gamma)
                    if cfg.profile:
                        t_upd = time.perf_counter()
                    # the next step acts on these observations: one compiled call does both (after an episode end
                    # the action is dropped; one compiled program either way, never a second compile mid-run)
                    obs_in = collector.obs[0] if n == 1 else collector.obs
                    state, new, fused_action = learner.update_and_act(state, batches, obs_in)
                    if stats is not None and crossed(
                        before, schedule.next_call_end(step, n) - n, cfg.log_every
                    ):
                        c.clip_share = stats.clip_share(
                            batches.obs[-1], cfg.obs_clip
                        )  # the last call before a log
                    # with policy_delay, a call may not update the actor (its actor loss is nan): the log shows the
                    # loss of the last call that did (decided on the host from the step, so nothing waits)
                    keep = metrics is not None and not schedule.actor_in_call(before, step)
                    metrics = new._replace(actor_loss=metrics.actor_loss) if keep else new
                    if cfg.profile:
                        jax.block_until_ready(metrics)
                        update_s += time.perf_counter() - t_upd
                if (
                    learner.param_noise
                    and step > schedule.start
                    and crossed(before, step, cfg.param_noise_interval)
                ):
                    state, _ = learner.adapt_param_noise(state, buffer.sample(cfg.batch_size).obs)
                # ---- log, evaluate, checkpoint
                if crossed(before, step, cfg.log_every):
                    now = time.perf_counter()
                    sps = (step - s_tick) / max(now - t_tick, 1e-9)
                    update_frac = update_s / max(now - t_tick, 1e-9) if cfg.profile else None
                    t_tick, s_tick, update_s = now, step, 0.0
                    if metrics is not None:
                        cl, al, q = (float(x) for x in jax.device_get(metrics))
                        if not (math.isfinite(cl) and math.isfinite(q)):
                            raise TrainingDiverged(
                                f"critic loss became {cl} by step {step}; lower --critic-lr or --actor-lr, "
                                "or raise --batch-size"
                            )
                        logger.losses(step, cl, al, q, sps, update_frac, c.clip_share)
                if crossed(before, step, cfg.eval_every) or step == cfg.total_steps:
                    state = fresh(state)
                    returns = evaluator.run(partial(learner.act_greedy, policy_vars(state)))
                    c.last_eval = [float(returns.mean()), float(returns.std())]
                    if goal:
                        c.last_eval.append(float(np.mean(evaluator.successes)))
                    logger.evaluation(step, *c.last_eval)
                    if c.best is None or c.last_eval[0] > c.best[1]:  # the best policy so far, kept on disk
                        c.best = [step, c.last_eval[0]]
                        run.save_best(state, step)
                    if cfg.target_return is not None and c.last_eval[0] >= cfg.target_return:
                        solved = "target_return"
                        break
                    if goal and cfg.target_success is not None and c.last_eval[2] >= cfg.target_success:
                        solved = "target_success"
                        break
                if crossed(before, step, 250) or step == cfg.total_steps:
                    logger.tick(step, sps)
                # N = 1 checkpoints at episode ends (no simulator state needed); N > 1 at any iteration
                if step < cfg.total_steps and (n > 1 or done[0]):
                    stopping = signals.received or (stop is not None and stop())
                    if step >= c.next_checkpoint or stopping:
                        c.next_checkpoint = (step // cfg.checkpoint_every + 1) * cfg.checkpoint_every
                        save_checkpoint(step)
                        if stopping:
                            raise Interrupted(step, run.path, signals.received or 0)
        # the run's end is a checkpoint too, so it can be extended; episodes still in progress are closed in the
        # buffer (the extension starts new ones)
        for i in np.flatnonzero(~collector.need_reset):
            buffer.end_episode(i)
        collector.close_episodes()
        fused_action = None
        save_checkpoint(step, finished=solved or "total_steps")
    except (
        EnvProcessDied
    ) as e:  # the last checkpoint is the place to continue from (this step's state is torn)
        last = ckpt.latest_name(run.path)
        where = f"its last checkpoint ({last})" if last else "its start (no checkpoint was taken yet)"
        raise EnvProcessDied(
            f"{e} at step {step}; the run continues from {where} with: ddpgx train --resume {run.path}"
        ) from None
    finally:
        if compiling is not None:  # an error while XLA compiles in the background must wait for it to finish:
            compiling.join()  # leaving with the thread alive can abort the process (SIGABRT) instead of exit 2
        logger.close()

    params_path = run.finish(fresh(state), step)
    assert c.last_eval is not None
    if cfg.plot:
        from ddpgx.plots import plot_runs

        plot_runs([run.path], run.path / "returns.png", metric="both")
    return TrainResult(
        run_dir=run.path,
        final_eval_mean=c.last_eval[0],
        final_eval_std=c.last_eval[1],
        steps=step,
        wall_s=time.perf_counter() - t_start,
        params_path=params_path,
    )


__all__ = ["train", "TrainResult", "Interrupted", "resolve", "load_run_config", "preset_config"]
