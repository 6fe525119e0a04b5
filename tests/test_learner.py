"""The update's maths against values computed by hand on a tiny network, with and without jit."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ddpgx.config import Config
from ddpgx.learner import Batch, Learner, actor_loss, critic_loss, critic_target, update_many

# 1-d observation, 1-d action, one hidden unit per network: every number below can be checked on paper.
TINY = Config(actor_hidden=(1,), critic_hidden=(1,), critic_action_layer=0, gamma=0.9, tau=0.1, batch_size=2)


def set_params(learner: Learner, state, actor_w, critic_w, actor_t=None, critic_t=None):
    """actor_w = (w1, b1, w2, b2): a = tanh(w2 * relu(w1 s + b1) + b2).
    critic_w = (ws, wa, b1, w2, b2): q = w2 * relu(ws s + wa a + b1) + b2."""

    def actor_vars(w):
        w1, b1, w2, b2 = w
        return {
            "params": {
                "hidden_0": {"kernel": jnp.array([[w1]]), "bias": jnp.array([b1])},
                "out": {"kernel": jnp.array([[w2]]), "bias": jnp.array([b2])},
            }
        }

    def critic_vars(w):
        ws, wa, b1, w2, b2 = w
        return {
            "params": {
                "hidden_0": {"kernel": jnp.array([[ws], [wa]]), "bias": jnp.array([b1])},
                "out": {"kernel": jnp.array([[w2]]), "bias": jnp.array([b2])},
            }
        }

    a, c = actor_vars(actor_w), critic_vars(critic_w)
    return state.replace(
        actor=a,
        critic=c,
        actor_target=actor_vars(actor_t or actor_w),
        critic_target=critic_vars(critic_t or critic_w),
        actor_opt=learner.actor_tx.init(a["params"]),
        critic_opt=learner.critic_tx.init(c["params"]),
    )


ACTOR = (0.5, 0.1, 2.0, -0.3)
CRITIC = (1.0, -0.5, 0.2, 1.5, 0.05)
ACTOR_T = (0.4, 0.0, 1.0, 0.0)
CRITIC_T = (0.8, 0.3, 0.1, 2.0, -0.1)
BATCH = Batch(
    obs=jnp.array([[1.0], [-2.0]]),
    action=jnp.array([[0.5], [-1.0]]),
    reward=jnp.array([1.0, -0.5]),
    next_obs=jnp.array([[2.0], [0.5]]),
    terminated=jnp.array([0.0, 1.0]),
)


def relu(x):
    return np.maximum(x, 0.0)  # scalars and arrays


def mu(w, s):
    w1, b1, w2, b2 = w
    return np.tanh(w2 * relu(w1 * s + b1) + b2)


def q(w, s, a):
    ws, wa, b1, w2, b2 = w
    return w2 * relu(ws * s + wa * a + b1) + b2


def hand_target():
    # transition 0: s'=2: mu'(2) = tanh(1 * relu(0.8)) = tanh(0.8); Q'(2, tanh .8) = 2 relu(1.6 + .3 tanh .8 + .1) - .1
    a0 = np.tanh(0.8)
    y0 = 1.0 + 0.9 * (2.0 * (1.6 + 0.3 * a0 + 0.1) - 0.1)
    # transition 1 terminated: no bootstrap
    y1 = -0.5
    return np.array([y0, y1])


@pytest.fixture(scope="module")
def setup():
    learner = Learner(TINY, 1, 1)
    state = set_params(learner, learner.init(0), ACTOR, CRITIC, ACTOR_T, CRITIC_T)
    return learner, state


@pytest.mark.parametrize("jit", [False, True])
def test_critic_target_matches_hand_computation(setup, jit):
    learner, state = setup
    f = lambda s, b: critic_target(learner.actor, learner.critic, s, b, TINY.gamma)  # noqa: E731
    y = (jax.jit(f) if jit else f)(state, BATCH)
    np.testing.assert_allclose(np.asarray(y), hand_target(), rtol=1e-6)
    # and against the generic formula with our reference forward pass
    y0 = 1.0 + 0.9 * q(CRITIC_T, 2.0, mu(ACTOR_T, 2.0))
    assert y0 == pytest.approx(hand_target()[0], rel=1e-9)


@pytest.mark.parametrize("jit", [False, True])
def test_critic_loss_matches_hand_computation(setup, jit):
    learner, state = setup
    y = jnp.asarray(hand_target(), jnp.float32)
    f = lambda p: critic_loss(learner.critic, p, state.critic, BATCH, y)[0]  # noqa: E731
    loss = (jax.jit(f) if jit else f)(state.critic["params"])
    # Q(1, .5) = 1.5 relu(1 - .25 + .2) + .05 = 1.475 ; Q(-2, -1) = 1.5 relu(-2 + .5 + .2) + .05 = 0.05
    q_hand = np.array([1.5 * 0.95 + 0.05, 0.05])
    expected = np.mean((q_hand - hand_target()) ** 2)
    assert float(loss) == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize("jit", [False, True])
def test_actor_loss_matches_hand_computation(setup, jit):
    learner, state = setup
    f = lambda p: actor_loss(learner.actor, learner.critic, p, state.actor, state.critic, BATCH.obs)[0]  # noqa: E731
    loss = (jax.jit(f) if jit else f)(state.actor["params"])
    # mu(1) = tanh(2 * .6 - .3) = tanh(.9); mu(-2) = tanh(2 * relu(-.9) - .3) = tanh(-.3)
    q0 = 1.5 * relu(1.0 - 0.5 * np.tanh(0.9) + 0.2) + 0.05
    q1 = 1.5 * relu(-2.0 - 0.5 * np.tanh(-0.3) + 0.2) + 0.05
    assert float(loss) == pytest.approx(-(q0 + q1) / 2, rel=1e-5)


def numeric_grad(f, x, eps=1e-6):
    g = np.zeros(len(x))
    for i in range(len(x)):
        hi, lo = list(x), list(x)
        hi[i] += eps
        lo[i] -= eps
        g[i] = (f(hi) - f(lo)) / (2 * eps)
    return g


@pytest.mark.parametrize("jit", [False, True])
def test_one_update_moves_params_like_adam_and_soft_updates_targets(setup, jit):
    """Adam's first step moves each parameter by -lr * sign(grad); targets become tau*new + (1-tau)*old."""
    learner, state = setup
    y = hand_target()
    s, a = np.array([1.0, -2.0]), np.array([0.5, -1.0])

    def closs(w):
        return np.mean([(q(w, s[i], a[i]) - y[i]) ** 2 for i in range(2)])

    g_critic = numeric_grad(closs, list(CRITIC))
    batches = jax.tree_util.tree_map(lambda x: x[None], BATCH)
    fn = learner.update if jit else (lambda st, b: update_many(st, b, **_static(learner)))
    state2 = jax.tree_util.tree_map(jnp.array, state)  # update donates its input
    new, metrics = fn(state2, batches)
    p = new.critic["params"]
    got = np.array(
        [
            p["hidden_0"]["kernel"][0, 0],
            p["hidden_0"]["kernel"][1, 0],
            p["hidden_0"]["bias"][0],
            p["out"]["kernel"][0, 0],
            p["out"]["bias"][0],
        ]
    )
    expected = np.array(CRITIC) - TINY.critic_lr * np.sign(g_critic)
    np.testing.assert_allclose(got, expected, atol=1e-6)
    assert float(metrics.critic_loss) == pytest.approx(closs(list(CRITIC)), rel=1e-5)

    # the actor step uses the critic after its update
    new_critic = tuple(got)

    def aloss(w):
        return -np.mean([q(new_critic, si, mu(w, si)) for si in s])

    g_actor = numeric_grad(aloss, list(ACTOR))
    pa = new.actor["params"]
    got_a = np.array(
        [
            pa["hidden_0"]["kernel"][0, 0],
            pa["hidden_0"]["bias"][0],
            pa["out"]["kernel"][0, 0],
            pa["out"]["bias"][0],
        ]
    )
    expected_a = np.array(ACTOR) - TINY.actor_lr * np.sign(g_actor) * (np.abs(g_actor) > 1e-9)
    np.testing.assert_allclose(got_a, expected_a, atol=1e-6)

    # soft update: target = tau * online_new + (1 - tau) * target_old
    tc = new.critic_target["params"]["hidden_0"]["kernel"][0, 0]
    assert float(tc) == pytest.approx(TINY.tau * got[0] + (1 - TINY.tau) * CRITIC_T[0], rel=1e-6)
    ta = new.actor_target["params"]["out"]["kernel"][0, 0]
    assert float(ta) == pytest.approx(TINY.tau * got_a[2] + (1 - TINY.tau) * ACTOR_T[2], rel=1e-6)
    assert int(new.step) == 1


def _static(learner: Learner) -> dict:
    return dict(
        actor=learner.actor,
        critic=learner.critic,
        actor_tx=learner.actor_tx,
        critic_tx=learner.critic_tx,
        hp=learner.hp,
    )


def random_batches(k: int, b: int, obs_dim: int, act_dim: int, seed: int = 0) -> Batch:
    rng = np.random.default_rng(seed)
    return Batch(
        obs=jnp.asarray(rng.normal(size=(k, b, obs_dim)), jnp.float32),
        action=jnp.asarray(rng.uniform(-1, 1, size=(k, b, act_dim)), jnp.float32),
        reward=jnp.asarray(rng.normal(size=(k, b)), jnp.float32),
        next_obs=jnp.asarray(rng.normal(size=(k, b, obs_dim)), jnp.float32),
        terminated=jnp.asarray(rng.random((k, b)) < 0.1, jnp.float32),
    )


@pytest.mark.parametrize("batch_norm", [False, True])
def test_k_fused_steps_equal_k_single_steps(batch_norm):
    cfg = Config(
        actor_hidden=(16, 16),
        critic_hidden=(16, 16),
        batch_size=8,
        batch_norm=batch_norm,
        critic_action_layer=1 if batch_norm else 0,
        critic_weight_decay=1e-2 if batch_norm else 0.0,
    )
    learner = Learner(cfg, 3, 2)
    batches = random_batches(5, 8, 3, 2)
    fused, _ = learner.update(learner.init(1), batches)
    single = learner.init(1)
    for i in range(5):
        single, _ = learner.update(single, jax.tree_util.tree_map(lambda x, i=i: x[i : i + 1], batches))
    for a, b in zip(jax.tree_util.tree_leaves(fused), jax.tree_util.tree_leaves(single), strict=True):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-6)
    assert int(fused.step) == 5


@pytest.mark.parametrize("noise", ["ou", "gaussian"])
def test_update_and_act_equals_update_then_act(noise):
    cfg = Config(actor_hidden=(16, 16), critic_hidden=(16, 16), batch_size=8, noise=noise, noise_sigma=0.3)
    learner = Learner(cfg, 3, 2)
    batches = random_batches(2, 8, 3, 2)
    obs = np.array([0.3, -1.0, 2.0], np.float32)
    state = learner.init(3)
    state = state.replace(noise=jnp.array([0.5, -0.2]))  # a running OU process
    fused_state, fused_m, fused_a = learner.update_and_act(state, batches, obs)
    state = learner.init(3).replace(noise=jnp.array([0.5, -0.2]))
    state, m = learner.update(state, batches)
    a, noise_state, key = learner.act(state.actor, state.explore, obs, state.noise, state.key)
    np.testing.assert_allclose(np.asarray(fused_a), np.asarray(a), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(np.asarray(fused_state.noise), np.asarray(noise_state), rtol=1e-6, atol=1e-7)
    np.testing.assert_array_equal(np.asarray(fused_state.key), np.asarray(key))
    for x, y in zip(
        jax.tree_util.tree_leaves(fused_state.actor), jax.tree_util.tree_leaves(state.actor), strict=True
    ):
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(np.asarray(fused_m), np.asarray(m), rtol=1e-6)
    assert not np.allclose(np.asarray(a), np.asarray(learner.act_greedy(state.actor, obs[None])[0]))  # noisy


def test_policy_delay_updates_actor_every_other_step():
    cfg = Config(actor_hidden=(8,), critic_hidden=(8,), batch_size=4, policy_delay=2)
    learner = Learner(cfg, 2, 1)
    s0 = learner.init(0)
    actor0 = jax.tree_util.tree_map(np.asarray, s0.actor)
    b = random_batches(1, 4, 2, 1)
    s1, _ = learner.update(s0, b)  # step 1: critic only
    for x, y in zip(jax.tree_util.tree_leaves(actor0), jax.tree_util.tree_leaves(s1.actor), strict=True):
        np.testing.assert_array_equal(x, np.asarray(y))
    actor1 = jax.tree_util.tree_map(np.asarray, s1.actor)
    s2, _ = learner.update(s1, b)  # step 2: actor too
    changed = [
        not np.array_equal(x, np.asarray(y))
        for x, y in zip(jax.tree_util.tree_leaves(actor1), jax.tree_util.tree_leaves(s2.actor), strict=True)
    ]
    assert all(changed)


def test_truncation_bootstraps_termination_does_not(setup):
    learner, state = setup
    bootstrapped = BATCH._replace(terminated=jnp.array([0.0, 0.0]))
    stopped = BATCH._replace(terminated=jnp.array([1.0, 1.0]))
    y_boot = np.asarray(critic_target(learner.actor, learner.critic, state, bootstrapped, 0.9))
    y_stop = np.asarray(critic_target(learner.actor, learner.critic, state, stopped, 0.9))
    np.testing.assert_allclose(y_stop, np.asarray(BATCH.reward))
    q_next1 = q(CRITIC_T, 0.5, mu(ACTOR_T, 0.5))
    assert y_boot[1] == pytest.approx(-0.5 + 0.9 * q_next1, rel=1e-5)


def test_critic_weight_decay_touches_kernels_only():
    cfg = Config(actor_hidden=(4,), critic_hidden=(4,), critic_weight_decay=0.5, critic_lr=1e-3)
    learner = Learner(cfg, 2, 1)
    params = learner.init(0).critic["params"]
    zeros = jax.tree_util.tree_map(jnp.zeros_like, params)
    upd, _ = learner.critic_tx.update(zeros, learner.critic_tx.init(params), params)
    # with zero loss gradient, the only gradient is wd * w: Adam's first step is -lr * sign(w) for kernels
    k = np.asarray(upd["hidden_0"]["kernel"])
    np.testing.assert_allclose(k, -1e-3 * np.sign(np.asarray(params["hidden_0"]["kernel"])), atol=1e-8)
    np.testing.assert_array_equal(np.asarray(upd["hidden_0"]["bias"]), 0.0)
