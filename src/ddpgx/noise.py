"""Exploration noise as pure functions over an explicit state (so it can be jitted and checkpointed).

Both act in the normalized action space [-1, 1]. The Ornstein-Uhlenbeck process is the paper's, discretized with
dt = 1:  x_{t+1} = x_t + theta * (0 - x_t) + sigma * eps_t,  eps_t ~ N(0, I). Its stationary variance is
sigma^2 / (1 - (1 - theta)^2). The state is reset to zero at each episode start.

Adaptive parameter-space noise (Plappert et al. 2018) perturbs the actor's weights instead: ``perturb`` draws the
perturbed copy, ``adapt_sigma`` moves its scale towards a target distance in action space.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def ou_init(action_dim: int, num_envs: int = 1) -> jax.Array:
    """The OU state at an episode start: one row per env for several envs."""
    return jnp.zeros((action_dim,) if num_envs == 1 else (num_envs, action_dim), jnp.float32)


def ou_step(x: jax.Array, key: jax.Array, theta: float, sigma: float) -> jax.Array:
    """One step of the OU process; returns the new state, which is also the noise to add."""
    return x - theta * x + sigma * jax.random.normal(key, x.shape, x.dtype)


def ou_stationary_std(theta: float, sigma: float) -> float:
    return sigma / (1.0 - (1.0 - theta) ** 2) ** 0.5


def gaussian(key: jax.Array, shape: tuple[int, ...], sigma: float) -> jax.Array:
    return sigma * jax.random.normal(key, shape, jnp.float32)


def sample(
    kind: str, state: jax.Array, key: jax.Array, sigma: float, theta: float
) -> tuple[jax.Array, jax.Array]:
    """(noise, new_state) for ``kind`` in {"ou", "gaussian"}; gaussian keeps its (unused) state unchanged."""
    if kind == "ou":
        state = ou_step(state, key, theta, sigma)
        return state, state
    return gaussian(key, state.shape, sigma), state


def perturbable(path: tuple, leaf: object) -> bool:
    """Dense layers' kernels and biases; not normalization layers' scales and biases (as in OpenAI baselines)."""
    names = [getattr(k, "key", str(k)) for k in path]
    return len(names) >= 2 and not str(names[-2]).startswith("norm")


def perturb(params: object, key: jax.Array, sigma: jax.Array) -> object:
    """``params`` with N(0, sigma^2) added to every perturbable leaf, each with its own key."""
    leaves, treedef = jax.tree_util.tree_flatten_with_path(params)
    keys = jax.random.split(key, len(leaves))
    out = [
        x + sigma * jax.random.normal(k, x.shape, x.dtype) if perturbable(path, x) else x
        for (path, x), k in zip(leaves, keys, strict=True)
    ]
    return jax.tree_util.tree_unflatten(treedef, out)


def adapt_sigma(sigma: jax.Array, distance: jax.Array, delta: float, alpha: float) -> jax.Array:
    """sigma * alpha while the perturbed policy's distance is below ``delta``, sigma / alpha otherwise."""
    return jnp.where(distance < delta, sigma * alpha, sigma / alpha)
