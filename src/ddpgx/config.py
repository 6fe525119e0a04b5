"""Every hyperparameter of a ddpgx run, the named presets, and their validation.

A ``Config`` is a frozen dataclass: one value fully describes a run. Presets are plain ``Config`` values;
the command line starts from a preset and overrides single fields (``--tau 0.01``).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Literal

from ddpgx.errors import UserError

NoiseKind = Literal["ou", "gaussian"]


@dataclass(frozen=True)
class Config:
    """One DDPG run. Every field is a command-line flag of ``ddpgx train`` (``total_steps`` -> ``--total-steps``)."""

    env: str = "Pendulum-v1"
    """Gymnasium environment id; its action space must be a bounded continuous Box."""
    preset: str = ""
    """Preset the values come from (paper, modern, pendulum); the CLI's default: pendulum for Pendulum-v1, else
    modern. A label only when a Config is built by hand: start from ``preset_config(name, ...)`` instead."""
    seed: int = 0
    """Seeds everything: network init, noise, replay sampling, the training env and the evaluation env."""
    total_steps: int = 1_000_000
    """Environment steps to train for."""
    learning_starts: int = 10_000
    """Uniform random actions (and no gradient updates) for this many first steps."""

    # --- networks
    actor_hidden: tuple[int, ...] = (256, 256)
    """Hidden layer sizes of the actor mu(s) (ReLU; tanh output in [-1, 1])."""
    critic_hidden: tuple[int, ...] = (256, 256)
    """Hidden layer sizes of the critic Q(s, a) (ReLU; linear scalar output)."""
    critic_action_layer: int = 0
    """Hidden layer of the critic the action enters: 0 = with the state at the input, 1 = at the second layer."""
    batch_norm: bool = False
    """Batch normalization as in the paper: state input, every actor layer, critic layers before the action."""
    bn_momentum: float = 0.99
    """Decay of batch normalization's running mean and variance (used when acting and in target networks)."""
    layer_norm: bool = False
    """LayerNorm after every hidden layer (before ReLU) of both networks; an alternative to batch_norm."""
    final_init: float = 0.0
    """Final layers' weights and biases start in U[-final_init, final_init]; 0 keeps the fan-in rule."""

    # --- learning
    actor_lr: float = 3e-4
    """Adam learning rate of the actor."""
    critic_lr: float = 3e-4
    """Adam learning rate of the critic."""
    critic_weight_decay: float = 0.0
    """L2 penalty on the critic's weight matrices (coupled, added to the gradient before Adam; paper: 1e-2)."""
    gamma: float = 0.99
    """Discount factor."""
    tau: float = 0.005
    """Soft target update rate: target <- tau * online + (1 - tau) * target, after every gradient step."""
    batch_size: int = 256
    """Transitions per gradient step."""
    buffer_size: int = 1_000_000
    """Replay buffer capacity in transitions."""
    update_every: int = 1
    """Collect this many env steps, then run as many gradient steps in one compiled call (1 update per step)."""
    policy_delay: int = 1
    """Update the actor and the targets every this many critic steps (1 = DDPG, 2 = CleanRL/TD3 style)."""

    # --- exploration
    noise: NoiseKind = "gaussian"
    """Exploration noise added to the actor's action in [-1, 1]: Ornstein-Uhlenbeck (ou) or gaussian."""
    noise_sigma: float = 0.1
    """Scale of the noise, in units of the normalized action range [-1, 1]."""
    noise_theta: float = 0.15
    """Mean reversion rate of the OU process (ignored by gaussian noise)."""

    # --- evaluation and logging
    eval_every: int = 5_000
    """Evaluate the noise-free policy every this many env steps (and at the end)."""
    eval_episodes: int = 10
    """Episodes per evaluation, run on a separate environment seeded apart from training."""
    target_return: float | None = None
    """Stop early once a noise-free evaluation's mean return reaches this value (None: run all steps)."""
    log_every: int = 1_000
    """Write losses and speed to train.csv / TensorBoard every this many env steps."""
    checkpoint_every: int = 50_000
    """Save a resumable checkpoint at the first episode end after every this many env steps."""
    keep_checkpoints: int = 2
    """Checkpoints kept on disk (older ones are deleted once a newer one is complete)."""
    run_dir: str = ""
    """Output directory. Empty: runs/<env>__<preset>__s<seed>__<timestamp>."""
    compile_cache: str = ""
    """Directory to keep compiled XLA programs in between runs: a later run with the same shapes and jax version
    loads them instead of compiling (about 1 s saved per run on a CPU). Empty: compile every run."""
    profile: bool = False
    """Time the update inside the loop (waits for each update to finish) and log its share of wall time in
    train.csv's update_frac column; for benchmarks, it costs almost nothing since acting waits anyway."""
    tensorboard: bool = True
    """Also write TensorBoard event files to <run_dir>/tb."""
    progress: bool = True
    """Show a progress bar (steps, steps/s, ETA, last returns)."""
    plot: bool = True
    """Write returns.png (episode and eval returns against steps) into the run directory at the end."""

    def replace(self, **changes: object) -> Config:
        return dataclasses.replace(self, **changes)


PAPER = Config(
    preset="paper",
    total_steps=1_000_000,
    learning_starts=64,
    actor_hidden=(400, 300),
    critic_hidden=(400, 300),
    critic_action_layer=1,
    batch_norm=True,
    final_init=3e-3,
    actor_lr=1e-4,
    critic_lr=1e-3,
    critic_weight_decay=1e-2,
    gamma=0.99,
    tau=0.001,
    batch_size=64,
    buffer_size=1_000_000,
    noise="ou",
    noise_sigma=0.2,
    noise_theta=0.15,
)

MODERN = Config(preset="modern")  # the dataclass defaults are the modern preset

PENDULUM = Config(
    preset="pendulum",
    env="Pendulum-v1",
    total_steps=20_000,
    learning_starts=1_000,
    actor_hidden=(128, 128),
    critic_hidden=(128, 128),
    critic_action_layer=0,
    final_init=3e-3,
    actor_lr=1e-3,
    critic_lr=1e-3,
    gamma=0.98,
    tau=0.01,
    batch_size=128,
    buffer_size=200_000,
    update_every=4,
    noise="gaussian",
    noise_sigma=0.1,
    eval_every=2_000,
    eval_episodes=10,
)

PRESETS: dict[str, Config] = {"paper": PAPER, "modern": MODERN, "pendulum": PENDULUM}
PRESET_HELP = {
    "paper": "Lillicrap et al. 2015 supplement, exactly: 400-300, batch norm, OU noise, tau 1e-3, batch 64.",
    "modern": "Fujimoto et al. 2018 'OurDDPG' style: 256-256, no BN, Gaussian 0.1, lr 3e-4, batch 256.",
    "pendulum": "Tuned to solve Pendulum-v1 in the fewest wall-clock seconds on a small CPU.",
}


def default_preset(env_id: str) -> str:
    """The preset ``ddpgx train`` uses when none is given: ``pendulum`` for Pendulum-v1, else ``modern``."""
    return "pendulum" if env_id.split("/")[-1].startswith("Pendulum-") else "modern"


def preset_config(name: str = "", env_id: str | None = None, **overrides: object) -> Config:
    """The preset ``name`` (empty: the default for ``env_id``) for env ``env_id``, with fields overridden."""
    env_id = env_id or Config.env
    name = name or default_preset(env_id)
    if name not in PRESETS:
        raise UserError(f"unknown preset '{name}'; choose one of: {', '.join(PRESETS)} (see `ddpgx presets`)")
    return PRESETS[name].replace(env=env_id, preset=name, **overrides)


def validate(cfg: Config) -> Config:
    """Raise ``UserError`` with a one-line fix for any value that cannot make a sensible run."""

    def need(ok: bool, msg: str) -> None:
        if not ok:
            raise UserError(msg)

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
    need(not (cfg.batch_norm and cfg.layer_norm), "choose one of --batch-norm and --layer-norm, not both")
    need(cfg.noise in ("ou", "gaussian"), f"--noise must be ou or gaussian, got {cfg.noise}")
    return cfg


def _flag(name: str) -> str:
    return name.replace("_", "-")


def field_docs() -> dict[str, str]:
    """Field name -> its docstring (read from this module's source), for `ddpgx presets` and the docs."""
    import ast
    import inspect

    tree = ast.parse(inspect.getsource(Config))
    body = tree.body[0].body  # type: ignore[attr-defined]
    docs: dict[str, str] = {}
    for node, nxt in zip(body, body[1:], strict=False):
        if (
            isinstance(node, ast.AnnAssign)
            and isinstance(nxt, ast.Expr)
            and isinstance(nxt.value, ast.Constant)
        ):
            docs[node.target.id] = str(nxt.value.value)  # type: ignore[union-attr]
    return docs


__all__ = ["Config", "PRESETS", "preset_config", "default_preset", "validate"]
