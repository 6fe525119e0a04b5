"""``validate()``: every value of a ``Config`` checked, with a one-line fix for any that cannot make a sensible run."""

from __future__ import annotations

import math

from ddpgx.config import Config
from ddpgx.errors import UserError
from ddpgx.fieldtypes import check_types
from ddpgx.jaxenvs import suite_of  # a suite that cannot run here says why, in one line
from ddpgx.presets import PRESETS
from ddpgx.trackers import check_tracker


def validate(cfg: Config) -> Config:
    """Raise ``UserError`` with a one-line fix for any value that cannot make a sensible run."""

    def need(ok: bool, msg: str) -> None:
        if not ok:
            raise UserError(msg)

    check_types(cfg)
    need(cfg.seed >= 0, f"--seed must be >= 0, got {cfg.seed}")
    need(cfg.num_envs >= 1, f"--num-envs must be a positive integer, got {cfg.num_envs}")
    need(cfg.num_seeds >= 1, f"--num-seeds must be a positive integer, got {cfg.num_seeds}")
    need(cfg.chunk_steps >= 1, f"--chunk-steps must be a positive integer, got {cfg.chunk_steps}")
    need(
        cfg.num_seeds == 1 or suite_of(cfg.env) is not None,
        f"--num-seeds {cfg.num_seeds} vmaps seeds in the compiled loop of JAX-native envs (gymnax:Id); {cfg.env} "
        "is a Gymnasium env, so train its seeds as separate runs: ddpgx sweep --env ENV --seeds 0-N",
    )
    need(
        cfg.num_envs == 1 or cfg.total_steps % cfg.num_envs == 0,
        f"--total-steps {cfg.total_steps} is not a multiple of --num-envs {cfg.num_envs} (each iteration steps every "
        f"env once); use {cfg.total_steps // cfg.num_envs * cfg.num_envs or cfg.num_envs}",
    )
    need(
        cfg.num_envs == 1 or cfg.noise != "param",
        "--noise param perturbs one actor per episode; with --num-envs > 1 use --noise gaussian or ou",
    )
    _check_actors(cfg, need)
    if cfg.preset and cfg.preset != "custom" and cfg.preset not in PRESETS:
        raise UserError(f"unknown preset '{cfg.preset}'; choose one of: {', '.join(PRESETS)}")
    for name in ("actor_lr", "critic_lr"):
        v = getattr(cfg, name)
        need(math.isfinite(v) and v > 0, f"--{_flag(name)} must be a positive number, got {v}")
    for name in ("batch_size", "total_steps", "buffer_size", "update_every", "policy_delay", "eval_episodes"):
        v = getattr(cfg, name)
        need(v > 0, f"--{_flag(name)} must be a positive integer, got {v}")
    for name in ("eval_every", "log_every", "checkpoint_every", "keep_checkpoints"):
        v = getattr(cfg, name)
        need(v > 0, f"--{_flag(name)} must be a positive integer, got {v}")
    need(cfg.learning_starts >= 0, f"--learning-starts must be >= 0, got {cfg.learning_starts}")
    need(0.0 < cfg.tau <= 1.0, f"--tau must be in (0, 1], got {cfg.tau}")
    need(0.0 <= cfg.gamma <= 1.0, f"--gamma must be in [0, 1], got {cfg.gamma}")
    need(
        cfg.batch_size <= cfg.buffer_size,
        f"--batch-size {cfg.batch_size} is larger than --buffer-size {cfg.buffer_size}; "
        "lower the batch or raise the buffer",
    )
    need(cfg.critic_weight_decay >= 0, f"--critic-weight-decay must be >= 0, got {cfg.critic_weight_decay}")
    need(cfg.noise_sigma >= 0, f"--noise-sigma must be >= 0, got {cfg.noise_sigma}")
    need(0 < cfg.noise_theta <= 1, f"--noise-theta must be in (0, 1], got {cfg.noise_theta}")
    need(cfg.final_init >= 0, f"--final-init must be >= 0, got {cfg.final_init}")
    need(0 < cfg.bn_momentum < 1, f"--bn-momentum must be in (0, 1), got {cfg.bn_momentum}")
    need(
        len(cfg.actor_hidden) >= 1 and all(h > 0 for h in cfg.actor_hidden), "--actor-hidden needs sizes > 0"
    )
    need(
        len(cfg.critic_hidden) >= 1 and all(h > 0 for h in cfg.critic_hidden),
        "--critic-hidden needs sizes > 0",
    )
    need(
        0 <= cfg.critic_action_layer < len(cfg.critic_hidden),
        f"--critic-action-layer must be in [0, {len(cfg.critic_hidden) - 1}] "
        f"for --critic-hidden {' '.join(map(str, cfg.critic_hidden))}",
    )
    need(
        sum((cfg.batch_norm, cfg.layer_norm, cfg.batch_renorm)) <= 1,
        "choose one of --batch-norm, --layer-norm and --batch-renorm, not two",
    )
    need(
        not cfg.batch_renorm or cfg.critic_action_layer == 0,
        "--batch-renorm normalizes the state and the action together at the critic's input; use "
        "--critic-action-layer 0",
    )
    need(cfg.renorm_warmup >= 0, f"--renorm-warmup must be >= 0, got {cfg.renorm_warmup}")
    need(0 <= cfg.adam_b1 < 1, f"--adam-b1 must be in [0, 1), got {cfg.adam_b1}")
    need(
        not (cfg.joint_critic_pass and cfg.target_networks),
        "--joint-critic-pass takes Q(s', mu(s')) from the online critic's pass; add --no-target-networks",
    )
    need(
        cfg.actor_q == "first" or cfg.twin_critic,
        "--actor-q min maximizes the smaller of twin critics' values; add --twin-critic",
    )
    need(cfg.gradient_steps >= 0, f"--gradient-steps must be >= 0, got {cfg.gradient_steps}")
    need(cfg.her_k >= 0, f"--her-k must be >= 0, got {cfg.her_k}")
    need(cfg.action_l2 >= 0, f"--action-l2 must be >= 0, got {cfg.action_l2}")
    need(0 <= cfg.random_eps <= 1, f"--random-eps must be in [0, 1], got {cfg.random_eps}")
    need(
        len(cfg.target_clip) in (0, 2) and (not cfg.target_clip or cfg.target_clip[0] < cfg.target_clip[1]),
        f"--target-clip takes LOW HIGH with LOW < HIGH (or nothing), got {' '.join(map(str, cfg.target_clip))}",
    )
    need(not (cfg.her and cfg.n_step > 1), "--her replays one-step transitions; use --n-step 1 with it")
    need(cfg.target_noise >= 0, f"--target-noise must be >= 0, got {cfg.target_noise}")
    need(cfg.target_noise_clip > 0, f"--target-noise-clip must be > 0, got {cfg.target_noise_clip}")
    need(
        math.isfinite(cfg.policy_avg) and 0 <= cfg.policy_avg <= 1,
        f"--policy-avg must be in [0, 1] (0: off; 0.001 averages over ~1000 actor updates), got {cfg.policy_avg}",
    )
    need(1 <= cfg.n_step <= 100, f"--n-step must be in [1, 100], got {cfg.n_step}")
    need(cfg.obs_clip > 0, f"--obs-clip must be > 0, got {cfg.obs_clip}")
    need(
        math.isfinite(cfg.obs_std_floor) and cfg.obs_std_floor >= 0,
        f"--obs-std-floor must be >= 0, got {cfg.obs_std_floor}",
    )
    need(
        cfg.goal_stats == "seen" or (cfg.her and cfg.obs_norm),
        "--goal-stats relabelled fits the normalizer to HER's relabelled goals; it needs --her and --obs-norm",
    )
    need(
        cfg.target_return is None or math.isfinite(cfg.target_return),
        f"--target-return must be a finite number, got {cfg.target_return}",
    )
    need(
        cfg.target_success is None or 0 < cfg.target_success <= 1,
        f"--target-success must be in (0, 1], got {cfg.target_success}",
    )
    need(cfg.param_noise_delta > 0, f"--param-noise-delta must be > 0, got {cfg.param_noise_delta}")
    need(cfg.param_noise_interval > 0, f"--param-noise-interval must be > 0, got {cfg.param_noise_interval}")
    need(cfg.param_noise_sigma > 0, f"--param-noise-sigma must be > 0, got {cfg.param_noise_sigma}")
    need(
        not (cfg.noise == "param" and (cfg.batch_norm or cfg.batch_renorm)),
        "--noise param puts LayerNorm in the actor; it cannot be combined with --batch-norm or --batch-renorm",
    )
    check_tracker(cfg)  # a known --tracker whose package is installed
    return cfg


def _flag(name: str) -> str:
    return name.replace("_", "-")


__all__ = ["validate"]


def _check_actors(cfg: Config, need) -> None:  # noqa: ANN001 - validate's need()
    """--actors and its fields."""
    need(cfg.actors >= 0, f"--actors must be >= 0 (0: collect in the learner's process), got {cfg.actors}")
    need(
        cfg.actor_steps >= 0,
        f"--actor-steps must be >= 0 (0: chosen from --update-every), got {cfg.actor_steps}",
    )
    need(
        math.isfinite(cfg.actor_cpus) and cfg.actor_cpus >= 0,
        f"--actor-cpus must be >= 0, got {cfg.actor_cpus}",
    )
    if not cfg.actors:
        return
    need(
        suite_of(cfg.env) is None,
        f"--actors steps Gymnasium envs in Ray actors; {cfg.env} is a JAX-native env, whose compiled loop steps "
        "its envs inside the program: drop --actors (use --num-envs, or --num-seeds for many seeds)",
    )
    need(
        cfg.noise != "param",
        "--noise param perturbs one actor per episode in the learner; with --actors use --noise gaussian or ou",
    )
    need(
        cfg.vector == "sync",
        "--vector async steps the envs in subprocesses of the learner; with --actors each actor steps its "
        "--num-envs envs itself: drop --vector async (raise --actors for more processes)",
    )
    m = cfg.actors * cfg.num_envs
    need(
        cfg.total_steps % m == 0,
        f"--total-steps {cfg.total_steps} is not a multiple of --actors x --num-envs = {m} (each cycle steps every "
        f"env alike); use {cfg.total_steps // m * m or m}",
    )
