"""Actor mu(s) and critic Q(s, a) as flax.linen modules.

Both follow the paper's layout when asked: batch normalization on the state input, on every actor layer and on
the critic's layers before the action enters; the action entering the critic at a chosen hidden layer; hidden
layers initialised U[-1/sqrt(fan_in), 1/sqrt(fan_in)] (weights and biases) and final layers U[-3e-3, 3e-3].
"""

from __future__ import annotations

from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp


def uniform(scale: float) -> nn.initializers.Initializer:
    def init(key: jax.Array, shape: Sequence[int], dtype: jnp.dtype = jnp.float32) -> jax.Array:
        return jax.random.uniform(key, shape, dtype, -scale, scale)

    return init


class FanInDense(nn.Module):
    """Dense layer with weights and bias in U[-s, s]: s = 1/sqrt(fan_in), or ``scale`` when it is > 0."""

    features: int
    scale: float = 0.0

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        s = self.scale if self.scale > 0 else 1.0 / (x.shape[-1] ** 0.5)
        return nn.Dense(self.features, kernel_init=uniform(s), bias_init=uniform(s))(x)


class Norm(nn.Module):
    """Batch norm, layer norm or nothing; batch norm uses batch statistics when ``train``."""

    kind: str  # "batch", "layer" or ""
    momentum: float = 0.99

    @nn.compact
    def __call__(self, x: jax.Array, train: bool) -> jax.Array:
        if self.kind == "batch":
            return nn.BatchNorm(use_running_average=not train, momentum=self.momentum, epsilon=1e-5)(x)
        if self.kind == "layer":
            return nn.LayerNorm()(x)
        return x


class Actor(nn.Module):
    """mu(s) in [-1, 1]^action_dim: [BN(s)] -> (Dense -> [norm] -> ReLU) x len(hidden) -> Dense -> tanh."""

    action_dim: int
    hidden: tuple[int, ...] = (256, 256)
    norm: str = ""
    bn_momentum: float = 0.99
    final_init: float = 3e-3

    @nn.compact
    def __call__(self, obs: jax.Array, train: bool = False) -> jax.Array:
        x = obs
        if self.norm == "batch":
            x = Norm("batch", self.bn_momentum)(x, train)
        for h in self.hidden:
            x = FanInDense(h)(x)
            x = nn.relu(Norm(self.norm, self.bn_momentum)(x, train))
        return jnp.tanh(FanInDense(self.action_dim, self.final_init)(x))


class Critic(nn.Module):
    """Q(s, a): state through the first ``action_layer`` hidden layers (normalized as the paper says), then the
    action is concatenated and the rest are plain ReLU layers ending in a linear scalar."""

    hidden: tuple[int, ...] = (256, 256)
    action_layer: int = 0
    norm: str = ""
    bn_momentum: float = 0.99
    final_init: float = 3e-3

    @nn.compact
    def __call__(self, obs: jax.Array, action: jax.Array, train: bool = False) -> jax.Array:
        x = obs
        if self.norm == "batch":
            x = Norm("batch", self.bn_momentum)(x, train)
        for i, h in enumerate(self.hidden):
            if i == self.action_layer:
                x = jnp.concatenate([x, action], axis=-1)
            x = FanInDense(h)(x)
            # batch norm only before the action enters (paper); layer norm on every hidden layer
            if self.norm == "layer" or (self.norm == "batch" and i < self.action_layer):
                x = Norm(self.norm, self.bn_momentum)(x, train)
            x = nn.relu(x)
        return FanInDense(1, self.final_init)(x)[..., 0]
