"""Exploration noise statistics against their formulas."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ddpgx import noise


def run_ou(x0: np.ndarray, steps: int, theta: float, sigma: float, seed: int = 0) -> np.ndarray:
    def body(x, key):
        x = noise.ou_step(x, key, theta, sigma)
        return x, x

    keys = jax.random.split(jax.random.PRNGKey(seed), steps)
    _, xs = jax.jit(lambda x, k: jax.lax.scan(body, x, k))(jnp.asarray(x0, jnp.float32), keys)
    return np.asarray(xs)


def test_ou_reverts_to_its_mean_geometrically():
    # E[x_t] = (1 - theta)^t x_0: average many independent chains started at 1
    theta, sigma, t = 0.15, 0.2, 10
    xs = run_ou(np.ones(20_000), t, theta, sigma)
    assert xs[-1].mean() == pytest.approx((1 - theta) ** t, abs=0.01)
    assert abs(xs[-1].mean()) < 1.0


@pytest.mark.parametrize("theta,sigma", [(0.15, 0.2), (0.5, 0.3)])
def test_ou_stationary_std_matches_the_discrete_process(theta, sigma):
    xs = run_ou(np.zeros(2_000), 400, theta, sigma, seed=1)
    tail = xs[100:]  # after burn-in
    expected = sigma / np.sqrt(1 - (1 - theta) ** 2)
    assert noise.ou_stationary_std(theta, sigma) == pytest.approx(expected)
    assert tail.std() == pytest.approx(expected, rel=0.02)
    assert tail.mean() == pytest.approx(0.0, abs=0.01)
    # consecutive values are correlated with coefficient 1 - theta
    corr = np.corrcoef(tail[1:].ravel(), tail[:-1].ravel())[0, 1]
    assert corr == pytest.approx(1 - theta, abs=0.01)


def test_gaussian_noise_std_and_independence():
    keys = jax.random.split(jax.random.PRNGKey(3), 50_000)
    xs = np.asarray(jax.vmap(lambda k: noise.gaussian(k, (2,), 0.1))(keys))
    assert xs.std() == pytest.approx(0.1, rel=0.02)
    assert xs.mean() == pytest.approx(0.0, abs=0.002)
    assert abs(np.corrcoef(xs[1:, 0], xs[:-1, 0])[0, 1]) < 0.02


def test_sample_dispatches_on_kind():
    state = jnp.ones(3)
    key = jax.random.PRNGKey(0)
    n, s = noise.sample("ou", state, key, 0.0, 0.5)
    np.testing.assert_allclose(np.asarray(n), 0.5)  # sigma 0: pure reversion halfway to 0
    np.testing.assert_allclose(np.asarray(s), 0.5)
    n, s = noise.sample("gaussian", state, key, 0.0, 0.5)
    np.testing.assert_allclose(np.asarray(n), 0.0)
    np.testing.assert_allclose(np.asarray(s), 1.0)  # gaussian leaves the state alone
