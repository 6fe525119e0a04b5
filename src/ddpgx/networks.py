"""Actor mu(s) and critic Q(s, a) as flax.linen modules.

Both follow the paper's layout when asked: batch normalization on the state input, on every actor layer and on
the critic's layers before the action enters; the action entering the critic at a chosen hidden layer; hidden
layers initialised U[-1/sqrt(fan_in), 1/sqrt(fan_in)] (weights and biases) and final layers U[-3e-3, 3e-3].

Or CrossQ's layout (Bhatt et al. 2024, norm "renorm"): batch renormalization on the input (the critic's is the
state and the action together) and after every hidden ReLU.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np


def uniform(scale: float) -> nn.initializers.Initializer:
    def init(key: jax.Array, shape: Sequence[int], dtype: jnp.dtype = jnp.float32) -> jax.Array:
        return jax.random.uniform(key, shape, dtype, -scale, scale)

    return init


def init_scale(fan_in: int, scale: float = 0.0) -> float:
    """A dense layer's weights and bias start in U[-s, s]: s = 1/sqrt(fan_in), or ``scale`` when it is > 0."""
    return scale if scale > 0 else 1.0 / fan_in**0.5


def dense(x: jax.Array, features: int, name: str, scale: float = 0.0) -> jax.Array:
    """Dense layer initialised as ``init_scale`` says. Call from inside a compact method; the layer is a child of
    that module named ``name``."""
    s = init_scale(x.shape[-1], scale)
    return nn.Dense(features, kernel_init=uniform(s), bias_init=uniform(s), name=name)(x)


def init_variables(module: nn.Module, rng: np.random.Generator, *inputs: jax.Array) -> dict:
    """The module's variables, drawn with numpy by the same rules as ``module.init``.

    Why not ``module.init``: every jax.random call site costs XLA tens of milliseconds to compile, and flax's
    eager init dispatches each small op on its own; either way about a second on a CPU, a fifth of the time it
    takes to solve Pendulum. Here only the structure comes from flax (``jax.eval_shape``, nothing compiled).
    Dense layers are drawn in the order flax creates them; normalization layers start at scale 1, bias 0, batch
    statistics at mean 0, variance 1, and observation statistics at mean 0, std 1, as flax's do."""
    shapes = jax.eval_shape(partial(module.init, jax.random.PRNGKey(0)), *inputs)

    def draw(name: str, tree: dict) -> dict:
        if "kernel" in tree:  # a Dense layer
            s = init_scale(tree["kernel"].shape[0], module.final_init if name == "out" else 0.0)
            return {k: rng.uniform(-s, s, v.shape).astype(np.float32) for k, v in tree.items()}
        ones = {"scale", "var", "std"}
        return {
            k: draw(k, v)
            if isinstance(v, dict)
            else (np.ones if k in ones else np.zeros)(v.shape, np.float32)
            for k, v in tree.items()
        }

    return {collection: draw(collection, tree) for collection, tree in shapes.items()}


def normalize_obs(module: nn.Module, obs: jax.Array, clip: float) -> jax.Array:
    """(obs - mean) / std, clipped to +-clip, with mean and std in the module's ``obs_stats`` collection. They are
    not learned: the training loop writes running statistics of the observations into them (see obsnorm.py), and
    they are saved with the parameters, so a loaded policy normalizes as the trained one did."""
    dim = obs.shape[-1]
    mean = module.variable("obs_stats", "mean", jnp.zeros, (dim,), jnp.float32)
    std = module.variable("obs_stats", "std", jnp.ones, (dim,), jnp.float32)
    return jnp.clip((obs - mean.value) / std.value, -clip, clip)


RENORM_R_MAX, RENORM_D_MAX, RENORM_EPS = 3.0, 5.0, 1e-3  # CrossQ's batch renormalization constants


class BatchRenorm(nn.Module):
    """Batch renormalization (Ioffe 2017) as CrossQ uses it.

    Training (``train``): x_hat = (x - mu_B) / sigma_B * r + d with the batch's mean mu_B and sigma_B =
    sqrt(var_B + eps), and r = clip(sigma_B / sigma, 1/3, 3), d = clip((mu_B - mu) / sigma, -5, 5) against the
    running mean mu and sigma = sqrt(var + eps), both without gradient; for the first ``warmup`` training passes
    r = 1 and d = 0 (plain batch norm, while the running statistics settle). Each training pass moves the running
    statistics by ``momentum`` (mu <- m mu + (1 - m) mu_B, var likewise with the batch's biased variance).
    Inference: x_hat = (x - mu) / sigma. Output: scale * x_hat + bias."""

    momentum: float = 0.99
    warmup: int = 100_000

    @nn.compact
    def __call__(self, x: jax.Array, train: bool) -> jax.Array:
        dim = x.shape[-1]
        mean = self.variable("batch_stats", "mean", jnp.zeros, (dim,), jnp.float32)
        var = self.variable("batch_stats", "var", jnp.ones, (dim,), jnp.float32)
        passes = self.variable("batch_stats", "steps", jnp.zeros, (), jnp.float32)  # training passes so far
        scale = self.param("scale", nn.initializers.ones, (dim,), jnp.float32)
        bias = self.param("bias", nn.initializers.zeros, (dim,), jnp.float32)
        sigma = jnp.sqrt(var.value + RENORM_EPS)
        if not train:
            return (x - mean.value) / sigma * scale + bias
        axes = tuple(range(x.ndim - 1))
        mu_b, var_b = jnp.mean(x, axis=axes), jnp.var(x, axis=axes)
        sigma_b = jnp.sqrt(var_b + RENORM_EPS)
        warm = passes.value >= self.warmup
        r = jax.lax.stop_gradient(
            jnp.where(warm, jnp.clip(sigma_b / sigma, 1 / RENORM_R_MAX, RENORM_R_MAX), 1.0)
        )
        d = jax.lax.stop_gradient(
            jnp.where(warm, jnp.clip((mu_b - mean.value) / sigma, -RENORM_D_MAX, RENORM_D_MAX), 0.0)
        )
        if not self.is_initializing():
            m = self.momentum
            mean.value = m * mean.value + (1 - m) * jax.lax.stop_gradient(mu_b)
            var.value = m * var.value + (1 - m) * jax.lax.stop_gradient(var_b)
            passes.value = passes.value + 1.0
        return ((x - mu_b) / sigma_b * r + d) * scale + bias


def norm(
    x: jax.Array, kind: str, train: bool, momentum: float, name: str, renorm_warmup: int = 100_000
) -> jax.Array:
    """Batch norm (batch statistics when ``train``), batch renormalization, layer norm, or nothing (``kind``
    "batch", "renorm", "layer", "")."""
    if kind == "renorm":
        return BatchRenorm(momentum, renorm_warmup, name=name)(x, train)
    if kind == "batch":
        return nn.BatchNorm(use_running_average=not train, momentum=momentum, epsilon=1e-5, name=name)(x)
    if kind == "layer":
        return nn.LayerNorm(name=name)(x)
    return x


class Actor(nn.Module):
    """mu(s) in [-1, 1]^action_dim: [BN(s)] -> (Dense -> [norm] -> ReLU) x len(hidden) -> Dense -> tanh; with
    "renorm", BRN(s) -> (Dense -> ReLU -> BRN) x len(hidden) -> Dense -> tanh (CrossQ)."""

    action_dim: int
    hidden: tuple[int, ...] = (256, 256)
    norm: str = ""
    bn_momentum: float = 0.99
    final_init: float = 3e-3
    obs_norm: bool = False
    obs_clip: float = 5.0
    renorm_warmup: int = 100_000

    @nn.compact
    def __call__(self, obs: jax.Array, train: bool = False) -> jax.Array:
        x = normalize_obs(self, obs, self.obs_clip) if self.obs_norm else obs
        nrm = partial(
            norm, kind=self.norm, train=train, momentum=self.bn_momentum, renorm_warmup=self.renorm_warmup
        )
        if self.norm in ("batch", "renorm"):
            x = nrm(x, name="norm_input")
        for i, h in enumerate(self.hidden):
            x = dense(x, h, f"hidden_{i}")
            x = (
                nrm(nn.relu(x), name=f"norm_{i}")
                if self.norm == "renorm"
                else nn.relu(nrm(x, name=f"norm_{i}"))
            )
        return jnp.tanh(dense(x, self.action_dim, "out", self.final_init))


class Critic(nn.Module):
    """Q(s, a): state through the first ``action_layer`` hidden layers (normalized as the paper says), then the
    action is concatenated and the rest are plain ReLU layers ending in a linear scalar. With "renorm" (CrossQ):
    BRN([s, a]) -> (Dense -> ReLU -> BRN) x len(hidden) -> Dense (the action enters at the input)."""

    hidden: tuple[int, ...] = (256, 256)
    action_layer: int = 0
    norm: str = ""
    bn_momentum: float = 0.99
    final_init: float = 3e-3
    obs_norm: bool = False
    obs_clip: float = 5.0
    renorm_warmup: int = 100_000

    @nn.compact
    def __call__(self, obs: jax.Array, action: jax.Array, train: bool = False) -> jax.Array:
        x = normalize_obs(self, obs, self.obs_clip) if self.obs_norm else obs
        if self.norm == "renorm":
            nrm = partial(
                norm, kind="renorm", train=train, momentum=self.bn_momentum, renorm_warmup=self.renorm_warmup
            )
            x = nrm(jnp.concatenate([x, action], axis=-1), name="norm_input")
            for i, h in enumerate(self.hidden):
                x = nrm(nn.relu(dense(x, h, f"hidden_{i}")), name=f"norm_{i}")
            return dense(x, 1, "out", self.final_init)[..., 0]
        if self.norm == "batch":
            x = norm(x, "batch", train, self.bn_momentum, "norm_input")
        for i, h in enumerate(self.hidden):
            if i == self.action_layer:
                x = jnp.concatenate([x, action], axis=-1)
            x = dense(x, h, f"hidden_{i}")
            # batch norm only before the action enters (paper); layer norm on every hidden layer
            if self.norm == "layer" or (self.norm == "batch" and i < self.action_layer):
                x = norm(x, self.norm, train, self.bn_momentum, f"norm_{i}")
            x = nn.relu(x)
        return dense(x, 1, "out", self.final_init)[..., 0]


class TwinCritic(Critic):
    """Two independent critics q0 and q1 of the same shape (TD3's clipped double Q), on one normalized
    observation; returns their values stacked, shape (2, batch). Its fields are Critic's."""

    @nn.compact
    def __call__(self, obs: jax.Array, action: jax.Array, train: bool = False) -> jax.Array:
        x = normalize_obs(self, obs, self.obs_clip) if self.obs_norm else obs
        kw = dict(
            hidden=self.hidden,
            action_layer=self.action_layer,
            norm=self.norm,
            bn_momentum=self.bn_momentum,
            final_init=self.final_init,
            renorm_warmup=self.renorm_warmup,
        )
        return jnp.stack(
            [Critic(**kw, name="q0")(x, action, train), Critic(**kw, name="q1")(x, action, train)]
        )
