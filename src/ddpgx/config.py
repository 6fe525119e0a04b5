"""Every hyperparameter of a ddpgx run: the ``Config`` dataclass, one docstring per field.

A ``Config`` is a frozen dataclass: one value fully describes a run. The named presets are plain ``Config``
values (``ddpgx.presets``); the command line starts from a preset and overrides single fields (``--tau 0.01``).
Reading fields from text and checking their types is ``ddpgx.fieldtypes``; checking their values,
``ddpgx.validate``; the memory a run needs, ``ddpgx.memory``.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

NoiseKind = Literal["ou", "gaussian", "param"]
HerStrategy = Literal["future", "final", "episode"]
TargetUpdate = Literal["step", "call"]
VectorKind = Literal["sync", "async"]
GoalStats = Literal["seen", "relabelled"]
CollectKind = Literal["pipelined", "async"]


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
    actors: int = 0
    """Ray actors that collect while the learner learns (0: the envs step in the learner's process). Each steps
    --num-envs envs with a copy of the policy the learner sends every cycle; the learner keeps the replay, the
    observation statistics, the update, the logs, evaluations and checkpoints. Gymnasium envs only."""
    collect: CollectKind = "pipelined"
    """With --actors: pipelined (deterministic: the actors collect cycle k+1 with the policy from the start of
    cycle k while the learner learns on the data up to cycle k; the same bits for any --actors at the same total
    envs, and on resume) or async (Ape-X style: actors never wait for the learner, which keeps the update-to-data
    ratio by updating on whatever has arrived; not bitwise reproducible)."""
    actor_steps: int = 0
    """With --actors: env steps each env takes per cycle (0: --update-every / total envs, at least 500 / total
    envs, rounded up: long enough to pay for Ray's round trip, and whole update units when the envs divide it)."""
    actor_cpus: float = 1.0
    """With --actors: CPUs Ray reserves for each actor (0 places actors without reserving any, for a machine whose
    cores a sweep has already reserved)."""
    actor_address: str = ""
    """With --actors: HOST:PORT of a Ray cluster to run the actors on ('' : the cluster this process is already in,
    else an embedded local Ray that ends with the run)."""
    preset: str = ""
    """Preset the values come from (see `ddpgx presets`: paper, modern, pendulum, td3, td3-paper, crossq, crossq256, her,
    her8); the CLI's default: pendulum for Pendulum-v1, crossq256 for Gymnasium's MuJoCo envs, her for FetchReach,
    her8 for FetchPush, FetchPickAndPlace and FetchSlide, else modern. A label only when a Config is built by hand: start from
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
    the two target critics' values; the actor follows the first critic (see --actor-q)."""
    actor_q: Literal["first", "min"] = "first"
    """Which Q the actor maximizes with twin critics: "first", Q_0 (TD3, Fujimoto et al. 2018, and its reference
    code), or "min", min(Q_0, Q_1) (CrossQ's reference code, adityab/CrossQ and sbx, in its deterministic TD3 mode
    too). Needs --twin-critic for "min"."""
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
    tracker: str = "none"
    """Experiment tracker that mirrors the run directory: none, mlflow, wandb, or mlflow,wandb (both). It gets the
    config as parameters, every train/eval/episode scalar at its env step, and the plot, policy files and
    config.json as artifacts; a resumed run continues its tracker run (id in <run_dir>/tracker.json). Extras:
    pip install 'ddpgx[mlflow]' / 'ddpgx[wandb]'. W&B runs offline (files under <run_dir>/wandb) unless WANDB_MODE
    says otherwise."""
    tracking_uri: str = ""
    """MLflow's tracking URI: a server (http://host:5000) or a database (sqlite:///path/mlflow.db). Empty:
    $MLFLOW_TRACKING_URI if set, else the SQLite file mlflow.db beside the run directory (no server needed)."""
    progress: bool = True
    """Show a progress bar (steps, steps/s, ETA, last returns)."""
    plot: bool = True
    """Write returns.png (episode and eval returns against steps) into the run directory at the end."""

    def replace(self, **changes: object) -> Config:
        return dataclasses.replace(self, **changes)


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


def env_name(env: str) -> str:
    """An env as run directories name it: ``gymnax:Pendulum-v1`` -> ``Pendulum-v1``, ``a/B-v0`` -> ``a-B-v0``."""
    return env.split(":")[-1].replace("/", "-")


def format_env_kwargs(kwargs: Mapping[str, Any]) -> tuple[str, ...]:
    """A dict of env keyword arguments as ``env_kwargs`` holds them, ``key=value`` with JSON values (text as is),
    for config.json and the command line; the inverse of ``envcheck.parse_env_kwargs``."""
    return tuple(f"{k}={v if isinstance(v, str) else json.dumps(v)}" for k, v in kwargs.items())


__all__ = ["Config", "field_docs", "env_name", "format_env_kwargs"]
