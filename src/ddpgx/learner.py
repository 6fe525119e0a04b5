"""DDPG's maths: one TrainState pytree and a pure, jitted update that fuses K gradient steps.

    y       = r + gamma * (1 - terminated) * Q'(s', mu'(s'))        targets, no gradient
    critic <- Adam step on mean((Q(s, a) - y)^2)   (+ coupled L2 on the critic's weights if asked)
    actor  <- Adam step on -mean(Q(s, mu(s)))       (every ``policy_delay`` critic steps)
    targets <- tau * online + (1 - tau) * target  (with the actor step)

Switches of the same update (all off in DDPG's presets): twin critics, whose target takes min(Q'_0, Q'_1) and whose
losses add up, the actor following Q_0 (TD3's clipped double Q); clipped Gaussian noise on mu'(s') in the target
(TD3's target policy smoothing); n-step returns, where the batch carries its own discount gamma^m and the sum of
m rewards (replay.py builds them); and observation statistics, a variable collection of both networks that the
loop writes (obsnorm.py). Adaptive parameter-space noise keeps its perturbed actor and scale in ``explore``.
CrossQ's switches (Bhatt et al. 2024): batch renormalization in both networks (networks.py), no target networks
(the online actor and critic make the target, and no target update runs), and the joint pass, where (s, a) and
(s', mu(s')) go through the critic as one batch; Adam's beta1 is a field too.

Everything that changes while learning lives in ``TrainState``; hyperparameters are bound once, statically, when a
``Learner`` is built. ``Learner.update`` takes K pre-sampled batches stacked on a leading axis and runs
``jax.lax.scan`` over them, so Python dispatch is paid once per K steps.
"""

from __future__ import annotations

import dataclasses
import os
import threading
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import struct

from ddpgx import noise as noise_lib
from ddpgx.config import Config
from ddpgx.memory import Need, jax_device, mlp_params
from ddpgx.networks import Actor, Critic, TwinCritic, init_variables
from ddpgx.replay import Batch  # the one batch type: what the buffers sample is what the update takes

Variables = dict[str, Any]


class TrainState(struct.PyTreeNode):
    actor: Variables  # {"params": ..., ["batch_stats": ...]}
    critic: Variables
    actor_target: Variables
    critic_target: Variables
    actor_opt: optax.OptState
    critic_opt: optax.OptState
    noise: jax.Array  # OU state (zeros and unused for gaussian noise)
    key: jax.Array  # PRNG key for exploration noise
    step: jax.Array  # gradient steps taken (int32)
    explore: (
        Variables  # parameter noise: {"params": the perturbed actor's params, "sigma": its scale}; else {}
    )
    actor_avg: Variables = struct.field(default_factory=dict)  # --policy-avg: the averaged actor; else {}


# TrainState fields a checkpoint written before they existed lacks; empty (their switch off) is what they were
NEWER_FIELDS: dict[str, Any] = {"explore": {}, "actor_avg": {}}


def policy_vars(state: TrainState) -> Variables:
    """The actor a run evaluates and keeps (best, final, export): the averaged one with --policy-avg, else the
    actor itself."""
    return state.actor_avg or state.actor


class Metrics(NamedTuple):
    critic_loss: jax.Array
    actor_loss: jax.Array
    mean_q: jax.Array


@dataclass(frozen=True)
class Hyper:
    """The static hyperparameters the update needs (hashable, so jit treats them as constants)."""

    gamma: float
    tau: float
    policy_delay: int
    noise: str
    noise_sigma: float
    noise_theta: float
    target_noise: float = 0.0
    target_noise_clip: float = 0.5
    param_noise_delta: float = 0.2
    action_l2: float = 0.0
    target_clip: tuple[float, ...] = ()
    random_eps: float = 0.0
    target_update: str = "step"
    target_networks: bool = True
    joint_critic_pass: bool = False
    batch_renorm: bool = False
    policy_avg: float = 0.0
    actor_q: str = "first"
    # an update unit's size (gradient_steps, else update_every): --target-update call moves the targets once per unit
    update_every: int = 1
    gradient_steps: int = 0

    @classmethod
    def of(cls, cfg: Config) -> Hyper:
        """Every field from the Config field of the same name, by name (a field added out of order cannot swap
        two values)."""
        names = [f.name for f in dataclasses.fields(cls)]
        return cls(**{n: tuple(getattr(cfg, n)) if n == "target_clip" else getattr(cfg, n) for n in names})


PARAM_NOISE_ALPHA = 1.01  # baselines' adoption_coefficient: the factor the parameter noise's scale moves by


def build_networks(cfg: Config, action_dim: int) -> tuple[Actor, Critic | TwinCritic]:
    norm = "renorm" if cfg.batch_renorm else "batch" if cfg.batch_norm else "layer" if cfg.layer_norm else ""
    actor_norm = "layer" if cfg.noise == "param" and not norm else norm  # parameter noise wants LayerNorm
    on = dict(obs_norm=cfg.obs_norm, obs_clip=cfg.obs_clip, renorm_warmup=cfg.renorm_warmup)
    actor = Actor(action_dim, tuple(cfg.actor_hidden), actor_norm, cfg.bn_momentum, cfg.final_init, **on)
    kind = TwinCritic if cfg.twin_critic else Critic
    critic = kind(
        tuple(cfg.critic_hidden), cfg.critic_action_layer, norm, cfg.bn_momentum, cfg.final_init, **on
    )
    return actor, critic


def memory_need(cfg: Config, obs_dim: int, action_dim: int) -> Need:
    """Actor and critic with their targets, Adam's two moments and a gradient (5 copies of float32 parameters),
    on jax's device."""
    norm = cfg.batch_norm or cfg.layer_norm or cfg.batch_renorm
    actor = mlp_params([obs_dim, *cfg.actor_hidden, action_dim], {}, norm)
    critic = mlp_params([obs_dim, *cfg.critic_hidden, 1], {cfg.critic_action_layer: action_dim}, norm)
    critic *= 2 if cfg.twin_critic else 1
    if cfg.noise == "param":  # the perturbed actor and its twin used to adapt the scale
        actor = actor * 7 // 5
    sizes = f"--actor-hidden {' '.join(map(str, cfg.actor_hidden))} / --critic-hidden {' '.join(map(str, cfg.critic_hidden))}"
    return Need(f"networks {sizes}", 5 * 4 * (actor + critic), jax_device(), "smaller networks")


def _kernels_only(params: Any) -> Any:
    """Mask selecting Dense weight matrices (not biases, not normalization scales) for weight decay."""
    return jax.tree_util.tree_map_with_path(lambda path, _: path[-1].key == "kernel", params)


def build_optimizers(cfg: Config) -> tuple[optax.GradientTransformation, optax.GradientTransformation]:
    actor_tx = optax.adam(cfg.actor_lr, b1=cfg.adam_b1)
    if cfg.critic_weight_decay > 0:
        critic_tx = optax.chain(
            optax.add_decayed_weights(cfg.critic_weight_decay, mask=_kernels_only),
            optax.adam(cfg.critic_lr, b1=cfg.adam_b1),
        )
    else:
        critic_tx = optax.adam(cfg.critic_lr, b1=cfg.adam_b1)
    return actor_tx, critic_tx


# ----------------------------------------------------------------------------------------------- pure maths


def _apply(
    net: nn.Module, variables: Variables, *args: jax.Array, train: bool
) -> tuple[jax.Array, Variables]:
    """Apply ``net``; in training mode with batch norm also return the updated batch statistics."""
    if train and "batch_stats" in variables:
        out, upd = net.apply(variables, *args, train=True, mutable=["batch_stats"])
        return out, {**variables, **upd}
    return net.apply(variables, *args, train=train), variables


def first_q(q: jax.Array) -> jax.Array:
    """Q_0 of twin critics (shape (2, batch)), or the one critic's values."""
    return q[0] if q.ndim == 2 else q


def smoothing_noise(key: jax.Array, shape: tuple[int, ...], sigma: float, clip: float) -> jax.Array:
    """TD3's target policy smoothing noise: N(0, sigma^2) clipped to [-clip, clip]."""
    return jnp.clip(sigma * jax.random.normal(key, shape, jnp.float32), -clip, clip)


def critic_target(
    actor: Actor,
    critic: nn.Module,
    state: TrainState,
    batch: Batch,
    gamma: float,
    target_noise: jax.Array | None = None,
    targets: bool = True,
) -> jax.Array:
    """y = r + gamma * (1 - terminated) * Q'(s', mu'(s')), with the target networks in inference mode.

    Twin critics: Q' = min(Q'_0, Q'_1). ``target_noise``: mu'(s') + noise, clipped to [-1, 1]. n-step batches
    carry their own discount (gamma^m) and reward sum. ``targets`` False: the online actor and critic stand in for
    mu' and Q' (CrossQ has no target networks)."""
    next_a = next_action(actor, state.actor_target if targets else state.actor, batch, target_noise)
    q_next, _ = _apply(
        critic, state.critic_target if targets else state.critic, batch.next_obs, next_a, train=False
    )
    return bootstrap(batch, q_next, gamma)


def next_action(
    actor: Actor, actor_vars: Variables, batch: Batch, target_noise: jax.Array | None
) -> jax.Array:
    """mu(s') in inference mode, plus TD3's smoothing noise when given, clipped to [-1, 1]."""
    next_a, _ = _apply(actor, actor_vars, batch.next_obs, train=False)
    return next_a if target_noise is None else jnp.clip(next_a + target_noise, -1.0, 1.0)


def bootstrap(batch: Batch, q_next: jax.Array, gamma: float) -> jax.Array:
    """r + discount * (1 - terminated) * q_next, q_next the smaller of twin critics' values; n-step batches carry
    their own discount (gamma^m) and reward sum."""
    if q_next.ndim == 2:
        q_next = jnp.min(q_next, axis=0)
    discount = gamma if batch.discount is None else batch.discount
    return batch.reward + discount * (1.0 - batch.terminated) * q_next


def clip_target(y: jax.Array, bounds: tuple[float, ...]) -> jax.Array:
    """HER's clip of the target to the returns its rewards allow, e.g. [-1/(1 - gamma), 0]; () leaves y alone."""
    return jnp.clip(y, bounds[0], bounds[1]) if bounds else y


def critic_loss(
    critic: nn.Module, params: Any, variables: Variables, batch: Batch, y: jax.Array
) -> tuple[jax.Array, tuple[Variables, jax.Array]]:
    """mean((Q(s, a) - y)^2); twin critics: the sum of both critics' losses."""
    q, new_vars = _apply(critic, {**variables, "params": params}, batch.obs, batch.action, train=True)
    return jnp.sum(jnp.mean((q - y) ** 2, axis=-1)), (new_vars, jnp.mean(first_q(q)))


def joint_critic_loss(
    critic: nn.Module,
    params: Any,
    variables: Variables,
    batch: Batch,
    next_a: jax.Array,
    gamma: float,
    clip: tuple[float, ...],
) -> tuple[jax.Array, tuple[Variables, jax.Array]]:
    """CrossQ's critic loss: [s; s'] and [a; mu(s')] through the critic in one training-mode pass (one set of batch
    statistics for both halves, and the batch statistics updated from it); the second half, without gradient,
    bootstraps y = r + gamma (1 - terminated) Q(s', mu(s')), and the loss is mean((Q(s, a) - y)^2) (summed over
    twin critics)."""
    obs = jnp.concatenate([batch.obs, batch.next_obs], axis=0)
    action = jnp.concatenate([batch.action, next_a], axis=0)
    q_all, new_vars = _apply(critic, {**variables, "params": params}, obs, action, train=True)
    q, q_next = jnp.split(q_all, 2, axis=-1)
    y = jax.lax.stop_gradient(clip_target(bootstrap(batch, q_next, gamma), clip))
    return jnp.sum(jnp.mean((q - y) ** 2, axis=-1)), (new_vars, jnp.mean(first_q(q)))


def actor_loss(
    actor: Actor,
    critic: nn.Module,
    params: Any,
    actor_vars: Variables,
    critic_vars: Variables,
    obs: jax.Array,
    action_l2: float = 0.0,
    critic_train: bool = True,
    actor_q: str = "first",
) -> tuple[jax.Array, Variables]:
    """-mean(Q(s, mu(s))) (+ action_l2 * mean(mu(s)^2), HER's penalty on the tanh output). The critic normalizes
    with batch statistics (``critic_train``, the paper's batch norm) or its running ones (CrossQ's renorm). Twin
    critics: Q is Q_0, or min(Q_0, Q_1) with ``actor_q`` "min" (CrossQ)."""
    a, new_actor = _apply(actor, {**actor_vars, "params": params}, obs, train=True)
    q, _ = _apply(critic, critic_vars, obs, a, train=critic_train)  # critic's statistics are not updated here
    loss = -jnp.mean(jnp.min(q, axis=0) if actor_q == "min" and q.ndim == 2 else first_q(q))
    if action_l2:
        loss = loss + action_l2 * jnp.mean(a**2)
    return loss, new_actor


def soft_update(online: Variables, target: Variables, tau: float) -> Variables:
    """tau * online + (1 - tau) * target for parameters and batch statistics; observation statistics are the
    online network's (they are data, not learned)."""
    out = optax.incremental_update({k: v for k, v in online.items() if k != "obs_stats"},
                                   {k: v for k, v in target.items() if k != "obs_stats"}, tau)  # fmt: skip
    return {**out, **({"obs_stats": online["obs_stats"]} if "obs_stats" in online else {})}


def update_step(
    state: TrainState,
    batch: Batch,
    *,
    actor: Actor,
    critic: Critic,
    actor_tx: optax.GradientTransformation,
    critic_tx: optax.GradientTransformation,
    hp: Hyper,
) -> tuple[TrainState, Metrics]:
    """One DDPG gradient step (critic, then actor and targets) as a pure function."""
    eps = None
    if hp.target_noise > 0:
        key, sub = jax.random.split(state.key)
        eps = smoothing_noise(sub, batch.action.shape, hp.target_noise, hp.target_noise_clip)
        state = state.replace(key=key)
    if hp.joint_critic_pass:  # validation made sure the target networks are off
        next_a = next_action(actor, state.actor, batch, eps)
        loss_fn = partial(joint_critic_loss, critic, next_a=next_a, gamma=hp.gamma, clip=hp.target_clip)
        (c_loss, (critic_vars, mean_q)), grads = jax.value_and_grad(loss_fn, has_aux=True)(
            state.critic["params"], state.critic, batch
        )
    else:
        y = critic_target(actor, critic, state, batch, hp.gamma, eps, hp.target_networks)
        y = jax.lax.stop_gradient(clip_target(y, hp.target_clip))
        (c_loss, (critic_vars, mean_q)), grads = jax.value_and_grad(
            partial(critic_loss, critic), has_aux=True
        )(state.critic["params"], state.critic, batch, y)
    upd, critic_opt = critic_tx.update(grads, state.critic_opt, state.critic["params"])
    critic_vars = {**critic_vars, "params": optax.apply_updates(state.critic["params"], upd)}
    state = state.replace(critic=critic_vars, critic_opt=critic_opt, step=state.step + 1)

    def actor_and_targets(state: TrainState) -> tuple[TrainState, jax.Array]:
        (a_loss, actor_vars), grads = jax.value_and_grad(partial(actor_loss, actor, critic), has_aux=True)(
            state.actor["params"],
            state.actor,
            state.critic,
            batch.obs,
            hp.action_l2,
            not hp.batch_renorm,
            hp.actor_q,
        )
        upd, actor_opt = actor_tx.update(grads, state.actor_opt, state.actor["params"])
        actor_vars = {**actor_vars, "params": optax.apply_updates(state.actor["params"], upd)}
        state = state.replace(actor=actor_vars, actor_opt=actor_opt)
        if hp.policy_avg > 0:
            state = state.replace(actor_avg=soft_update(actor_vars, state.actor_avg, hp.policy_avg))
        if hp.target_networks and hp.target_update == "step":
            state = state.replace(
                actor_target=soft_update(actor_vars, state.actor_target, hp.tau),
                critic_target=soft_update(state.critic, state.critic_target, hp.tau),
            )
        return state, a_loss

    if hp.policy_delay == 1:
        state, a_loss = actor_and_targets(state)
    else:
        state, a_loss = jax.lax.cond(
            state.step % hp.policy_delay == 0,
            actor_and_targets,
            lambda s: (s, jnp.full((), jnp.nan, jnp.float32)),
            state,
        )
    return state, Metrics(c_loss, a_loss, mean_q)


def update_many(state: TrainState, batches: Batch, **static: Any) -> tuple[TrainState, Metrics]:
    """K gradient steps over batches stacked on axis 0, fused with ``lax.scan``; metrics are K-step means
    (the actor loss averages over the steps that updated the actor). ``--target-update call`` (HER): the targets
    move once per update unit (``gradient_steps`` steps), so a call of several units moves them once per unit."""
    hp = static["hp"]

    def steps(state: TrainState, batches: Batch) -> tuple[TrainState, Metrics]:
        return jax.lax.scan(lambda s, b: update_step(s, b, **static), state, batches)

    if not (hp.target_networks and hp.target_update == "call"):
        state, m = steps(state, batches)
        return state, Metrics(jnp.mean(m.critic_loss), jnp.nanmean(m.actor_loss), jnp.mean(m.mean_q))

    def unit(state: TrainState, batches: Batch) -> tuple[TrainState, Metrics]:
        state, m = steps(state, batches)
        return state.replace(
            actor_target=soft_update(state.actor, state.actor_target, hp.tau),
            critic_target=soft_update(state.critic, state.critic_target, hp.tau),
        ), m

    k = batches.obs.shape[0]
    size = hp.gradient_steps or hp.update_every
    if k > size and k % size == 0:  # several units in one call
        units = jax.tree_util.tree_map(lambda x: x.reshape(k // size, size, *x.shape[1:]), batches)
        state, m = jax.lax.scan(unit, state, units)
    else:
        state, m = unit(state, batches)
    return state, Metrics(jnp.mean(m.critic_loss), jnp.nanmean(m.actor_loss), jnp.mean(m.mean_q))


def update_and_act(
    state: TrainState, batches: Batch, obs: jax.Array, **static: Any
) -> tuple[TrainState, Metrics, jax.Array]:
    """``update_many``, then the exploratory action for ``obs`` from the updated actor, in one compiled call.

    The loop acts on the next observation right after each update; fusing the two saves one dispatch and one
    host sync per step. The noise state and key advance inside ``state``, exactly as ``act`` would advance them."""
    state, m = update_many(state, batches, **static)
    a, noise_state, key = act(
        static["actor"], static["hp"], state.actor, state.explore, obs, state.noise, state.key
    )
    return state.replace(noise=noise_state, key=key), m, a


def act(
    actor: Actor,
    hp: Hyper,
    actor_vars: Variables,
    explore: Variables,
    obs: jax.Array,
    noise_state: jax.Array,
    key: jax.Array,
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Exploratory action in [-1, 1]: mu(s) + noise, clipped; with parameter noise, the perturbed actor's
    mu~(s) (no noise added). Returns (action, new noise state, new key). ``obs`` is one observation, or (N, dim) for
    N envs, each with its own row of the noise state (N, act_dim) and its own random-action coin."""
    single = obs.ndim == 1
    x = obs[None] if single else obs
    if hp.noise == "param":
        a = actor.apply({**actor_vars, "params": explore["params"]}, x, train=False)
        return (a[0] if single else a), noise_state, key
    key, sub = jax.random.split(key)
    a = actor.apply(actor_vars, x, train=False)
    a = a[0] if single else a
    n, noise_state = noise_lib.sample(hp.noise, noise_state, sub, hp.noise_sigma, hp.noise_theta)
    a = jnp.clip(a + n, -1.0, 1.0)
    if hp.random_eps > 0:  # HER's random_eps: a uniformly random action instead, with this probability
        key, k_coin, k_uniform = jax.random.split(key, 3)
        uniform = jax.random.uniform(k_uniform, a.shape, a.dtype, -1.0, 1.0)
        coin = jax.random.uniform(k_coin, () if single else (a.shape[0], 1))
        a = jnp.where(coin < hp.random_eps, uniform, a)
    return a, noise_state, key


def resample_param_noise(state: TrainState) -> TrainState:
    """A new perturbed actor: the current actor's weights plus N(0, sigma^2) noise (at every episode start)."""
    key, sub = jax.random.split(state.key)
    params = noise_lib.perturb(state.actor["params"], sub, state.explore["sigma"])
    return state.replace(key=key, explore={**state.explore, "params": params})


def adapt_param_noise(
    actor: Actor, delta: float, state: TrainState, obs: jax.Array
) -> tuple[TrainState, jax.Array]:
    """Plappert et al. 2018's adaptive scale: perturb the current actor with the current sigma, measure
    d = sqrt(mean((mu(s) - mu~(s))^2)) on ``obs`` (replay observations), and move sigma by PARAM_NOISE_ALPHA
    towards the distance ``delta``. Returns the new state and d."""
    key, sub = jax.random.split(state.key)
    sigma = state.explore["sigma"]
    trial = noise_lib.perturb(state.actor["params"], sub, sigma)
    a = actor.apply(state.actor, obs, train=False)
    a_trial = actor.apply({**state.actor, "params": trial}, obs, train=False)
    d = jnp.sqrt(jnp.mean((a - a_trial) ** 2))
    sigma = noise_lib.adapt_sigma(sigma, d, delta, PARAM_NOISE_ALPHA)
    return state.replace(key=key, explore={**state.explore, "sigma": sigma}), d


def act_greedy(actor: Actor, actor_vars: Variables, obs: jax.Array) -> jax.Array:
    """Noise-free action(s) in [-1, 1] for a batch of observations."""
    return actor.apply(actor_vars, obs, train=False)


# --------------------------------------------------------------------------------------------- the Learner


def enable_compile_cache(path: str | os.PathLike) -> None:
    """Keep every compiled program in jax's persistent cache at ``path`` (process-wide, jax's own mechanism).

    jax caches only programs that took over a second to compile by default; ddpgx's take less, so the threshold
    is lowered to zero. jax checks the jax version, the compile options and the host CPU's features before it
    loads a cached program, and compiles afresh when they differ."""
    jax.config.update("jax_compilation_cache_dir", str(Path(path).expanduser()))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)


class Learner:
    """Networks, optimizers and compiled functions for one configuration."""

    def __init__(self, cfg: Config, obs_dim: int, action_dim: int) -> None:
        self.cfg = cfg
        self.obs_dim, self.action_dim = obs_dim, action_dim
        self.actor, self.critic = build_networks(cfg, action_dim)
        self.actor_tx, self.critic_tx = build_optimizers(cfg)
        self.hp = Hyper.of(cfg)
        static = dict(
            actor=self.actor, critic=self.critic, actor_tx=self.actor_tx, critic_tx=self.critic_tx, hp=self.hp
        )
        self.update = jax.jit(partial(update_many, **static), donate_argnums=0)
        self.update_and_act = jax.jit(partial(update_and_act, **static), donate_argnums=0)
        self.act = jax.jit(partial(act, self.actor, self.hp))
        self.act_greedy = jax.jit(partial(act_greedy, self.actor))
        self.resample_param_noise = jax.jit(resample_param_noise, donate_argnums=0)
        self.adapt_param_noise = jax.jit(
            partial(adapt_param_noise, self.actor, cfg.param_noise_delta), donate_argnums=0
        )
        self.n_step = cfg.n_step
        self.param_noise = cfg.noise == "param"

    def precompile(
        self, state: TrainState, num_batches: int, batch_size: int, eval_episodes: int, num_envs: int = 1
    ) -> threading.Thread:
        """Compile what the training loop calls, from shapes alone, on a background thread.

        Started before the uniform-random warm-up steps, the compiles overlap them, and the first real call finds
        its program in jax's cache. Join the thread before the first call: a call made while the same program is
        still compiling compiles it a second time. A failure here is left for that first call to raise."""

        def spec(x: Any) -> jax.ShapeDtypeStruct:
            return jax.ShapeDtypeStruct(x.shape, x.dtype)

        st = jax.tree_util.tree_map(spec, state)
        f32 = jnp.float32
        obs = jax.ShapeDtypeStruct((self.obs_dim,) if num_envs == 1 else (num_envs, self.obs_dim), f32)
        batches = Batch(
            jax.ShapeDtypeStruct((num_batches, batch_size, self.obs_dim), f32),
            jax.ShapeDtypeStruct((num_batches, batch_size, self.action_dim), f32),
            jax.ShapeDtypeStruct((num_batches, batch_size), f32),
            jax.ShapeDtypeStruct((num_batches, batch_size, self.obs_dim), f32),
            jax.ShapeDtypeStruct((num_batches, batch_size), f32),
            jax.ShapeDtypeStruct((num_batches, batch_size), f32) if self.n_step > 1 else None,
        )

        def work() -> None:
            try:
                self.update_and_act.lower(st, batches, obs).compile()
                self.act.lower(st.actor, st.explore, obs, st.noise, st.key).compile()
                self.act_greedy.lower(
                    st.actor, jax.ShapeDtypeStruct((eval_episodes, self.obs_dim), f32)
                ).compile()
            except Exception:  # noqa: BLE001 - the first real call compiles again and reports it
                pass

        thread = threading.Thread(target=work, name="ddpgx-precompile", daemon=True)
        thread.start()
        return thread

    def init(self, seed: int) -> TrainState:
        """The initial state: networks drawn with numpy (see ``init_variables``), targets equal to them."""
        rng = np.random.default_rng([seed, 1])
        obs = jax.ShapeDtypeStruct((1, self.obs_dim), jnp.float32)  # shapes are all init_variables needs
        act_ = jax.ShapeDtypeStruct((1, self.action_dim), jnp.float32)
        actor_vars = init_variables(self.actor, rng, obs)
        critic_vars = init_variables(self.critic, rng, obs, act_)
        explore: Variables = {}
        if self.param_noise:  # the perturbed copy is drawn at the first episode's start
            explore = {"params": actor_vars["params"], "sigma": np.float32(self.cfg.param_noise_sigma)}
        return jax.jit(self._assemble)(actor_vars, critic_vars, jax.random.PRNGKey(seed), explore)

    def set_obs_stats(self, state: TrainState, mean: np.ndarray, std: np.ndarray) -> TrainState:
        """Write observation statistics into every network that normalizes (online and target, actor and
        critic), as fresh host arrays (safe to donate)."""
        stats = lambda: {"mean": np.array(mean, np.float32), "std": np.array(std, np.float32)}  # noqa: E731
        return state.replace(**{
            name: {**getattr(state, name), "obs_stats": stats()}
            for name in ("actor", "critic", "actor_target", "critic_target", "actor_avg")
            if getattr(state, name)
        })  # fmt: skip

    def _assemble(
        self, actor_vars: Variables, critic_vars: Variables, key: jax.Array, explore: Variables
    ) -> TrainState:
        return TrainState(
            actor=actor_vars,
            critic=critic_vars,
            actor_target=actor_vars,  # outputs of a compiled call never share buffers
            critic_target=critic_vars,
            actor_opt=self.actor_tx.init(actor_vars["params"]),
            critic_opt=self.critic_tx.init(critic_vars["params"]),
            noise=noise_lib.ou_init(self.action_dim, self.cfg.num_envs),
            key=key,
            step=jnp.zeros((), jnp.int32),
            explore=explore,
            actor_avg=actor_vars if self.cfg.policy_avg > 0 else {},
        )
