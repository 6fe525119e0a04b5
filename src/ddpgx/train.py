"""The training loop: act -> step -> store -> update -> evaluate -> log. The maths lives in learner.py."""

from __future__ import annotations

import dataclasses
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path

import jax
import numpy as np

from ddpgx import io
from ddpgx.config import Config, preset_config, validate
from ddpgx.envs import make_env, scaler_for
from ddpgx.errors import TrainingDiverged, UserError
from ddpgx.evaluate import Evaluator
from ddpgx.learner import Batch, Learner
from ddpgx.logs import RunLogger
from ddpgx.replay import ReplayBuffer

EVAL_SEED_OFFSET = 1_000_003  # evaluation envs are seeded apart from the training env


@dataclass(frozen=True)
class TrainResult:
    run_dir: Path
    final_eval_mean: float
    final_eval_std: float
    steps: int
    wall_s: float
    params_path: Path


def resolve(cfg: Config) -> Config:
    """Fill in what a Config leaves open: the preset name (env's default) and the run directory."""
    if not cfg.preset:
        cfg = cfg.replace(preset="custom")
    if not cfg.run_dir:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        cfg = cfg.replace(run_dir=f"runs/{cfg.env.replace('/', '-')}__{cfg.preset}__s{cfg.seed}__{stamp}")
    return cfg


def prepare_run_dir(path: Path) -> None:
    if path.exists() and any(path.iterdir()):
        raise UserError(f"run directory {path} already exists and is not empty; pass another --run-dir")
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / ".write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as e:
        raise UserError(
            f"cannot write to run directory {path}: {e.strerror}; pass a writable --run-dir"
        ) from None


def train(cfg: Config) -> TrainResult:
    """Train DDPG as ``cfg`` says; returns where everything went and the final noise-free evaluation."""
    t_start = time.perf_counter()
    cfg = validate(resolve(cfg))
    env = make_env(cfg.env)
    scaler = scaler_for(env)
    obs_dim, act_dim = env.observation_space.shape[0], env.action_space.shape[0]
    run_dir = Path(cfg.run_dir)
    prepare_run_dir(run_dir)
    io.write_json(run_dir / "config.json", io.run_manifest(cfg, env))

    learner = Learner(cfg, obs_dim, act_dim)
    state = learner.init(cfg.seed)
    buffer = ReplayBuffer(cfg.buffer_size, obs_dim, act_dim, seed=cfg.seed)
    rng = np.random.default_rng([cfg.seed, 7])  # uniform warm-up actions
    evaluator = Evaluator(cfg.env, cfg.eval_episodes, seed=cfg.seed + EVAL_SEED_OFFSET)
    logger = RunLogger(run_dir, cfg.total_steps, 0, cfg.tensorboard, cfg.progress)

    def evaluate(step: int) -> tuple[float, float]:
        returns = evaluator.run(lambda o: learner.act_greedy(state.actor, o))
        mean, std = float(returns.mean()), float(returns.std())
        logger.evaluation(step, mean, std)
        return mean, std

    noise, key = state.noise, state.key
    zero_noise = np.zeros_like(np.asarray(noise))
    obs, _ = env.reset(seed=cfg.seed)
    obs = np.asarray(obs, np.float32)
    episode, ep_return, ep_len = 0, 0.0, 0
    metrics = None
    start_updates = max(cfg.learning_starts, cfg.batch_size)
    k = cfg.update_every
    last_eval: tuple[float, float] | None = None
    t_tick, s_tick, sps = time.perf_counter(), 0, 0.0
    try:
        for step in range(1, cfg.total_steps + 1):
            if step <= cfg.learning_starts:
                action = rng.uniform(-1.0, 1.0, act_dim).astype(np.float32)
            else:
                a_dev, noise, key = learner.act(state.actor, obs, noise, key)
                action = np.asarray(a_dev)
            next_obs, reward, terminated, truncated, _ = env.step(scaler.to_env(action))
            next_obs = np.asarray(next_obs, np.float32)
            if not (np.isfinite(next_obs).all() and math.isfinite(reward)):
                raise TrainingDiverged(
                    f"the environment returned a NaN or inf observation/reward at step {step}; "
                    "check the env or its wrappers"
                )
            done = terminated or truncated
            buffer.add(obs, action, reward, next_obs, terminated, done)
            ep_return += float(reward)
            ep_len += 1
            if done:
                episode += 1
                logger.episode(step, episode, ep_return, ep_len)
                ep_return, ep_len = 0.0, 0
                obs = np.asarray(env.reset()[0], np.float32)
                noise = zero_noise
            else:
                obs = next_obs

            if step >= start_updates and (step - start_updates) % k == k - 1:
                batches = Batch(*buffer.sample(cfg.batch_size, k))
                state = state.replace(noise=noise, key=key)
                state, metrics = learner.update(state, batches)
                noise, key = state.noise, state.key

            if step % cfg.log_every == 0:
                now = time.perf_counter()
                sps = (step - s_tick) / max(now - t_tick, 1e-9)
                t_tick, s_tick = now, step
                if metrics is not None:
                    c, a, q = (float(x) for x in jax.device_get(metrics))
                    if not (math.isfinite(c) and math.isfinite(q)):
                        raise TrainingDiverged(
                            f"critic loss became {c} by step {step}; lower --critic-lr or --actor-lr, "
                            "or raise --batch-size"
                        )
                    logger.losses(step, c, a, q, sps)
            if step % cfg.eval_every == 0 or step == cfg.total_steps:
                last_eval = evaluate(step)
            if step % 250 == 0 or step == cfg.total_steps:
                logger.tick(step, sps)
    finally:
        logger.close()
        evaluator.close()
        env.close()

    params_path = run_dir / "final.msgpack"
    state = state.replace(noise=noise, key=key)
    io.save_params(params_path, state)
    assert last_eval is not None
    if cfg.plot:
        from ddpgx.plots import plot_runs

        plot_runs([run_dir], run_dir / "returns.png", metric="both")
    return TrainResult(
        run_dir=run_dir,
        final_eval_mean=last_eval[0],
        final_eval_std=last_eval[1],
        steps=cfg.total_steps,
        wall_s=time.perf_counter() - t_start,
        params_path=params_path,
    )


def config_from_dict(d: dict) -> Config:
    """Rebuild a Config from config.json (lists back to tuples; unknown keys rejected)."""
    names = {f.name for f in dataclasses.fields(Config)}
    unknown = set(d) - names
    if unknown:
        raise UserError(f"config.json has unknown fields {sorted(unknown)}; was it written by a newer ddpgx?")
    return Config(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})


def load_run_config(run_dir: Path | str) -> Config:
    path = Path(run_dir) / "config.json"
    if not path.is_file():
        raise UserError(f"{run_dir} is not a ddpgx run directory (no config.json)")
    try:
        return config_from_dict(json.loads(path.read_text())["config"])
    except (json.JSONDecodeError, KeyError, TypeError) as e:
        raise UserError(f"{path} is not a valid ddpgx config: {e}") from None


__all__ = ["train", "TrainResult", "resolve", "load_run_config", "preset_config"]
