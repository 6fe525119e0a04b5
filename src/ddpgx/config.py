"""Every hyperparameter of a ddpgx run, the named presets, and their validation.

A ``Config`` is a frozen dataclass: one value fully describes a run. Presets are plain ``Config`` values;
the command line starts from a preset and overrides single fields (``--tau 0.01``).
"""

from __future__ import annotations

import dataclasses
import math
import time
import types
import typing
from dataclasses import dataclass
from typing import Any, Literal

from ddpgx.errors import UserError

NoiseKind = Literal["ou", "gaussian", "param"]
HerStrategy = Literal["future", "final", "episode"]
TargetUpdate = Literal["step", "call"]
VectorKind = Literal["sync", "async"]
GoalStats = Literal["seen", "relabelled"]
_UNION_TYPE = getattr(types, "UnionType", None)  # ``float | None`` (Python 3.10+), beside typing.Union


@dataclass(frozen=True)
class Config:
    """One DDPG run. Every field is a command-line flag of ``ddpgx train`` (``total_steps`` -> ``--total-steps``)."""

    env: str = "Pendulum-v1"
    """Gymnasium environment: a registered id (Hopper-v5), module:EnvId (import the module, then look the id up) or
    module:EnvClass (a gymnasium.Env subclass). Its action space must be a bounded continuous Box."""
    env_kwargs: tuple[str, ...] = ()
    """Keyword arguments for the env's constructor as key=value (values read as JSON, else text), e.g.
    terminate_when_unhealthy=false max_episode_steps=500."""
    env_module: str = ""
    """A module to import before the env is made, for modules that register envs when imported."""
    num_envs: int = 1
    """Envs collecting for one learner: each loop iteration acts for all of them in one compiled call and steps
    each once, so it is num_envs env steps (every *_steps and *_every field counts env steps)."""
    vector: VectorKind = "sync"
    """How the envs of --num-envs step: sync (one after the other, in this process) or async (one subprocess each,
    in parallel; pays when one env step costs more than the inter-process round trip, about 0.1 ms). With one env,
    async is sync: there is nothing to step in parallel."""
    num_seeds: int = 1
    """JAX-native envs (gymnax:Id): seeds trained at once in one compiled program (jax.vmap), seed, seed + 1, ...;
    each writes its own run directory under --run-dir. `ddpgx train --seeds 0-7` is the same as --seed 0
    --num-seeds 8. Gymnasium envs train one seed per process: use `ddpgx sweep --seeds` for many."""
    chunk_steps: int = 1_000
    """JAX-native envs: env steps per compiled call of the training loop; between calls the host logs, evaluates,
    checkpoints and draws the progress bar (results do not depend on it)."""
    preset: str = ""
    """Preset the values come from (see `ddpgx presets`: paper, modern, pendulum, td3, td3-paper, crossq, her, her8); the CLI's
    default: pendulum for Pendulum-v1, else modern. A label only when a Config is built by hand: start from
    ``preset_config(name, ...)`` instead."""
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
    batch_renorm: bool = False
    """Batch renormalization (Ioffe 2017) placed as CrossQ places it: on the input and after every hidden ReLU of
    both networks, the action joining the state at the critic's input (needs --critic-action-layer 0). Plain batch
    norm for each layer's first --renorm-warmup training passes, then batch statistics corrected towards the
    running ones (r in [1/3, 3], d in [-5, 5]); acting, evaluation and the actor's loss use the running ones."""
    renorm_warmup: int = 100_000
    """Training passes of each batch-renormalization layer that are plain batch norm (CrossQ: 100,000)."""
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
    gradient_steps: int = 0
    """Gradient steps per --update-every env steps (0: as many as env steps). HER's cycles: --update-every 100
    --gradient-steps 40 is baselines' 2 episodes of 50 steps, then 40 batches."""
    policy_delay: int = 1
    """Update the actor and the targets every this many critic steps (1 = DDPG, 2 = CleanRL/TD3 style)."""
    adam_b1: float = 0.9
    """Adam's beta1 (first-moment decay) for both networks (Adam's default 0.9; CrossQ: 0.5)."""
    target_networks: bool = True
    """Slowly-tracking target networks mu' and Q' for the critic's target (DDPG). --no-target-networks: the target
    uses the online actor and critic (CrossQ), and no target update runs."""
    joint_critic_pass: bool = False
    """CrossQ's joint forward pass: (s, a) and (s', mu(s')) go through the critic as one batch of 2 x batch_size,
    so both are normalized with the same batch statistics; Q(s', mu(s')) of that pass, without gradient, makes the
    target. Needs --no-target-networks."""

    # --- remedies for DDPG's instability (all off in `paper` and `modern`; `td3` turns TD3's three on)
    twin_critic: bool = False
    """Clipped double Q (TD3, Fujimoto et al. 2018): two critics trained on one target that takes the smaller of
    the two target critics' values; the actor follows the first critic."""
    target_noise: float = 0.0
    """Target policy smoothing (TD3): Gaussian noise of this std on mu'(s') in the critic's target, clipped to
    +-target_noise_clip, the action then clipped to [-1, 1] (0: off; TD3 uses 0.2)."""
    target_noise_clip: float = 0.5
    """Clip of the target policy smoothing noise, in units of the normalized action range (TD3: 0.5)."""
    policy_avg: float = 0.0
    """Polyak-averaged policy (weight averaging): a copy of the actor that follows it at this rate after every
    actor update, avg <- policy_avg * actor + (1 - policy_avg) * avg, is the policy the run evaluates, keeps as
    best.msgpack and final.msgpack, records and exports; exploration and learning use the actor itself, so training
    is unchanged (0: off; 0.001 averages over ~1000 actor updates)."""
    n_step: int = 1
    """n-step returns: y = r_t + ... + gamma^(n-1) r_(t+n-1) + gamma^n Q'(s_(t+n), mu'(s_(t+n))); a termination
    inside the window ends the sum with no bootstrap, an episode's end by time limit bootstraps from its last
    observation (1: DDPG's one-step target)."""
    obs_norm: bool = False
    """Normalize observations with running mean and variance of all observations seen in training (one set of
    statistics for acting, learning and evaluation, checkpointed and saved with the final parameters)."""
    obs_clip: float = 5.0
    """Clip normalized observations to +-obs_clip (with --obs-norm)."""
    obs_std_floor: float = 0.0
    """Smallest std the normalizer divides by, std = max(sqrt(var + 1e-8), floor) (with --obs-norm; HER's
    norm_eps 0.01). 0: no floor, so an input that hardly varies is divided by ~1e-4."""
    goal_stats: GoalStats = "seen"
    """Statistics of the desired-goal input (--obs-norm with --her): seen fits them to the observations the env
    returned (real goals only); relabelled fits them to the relabelled goals the learner trains on, drawn from each
    new episode as HER's sampling draws them (baselines' HER)."""

    # --- goal-conditioned envs: Hindsight Experience Replay (Andrychowicz et al. 2017)
    her: bool = False
    """Replay whole episodes of a goal env and relabel goals at sample time (needs a Dict observation of
    observation, achieved_goal, desired_goal and the env's compute_reward)."""
    her_k: int = 4
    """Relabelled goals per real one: a fraction 1 - 1/(1 + her_k) of every batch is relabelled (0: none)."""
    her_strategy: HerStrategy = "future"
    """Where relabelled goals come from: an achieved goal of a later step (future), of the episode's last step
    (final), or of any step of the episode (episode)."""
    action_l2: float = 0.0
    """Penalty action_l2 * mean(mu(s)^2) on the actor's tanh output in [-1, 1] (HER's action_l2, 1.0)."""
    target_clip: tuple[float, ...] = ()
    """Clip the critic's target y to [low, high] (HER: -1/(1 - gamma), 0 for rewards in [-1, 0]); empty: off."""
    random_eps: float = 0.0
    """Probability of a uniformly random action instead of the noisy policy's (HER's random_eps, 0.3)."""
    target_update: TargetUpdate = "step"
    """When the targets move by tau: after every gradient step (step; DDPG, SB3), or once per compiled call of
    --gradient-steps steps (call; baselines' HER moves them once per cycle)."""

    # --- exploration
    noise: NoiseKind = "gaussian"
    """Exploration noise: gaussian or Ornstein-Uhlenbeck (ou) added to the actor's action in [-1, 1], or param:
    adaptive parameter-space noise (Plappert et al. 2018), a perturbed copy of the actor acts, resampled every
    episode; the actor gets LayerNorm, as that paper recommends."""
    param_noise_delta: float = 0.2
    """Parameter noise's target distance between the perturbed and the plain actor's actions (OpenAI baselines'
    adaptive-param_0.2); its scale grows by 1.01 while the distance is below, shrinks by 1.01 above."""
    param_noise_interval: int = 50
    """Adapt the parameter noise's scale every this many env steps, on a batch of replay observations."""
    param_noise_sigma: float = 0.1
    """Initial std of the parameter noise on the actor's weights (baselines' initial_stddev)."""
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
    target_success: float | None = None
    """Goal envs: stop early once a noise-free evaluation's success rate reaches this value, e.g. 0.9 (None: run
    all steps)."""
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
}


def default_preset(env_id: str) -> str:
    """The preset ``ddpgx train`` uses when none is given: ``pendulum`` for Pendulum-v1, else ``modern``."""
    return "pendulum" if env_id.split("/")[-1].split(":")[-1].startswith("Pendulum-") else "modern"


def preset_config(name: str = "", env_id: str | None = None, **overrides: object) -> Config:
    """The preset ``name`` (empty: the default for ``env_id``) for env ``env_id``, with fields overridden."""
    env_id = env_id or Config.env
    name = name or default_preset(env_id)
    if name not in PRESETS:
        raise UserError(f"unknown preset '{name}'; choose one of: {', '.join(PRESETS)} (see `ddpgx presets`)")
    base = PRESETS[name]
    if name == "td3-paper" and env_id.split(":")[-1].startswith(TD3_PAPER_LONG_START):
        base = base.replace(learning_starts=10_000)
    return base.replace(env=env_id, preset=name, **overrides)


def validate(cfg: Config) -> Config:
    """Raise ``UserError`` with a one-line fix for any value that cannot make a sensible run."""

    def need(ok: bool, msg: str) -> None:
        if not ok:
            raise UserError(msg)

    check_types(cfg)
    need(cfg.seed >= 0, f"--seed must be >= 0, got {cfg.seed}")
    need(cfg.num_envs >= 1, f"--num-envs must be a positive integer, got {cfg.num_envs}")
    need(cfg.vector in ("sync", "async"), f"--vector must be sync or async, got {cfg.vector}")
    need(cfg.num_seeds >= 1, f"--num-seeds must be a positive integer, got {cfg.num_seeds}")
    need(cfg.chunk_steps >= 1, f"--chunk-steps must be a positive integer, got {cfg.chunk_steps}")
    from ddpgx.jaxenvs import suite_of  # a suite that cannot run here says why, in one line

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
    need(cfg.noise in ("ou", "gaussian", "param"), f"--noise must be ou, gaussian or param, got {cfg.noise}")
    need(cfg.gradient_steps >= 0, f"--gradient-steps must be >= 0, got {cfg.gradient_steps}")
    need(cfg.her_k >= 0, f"--her-k must be >= 0, got {cfg.her_k}")
    need(cfg.action_l2 >= 0, f"--action-l2 must be >= 0, got {cfg.action_l2}")
    need(0 <= cfg.random_eps <= 1, f"--random-eps must be in [0, 1], got {cfg.random_eps}")
    need(
        len(cfg.target_clip) in (0, 2) and (not cfg.target_clip or cfg.target_clip[0] < cfg.target_clip[1]),
        f"--target-clip takes LOW HIGH with LOW < HIGH (or nothing), got {' '.join(map(str, cfg.target_clip))}",
    )
    need(
        cfg.target_update in ("step", "call"),
        f"--target-update must be step or call, got {cfg.target_update}",
    )
    need(not (cfg.her and cfg.n_step > 1), "--her replays one-step transitions; use --n-step 1 with it")
    need(
        cfg.her_strategy in ("future", "final", "episode"), "--her-strategy must be future, final or episode"
    )
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
        cfg.goal_stats in ("seen", "relabelled"),
        f"--goal-stats must be seen or relabelled, got {cfg.goal_stats}",
    )
    need(
        cfg.goal_stats == "seen" or (cfg.her and cfg.obs_norm),
        "--goal-stats relabelled fits the normalizer to HER's relabelled goals; it needs --her and --obs-norm",
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
    return cfg


def _type_ok(value: Any, hint: Any) -> bool:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is str:
        return isinstance(value, str)
    if origin is Literal:
        return value in args
    if origin is tuple:
        return isinstance(value, tuple) and all(_type_ok(v, args[0]) for v in value)
    if origin in (typing.Union, _UNION_TYPE):
        return any(_type_ok(value, a) for a in args)
    if hint is type(None):
        return value is None
    return True


def _type_name(hint: Any) -> str:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    names = {bool: "a bool (True or False)", int: "an int", float: "a number", str: "a string"}
    if hint in names:
        return names[hint]
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in args)
    if origin is tuple:
        return f"a tuple of {_type_name(args[0]).split(' ', 1)[1]}s"
    if hint is type(None):
        return "None"
    return " or ".join(_type_name(a) for a in args)


def check_types(cfg: Config) -> None:
    """Each field holds a value of its declared type: ``total_steps must be an int, got 300.0``."""
    hints = typing.get_type_hints(Config)
    for f in dataclasses.fields(Config):
        value = getattr(cfg, f.name)
        if not _type_ok(value, hints[f.name]):
            raise UserError(f"{f.name} must be {_type_name(hints[f.name])}, got {value!r}")


def parse_field(name: str, raw: Any) -> Any:
    """A field's value from text as ``ddpgx train`` reads it (``0.01``, ``true``, ``400 300``, ``None``); values that
    are not text (from a TOML file) pass through, lists as tuples. Unknown fields and bad values: UserError."""
    import difflib

    hints = typing.get_type_hints(Config)
    name = name.strip().replace("-", "_")
    if name not in hints:
        close = difflib.get_close_matches(name, list(hints), n=1, cutoff=0.6)
        hint = f"; did you mean {close[0]}?" if close else "; see `ddpgx presets` for the fields"
        raise UserError(f"unknown config field '{name}'{hint}")
    hint = hints[name]
    if not isinstance(raw, str):
        value = tuple(raw) if isinstance(raw, list) else raw
    else:
        value = _from_text(raw.strip(), hint)
    if not _type_ok(value, hint):
        raise UserError(f"{name}={raw} is not valid: {name} must be {_type_name(hint)}")
    return value


def _from_text(raw: str, hint: Any) -> Any:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    try:
        if hint is bool:
            words = {"true": True, "false": False, "1": True, "0": False, "yes": True, "no": False}
            return words.get(raw.lower(), raw)
        if hint is int:
            if raw.replace("_", "").lstrip("-").isdigit():
                return int(raw.replace("_", ""))
            f = float(raw)  # 1e6 is an int; 2.5 is not, and is left for the type check to refuse
            return int(f) if f.is_integer() else raw
        if hint is float:
            return float(raw)
        if origin is tuple:
            return tuple(_from_text(part, args[0]) for part in raw.replace(",", " ").split())
        if origin in (typing.Union, _UNION_TYPE):
            if raw.lower() == "none":
                return None
            return _from_text(raw, next(a for a in args if a is not type(None)))
    except (ValueError, OverflowError):
        return raw  # left for the type check to refuse
    return raw


def coerce(cfg: Config) -> Config:
    """Friendly forms from Python callers made exact: lists as tuples, numpy scalars as Python numbers, a dict of
    env_kwargs as key=value strings. Anything else is left for ``check_types`` to judge."""
    changes: dict[str, Any] = {}
    for f in dataclasses.fields(Config):
        v = getattr(cfg, f.name)
        if isinstance(v, list):
            changes[f.name] = tuple(v)
        elif hasattr(v, "item") and hasattr(v, "dtype") and getattr(v, "ndim", 1) == 0:
            changes[f.name] = v.item()
    kw = changes.get("env_kwargs", cfg.env_kwargs)
    if isinstance(kw, dict):
        from ddpgx.envs import format_env_kwargs

        changes["env_kwargs"] = format_env_kwargs(kw)
    return cfg.replace(**changes) if changes else cfg


def _mlp_params(sizes: list[int], extra_in: dict[int, int], norm: bool) -> int:
    """Weights and biases of a dense chain ``sizes[0] -> ... -> sizes[-1]`` (``extra_in[i]``: inputs joining
    layer i), plus 4 per hidden unit for a normalization layer's scale, bias and statistics."""
    n = 0
    for i, (a, b) in enumerate(zip(sizes, sizes[1:], strict=False)):
        n += (a + extra_in.get(i, 0)) * b + b
        if norm and i < len(sizes) - 2:
            n += 4 * b
    return n


def memory_estimate(cfg: Config, obs_dim: int, action_dim: int) -> int:
    """Bytes a run needs at most: actor and critic with their targets, Adam's two moments and a gradient
    (5 copies of float32 parameters), and the replay rows the run can fill (its ring, or fewer in a short run)."""
    norm = cfg.batch_norm or cfg.layer_norm or cfg.batch_renorm
    actor = _mlp_params([obs_dim, *cfg.actor_hidden, action_dim], {}, norm)
    layer = cfg.critic_action_layer
    critic = _mlp_params([obs_dim, *cfg.critic_hidden, 1], {layer: action_dim}, norm) * (
        2 if cfg.twin_critic else 1
    )
    if cfg.noise == "param":  # the perturbed actor and its twin used to adapt the scale
        actor = actor * 7 // 5
    rows = min(cfg.buffer_size + 1, 2 * cfg.total_steps + 1)  # a row per step, plus one per episode end
    replay = (rows + cfg.num_envs) * ((obs_dim + action_dim + 2) * 4 + 1)
    from ddpgx.collect import env_memory

    return 5 * 4 * (actor + critic) + replay + env_memory(cfg.num_envs, cfg.vector)


def available_memory() -> int | None:
    """Bytes of memory available to a new allocation (Linux MemAvailable; else physical memory; None if unknown)."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        import os

        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def check_memory(cfg: Config, obs_dim: int, action_dim: int) -> None:
    need_b, have_b = memory_estimate(cfg, obs_dim, action_dim), available_memory()
    if have_b is not None and need_b > have_b:
        gib = 2**30
        raise UserError(
            f"this run needs about {need_b / gib:.1f} GiB (networks --actor-hidden "
            f"{' '.join(map(str, cfg.actor_hidden))} / --critic-hidden {' '.join(map(str, cfg.critic_hidden))} "
            f"and a replay of {min(cfg.buffer_size, cfg.total_steps)} rows"
            + (f", {cfg.num_envs} {cfg.vector} envs" if cfg.num_envs > 1 else "")
            + f") but {have_b / gib:.1f} GiB of memory is available; use smaller networks, a smaller --buffer-size"
            + (" or fewer --num-envs" if cfg.num_envs > 1 else "")
        )


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


__all__ = ["Config", "PRESETS", "preset_config", "default_preset", "validate", "check_memory"]


def resolve(cfg: Config) -> Config:
    """Fill in what a Config leaves open: the preset label and the run directory."""
    cfg = coerce(cfg)
    if not cfg.preset:
        cfg = cfg.replace(preset="custom")
    if not cfg.run_dir and isinstance(cfg.env, str):
        stamp = time.strftime("%Y%m%d-%H%M%S")
        name = env_name(cfg.env)
        seeds = f"{cfg.seed}" if cfg.num_seeds == 1 else f"{cfg.seed}-{cfg.seed + cfg.num_seeds - 1}"
        cfg = cfg.replace(run_dir=f"runs/{name}__{cfg.preset}__s{seeds}__{stamp}")
    return cfg


def env_name(env: str) -> str:
    """An env as run directories name it: ``gymnax:Pendulum-v1`` -> ``Pendulum-v1``, ``a/B-v0`` -> ``a-B-v0``."""
    return env.split(":")[-1].replace("/", "-")
