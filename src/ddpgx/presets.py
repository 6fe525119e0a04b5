"""The named presets: plain ``Config`` values, each with the sources of its values, and how a run starts
from one (``preset_config``) and has what it leaves open filled in (``resolve``)."""

from __future__ import annotations

import dataclasses
import difflib
import re
import time
from pathlib import Path
from typing import Any

import gymnasium as gym

from ddpgx.config import Config, env_name, format_env_kwargs
from ddpgx.errors import UserError
from ddpgx.fieldtypes import check_types

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

TD3 = Config(  # Fujimoto et al. 2018, Table 3 (with the 256-256 networks of its authors' later code and CleanRL)
    preset="td3",
    twin_critic=True,
    target_noise=0.2,
    target_noise_clip=0.5,
    policy_delay=2,
)

TD3_PAPER = Config(  # Fujimoto et al. 2018, section 6.1 and Table 3: the paper's own settings
    preset="td3-paper",
    actor_hidden=(400, 300),
    critic_hidden=(400, 300),
    critic_action_layer=0,  # state and action into the critic's first layer
    actor_lr=1e-3,
    critic_lr=1e-3,
    batch_size=100,
    tau=0.005,
    noise="gaussian",
    noise_sigma=0.1,
    twin_critic=True,
    target_noise=0.2,
    target_noise_clip=0.5,
    policy_delay=2,
    learning_starts=1_000,  # 10k for HalfCheetah and Ant: see preset_config
)
TD3_PAPER_LONG_START = ("HalfCheetah", "Ant")  # the envs the paper started with 10k uniform random steps

CROSSQ = (
    Config(  # Bhatt et al. 2024 (ICLR), its code's `-algo crossq` settings, on DDPG's deterministic actor
        preset="crossq",
        batch_renorm=True,
        bn_momentum=0.99,
        renorm_warmup=100_000,
        joint_critic_pass=True,
        target_networks=False,
        twin_critic=True,
        critic_hidden=(2048, 2048),
        actor_hidden=(256, 256),
        actor_lr=1e-3,
        critic_lr=1e-3,
        adam_b1=0.5,
        policy_delay=3,
        learning_starts=5_000,
    )
)

CROSSQ256 = (
    CROSSQ.replace(  # the crossq preset with 256-wide critics: ddpgx's best measured DDPG recipe on MuJoCo
        preset="crossq256",
        critic_hidden=(256, 256),
    )
)

HER = Config(  # Andrychowicz et al. 2017 appendix and OpenAI baselines' her/experiment/config.py DEFAULT_PARAMS
    preset="her",
    her=True,
    her_k=4,  # replay_k
    her_strategy="future",  # replay_strategy
    actor_hidden=(256, 256, 256),  # layers 3, hidden 256
    critic_hidden=(256, 256, 256),
    actor_lr=1e-3,  # pi_lr
    critic_lr=1e-3,  # Q_lr
    gamma=0.98,  # 1 - 1/T with T = 50
    tau=0.05,  # polyak 0.95
    batch_size=256,
    buffer_size=1_000_000,
    action_l2=1.0,
    target_clip=(-50.0, 0.0),  # clip_return: -1/(1 - gamma), 0
    random_eps=0.3,
    noise="gaussian",
    noise_sigma=0.2,  # noise_eps
    obs_norm=True,  # o and g normalized with running statistics, clip_obs 200 before, clip 5 after (norm_clip)
    obs_clip=5.0,
    obs_std_floor=0.01,  # norm_eps
    goal_stats="relabelled",  # g statistics from HER-relabelled transitions of each new episode (store_episode)
    learning_starts=100,  # baselines trains after the first cycle; here after two episodes of 50 steps
    update_every=100,  # a cycle: 2 episodes of 50 steps (rollout_batch_size 2) ...
    gradient_steps=40,  # ... then n_batches 40
    total_steps=100_000,
    eval_every=1_000,
    eval_episodes=20,
)

HER_WORKERS = (
    8  # the her8 preset's worker count (TianhongDai/hindsight-experience-replay's; baselines used 19)
)
HER8 = HER.replace(  # baselines' HER cycle of W = 8 MPI workers, run by one learner
    preset="her8",
    learning_starts=100 * HER_WORKERS,  # the first cycle's episodes
    update_every=100 * HER_WORKERS,  # a cycle: 2 episodes of 50 steps per worker ...
    gradient_steps=40,  # ... then n_batches 40, each on the W workers' 256 samples (Adam on their mean)
    batch_size=256 * HER_WORKERS,
    target_update="call",  # polyak 0.95 once per cycle, after its 40 batches
    total_steps=2_000_000,
    eval_every=20_000,
    eval_episodes=50,
)

PRESETS: dict[str, Config] = {
    "paper": PAPER,
    "modern": MODERN,
    "pendulum": PENDULUM,
    "td3": TD3,
    "td3-paper": TD3_PAPER,
    "her": HER,
    "her8": HER8,
    "crossq": CROSSQ,
    "crossq256": CROSSQ256,
}
PRESET_HELP = {
    "paper": "Lillicrap et al. 2015 supplement, exactly: 400-300, batch norm, OU noise, tau 1e-3, batch 64.",
    "modern": "Fujimoto et al. 2018 'OurDDPG' style: 256-256, no BN, Gaussian 0.1, lr 3e-4, batch 256.",
    "pendulum": "Tuned to solve Pendulum-v1 in the fewest wall-clock seconds on a small CPU.",
    "her": "DDPG + HER for goal envs (Fetch): baselines' defaults, 3x256, lr 1e-3, tau 0.05, k 4, random 30%.",
    "td3-paper": "TD3 exactly as its paper ran it: 400-300, lr 1e-3, batch 100, tau 0.005, Gaussian 0.1, "
    "smoothing 0.2/0.5, delay 2, 1k random steps (10k on HalfCheetah and Ant).",
    "her8": "DDPG + HER for the hard Fetch tasks (Push, PickAndPlace, Slide): baselines' cycle of 8 workers in "
    "one learner: 16 episodes, then 40 batches of 2048, targets once per cycle.",
    "td3": "TD3, not DDPG (Fujimoto et al. 2018): `modern` + twin critics, target smoothing 0.2/0.5, policy delay 2.",
    "crossq": "CrossQ's critic on DDPG (Bhatt et al. 2024): batch renormalization, joint (s,a)/(s',a') pass, no "
    "target networks, 2048-wide twin critics, Adam beta1 0.5, policy delay 3.",
    "crossq256": "`crossq` with 256-256 critics, the default for MuJoCo envs: ddpgx's best recipe on Hopper (5 seeds) "
    "and HalfCheetah (2), ahead of published TD3 and DDPG on Walker2d and Ant (3 seeds each); on "
    "InvertedDoublePendulum it falls once batch renormalization switches on (add --renorm-warmup 1000000); "
    "docs/RESULTS.md.",
}


PRESET_SOURCES: dict[str, dict[str, str]] = {  # where each non-default value of a preset comes from
    "her": {
        "her_k 4, her_strategy future": "HER paper (Andrychowicz et al. 2017) appendix; baselines replay_k, "
        "replay_strategy",
        "actor/critic 256-256-256": "baselines her DEFAULT_PARAMS layers 3, hidden 256",
        "actor_lr = critic_lr 1e-3": "baselines pi_lr, Q_lr",
        "gamma 0.98": "baselines: 1 - 1/T with T = 50 steps",
        "tau 0.05": "baselines polyak 0.95 (applied here after every gradient step, as SB3 does; baselines "
        "applies it once per cycle)",
        "batch 256, buffer 1e6": "baselines batch_size, buffer_size",
        "action_l2 1.0": "baselines action_l2, on the actor's tanh output in [-1, 1] (pi / max_u)",
        "random_eps 0.3, noise gaussian 0.2": "baselines random_eps, noise_eps",
        "target_clip -50 0": "baselines clip_return: -1/(1 - gamma), 0",
        "obs_norm, obs_clip 5": "baselines norm_clip 5 (and clip_obs 200 before normalizing, applied to goal "
        "envs' observations)",
        "obs_std_floor 0.01": "baselines norm_eps 0.01 (normalizer.py: std = max(eps, sqrt(var)))",
        "goal_stats relabelled": "baselines ddpg.py store_episode: o and g statistics updated from HER-relabelled "
        "transitions of each new episode batch (as many as the batch has steps)",
        "update_every 100, gradient_steps 40": "baselines n_cycles: 2 episodes (rollout_batch_size 2) of 50 "
        "steps, then n_batches 40",
        "learning_starts 100": "the first cycle's episodes",
    },
    "her8": {
        "everything of her": "as the her preset",
        "update_every 800, learning_starts 800": "baselines' cycle with 8 MPI workers (mpirun -np 8): 2 episodes "
        "of 50 steps each (rollout_batch_size 2); TianhongDai/hindsight-experience-replay's 8 workers",
        "gradient_steps 40, batch_size 2048": "baselines n_batches 40; each step averages the gradients of 8 "
        "workers' 256 samples (mpi_moments), which is Adam on the mean of 2048 samples (equal but for Adam's eps)",
        "target_update call": "baselines her.py train(): update_target_net() once per cycle, after the batches",
        "total_steps 2e6": "FetchPush is solved in about 2M env steps with 8 (TianhongDai) or 19 (baselines "
        "issue #591) workers",
        "eval_every 20000, eval_episodes 50": "at least 50 noise-free test episodes per evaluation (baselines: "
        "10 per worker, so 80 with 8)",
    },
    "td3-paper": {
        "actor/critic 400-300, action at the critic's input": "Fujimoto et al. 2018, section 6.1 (network "
        "architecture) and Table 3",
        "actor_lr = critic_lr 1e-3, batch_size 100, tau 0.005": "Table 3",
        "noise gaussian 0.1": "Table 3 (exploration policy N(0, 0.1))",
        "twin_critic, target_noise 0.2, target_noise_clip 0.5, policy_delay 2": "Table 3",
        "learning_starts 1000 (10000 on HalfCheetah and Ant)": "section 6.1: 10,000 pure exploration steps for "
        "HalfCheetah-v1 and Ant-v1, 1,000 for the others",
    },
    "td3": {
        "twin_critic, target_noise 0.2, target_noise_clip 0.5, policy_delay 2": "Fujimoto et al. 2018, Table 3",
    },
    "crossq": {
        "batch_renorm, bn_momentum 0.99": "Bhatt et al. 2024, section 4 and its code (train.py -algo crossq: bn "
        "True, bn_momentum 0.99, bn_mode brn_actor: batch renormalization in the actor and the critic)",
        "renorm_warmup 100000": "its code (BatchRenorm: plain batch norm for the first 100,000 steps)",
        "joint_critic_pass, no target networks": "section 3: (s, a) and (s', a') concatenated in one forward pass; "
        "target networks removed (its code: crossq_style, tau 1.0)",
        "twin_critic": "its code: n_critics 2, target min over both (from SAC)",
        "critic 2048-2048, actor 256-256": "section 4 (wider critic); its code: net_arch qf [2048, 2048], pi [256, 256]",
        "actor_lr = critic_lr 1e-3": "its code: lr 1e-3 for both",
        "adam_b1 0.5": "its code: adam_b1 0.5",
        "policy_delay 3": "its code: policy_delay 3",
        "learning_starts 5000": "its code: learning_starts 5000",
        "exploration gaussian 0.1 (modern)": "not CrossQ's: CrossQ is built on SAC's stochastic actor; ddpgx keeps "
        "DDPG's deterministic actor and its Gaussian exploration",
    },
    "crossq256": {
        "everything of crossq": "as the crossq preset (Bhatt et al. 2024 and its code)",
        "critic 256-256": "ddpgx's measurements, not CrossQ's: on Hopper-v5 at 300k (5 seeds) the highest level "
        "of every recipe measured, last-5 mean 3050 (docs/STABILITY.md); HalfCheetah-v5 10281 and 10083 at 300k; "
        "Walker2d-v5 4815 and Ant-v5 4913 at 300k, one seed each (docs/RESULTS.md); 2048-wide critics cost about "
        "40x its gradient step on a CPU, 216x modern's (benchmarks/crossq_cost.py)",
        "the default for MuJoCo envs": "ddpgx's best recipe on Hopper-v5 and HalfCheetah-v5 (against td3-paper "
        "--obs-norm and modern), and above published TD3 and DDPG at 300k on Walker2d-v5 and Ant-v5; Swimmer, "
        "InvertedDoublePendulum and Humanoid are being measured (docs/RESULTS.md, the MuJoCo suite); `--preset "
        "modern` is plain DDPG, `--preset paper` the paper's",
    },
}


def is_mujoco(env_id: str) -> bool:
    """Whether ``env_id`` is one of Gymnasium's MuJoCo envs (Hopper-v5, Ant-v5, ...), judged from its registered
    entry point without importing anything; ``module:Id`` ids and unregistered ids are not."""
    spec = gym.envs.registry.get(env_id) if ":" not in env_id else None
    ep = getattr(spec, "entry_point", None)
    return isinstance(ep, str) and ep.startswith("gymnasium.envs.mujoco.")


FETCH_SPARSE = re.compile(r"Fetch(Reach|Push|Slide|PickAndPlace)-v\d+")
"""gymnasium-robotics' Fetch tasks with their sparse reward (the Dense variants are not HER's)."""


def default_preset(env_id: str) -> str:
    """The preset ``ddpgx train`` uses when none is given: ``pendulum`` for Pendulum-v1, ``crossq256`` for
    Gymnasium's MuJoCo envs (the best recipe measured there so far, docs/RESULTS.md), ``her`` for FetchReach and ``her8``
    for FetchPush, FetchPickAndPlace and FetchSlide (sparse goals: DDPG needs HER there; the presets measured on
    them, docs/RESULTS.md), else ``modern``."""
    bare = env_id.split("/")[-1].split(":")[-1]
    if bare.startswith("Pendulum-"):
        return "pendulum"
    if is_fetch_sparse(env_id):
        return "her" if bare.startswith("FetchReach") else "her8"
    return "crossq256" if is_mujoco(env_id) else "modern"


def is_fetch_sparse(env_id: str) -> bool:
    """Whether ``env_id`` is one of gymnasium-robotics' sparse Fetch tasks (``FetchPush-v4``, or
    ``gymnasium_robotics:FetchPush-v4``), judged from the name without importing anything, and only where
    gymnasium-robotics is installed (else the env's own error is the one line a user sees)."""
    import importlib.util

    module, _, bare = env_id.rpartition(":")
    return (
        module in ("", "gymnasium_robotics")
        and FETCH_SPARSE.fullmatch(bare) is not None
        and importlib.util.find_spec("gymnasium_robotics") is not None
    )


def default_preset_line(env_id: str) -> str | None:
    """The one line ``ddpgx train`` prints when it picks a preset the user may not expect, else None."""
    name = default_preset(env_id)
    if name in ("her", "her8"):
        return (
            f"ddpgx: no --preset given: {env_id} trains with `{name}` (DDPG + HER: its goals are sparse, and plain "
            f"DDPG does not learn them; docs/RESULTS.md); the other HER preset: --preset "
            f"{'her8' if name == 'her' else 'her'}; plain DDPG: --preset modern"
        )
    if name != "crossq256":
        return None
    line = (
        f"ddpgx: no --preset given: {env_id} trains with `crossq256` (DDPG with CrossQ's critic, ddpgx's best recipe "
        "on the MuJoCo envs measured so far: docs/RESULTS.md); plain DDPG: --preset modern; the paper's: --preset paper"
    )
    if env_id.startswith("InvertedDoublePendulum-"):  # docs/guides/presets.md, the suite's IDP runs
        line += (
            "; on this env it held the maximum until batch renormalization switched on at about 110k env steps and "
            "then fell (3 of 3 seeds): add --renorm-warmup 1000000 (docs/guides/presets.md)"
        )
    return line


def preset_config(name: str = "", env_id: str | None = None, **overrides: object) -> Config:
    """The preset ``name`` (empty: the default for ``env_id``) for env ``env_id``, with fields overridden."""
    if not isinstance(name, str) or not (env_id is None or isinstance(env_id, str)):
        raise UserError(
            f"preset_config(name, env_id) takes two strings, e.g. preset_config('modern', 'Hopper-v5'); got "
            f"{name!r}, {env_id!r}"
        )
    env_id = env_id or Config.env
    name = name or default_preset(env_id)
    if name not in PRESETS:
        close = difflib.get_close_matches(name, list(PRESETS), n=1)
        hint = f"did you mean {close[0]}? " if close else ""
        raise UserError(
            f"unknown preset '{name}'; {hint}choose one of: {', '.join(PRESETS)} (see `ddpgx presets`)"
        )
    base = PRESETS[name]
    if name == "td3-paper" and env_id.split(":")[-1].startswith(TD3_PAPER_LONG_START):
        base = base.replace(learning_starts=10_000)
    unknown = sorted(set(overrides) - {f.name for f in dataclasses.fields(Config)})
    if unknown:
        raise UserError(
            f"preset_config got unknown fields {', '.join(unknown)}; `ddpgx presets` lists the fields"
        )
    cfg = coerce(base.replace(env=env_id, preset=name, **overrides))
    check_types(cfg)  # where the Config is made: total_steps=300.0 is refused here, not at train()
    return cfg


def coerce(cfg: Config) -> Config:
    """Friendly forms from Python callers made exact: lists as tuples, numpy scalars as Python numbers, a dict of
    env_kwargs as key=value strings. Anything else is left for ``fieldtypes.check_types`` to judge."""
    changes: dict[str, Any] = {}
    for f in dataclasses.fields(Config):
        v = getattr(cfg, f.name)
        if isinstance(v, list):
            changes[f.name] = tuple(v)
        elif hasattr(v, "item") and hasattr(v, "dtype") and getattr(v, "ndim", 1) == 0:
            changes[f.name] = v.item()
    kw = changes.get("env_kwargs", cfg.env_kwargs)
    if isinstance(kw, dict):
        changes["env_kwargs"] = format_env_kwargs(kw)
    return cfg.replace(**changes) if changes else cfg


def resolve(cfg: Config) -> Config:
    """Fill in what a Config leaves open: the preset label and the run directory."""
    cfg = coerce(cfg)
    if not cfg.preset:
        cfg = cfg.replace(preset="custom")
    if not cfg.run_dir and isinstance(cfg.env, str):
        stamp = time.strftime("%Y%m%d-%H%M%S")
        name = env_name(cfg.env)
        seeds = f"{cfg.seed}" if cfg.num_seeds == 1 else f"{cfg.seed}-{cfg.seed + cfg.num_seeds - 1}"
        cfg = cfg.replace(run_dir=unique_run_dir(f"runs/{name}__{cfg.preset}__s{seeds}__{stamp}"))
    return cfg


_handed_out: set[str] = (
    set()
)  # the default run directories this process named (its models may not have run yet)


def unique_run_dir(base: str) -> str:
    """``base``, or ``base-2``, ``base-3``, ... where it exists or this process already named it: two models made
    in the same second (a loop of DDPG(...) objects, two runs started together) never share a directory."""
    path, k = base, 1
    while path in _handed_out or Path(path).exists():
        k += 1
        path = f"{base}-{k}"
    _handed_out.add(path)
    return path


__all__ = [
    "PRESETS",
    "PRESET_HELP",
    "PRESET_SOURCES",
    "default_preset",
    "default_preset_line",
    "is_mujoco",
    "preset_config",
    "coerce",
    "resolve",
]
