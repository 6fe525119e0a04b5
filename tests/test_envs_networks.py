"""Action scaling at the env boundary, and the paper preset's networks as the paper describes them."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ddpgx.envs import ActionScaler
from ddpgx.learner import Learner, build_networks
from ddpgx.networks import init_variables
from ddpgx.presets import PAPER, preset_config


def test_action_scaling_round_trip_with_asymmetric_bounds():
    s = ActionScaler(np.array([-2.0, 0.0, 10.0]), np.array([1.0, 5.0, 11.0]))
    np.testing.assert_allclose(s.to_env(np.array([-1.0, -1.0, -1.0])), [-2.0, 0.0, 10.0])
    np.testing.assert_allclose(s.to_env(np.array([1.0, 1.0, 1.0])), [1.0, 5.0, 11.0])
    np.testing.assert_allclose(s.to_env(np.array([0.0, 0.0, 0.0])), [-0.5, 2.5, 10.5])
    a = np.random.default_rng(0).uniform(-1, 1, size=(100, 3)).astype(np.float32)
    np.testing.assert_allclose(s.from_env(s.to_env(a)), a, atol=1e-6)
    # out-of-range actions are clipped to the bounds, never beyond
    np.testing.assert_allclose(s.to_env(np.array([3.0, -3.0, 1.5])), [1.0, 0.0, 11.0])


def test_pendulum_torque_maps_to_plus_minus_two():
    from ddpgx.envs import make_env, scaler_for

    env = make_env("Pendulum-v1")
    s = scaler_for(env)
    np.testing.assert_allclose(s.to_env(np.array([1.0])), [2.0])
    np.testing.assert_allclose(s.to_env(np.array([-0.5])), [-1.0])


@pytest.fixture(scope="module")
def paper_nets():
    """The networks as training starts them (numpy-drawn, see init_variables)."""
    state = Learner(PAPER, 17, 6).init(0)
    return state.actor, state.critic


@pytest.mark.parametrize("preset", ["paper", "modern"])
def test_init_variables_match_flax_init_in_structure_and_constants(preset):
    cfg = preset_config(preset, "Hopper-v5", layer_norm=preset == "modern")
    actor, critic = build_networks(cfg, 3)
    obs, act = jnp.zeros((1, 11)), jnp.zeros((1, 3))
    for net, args in ((actor, (obs,)), (critic, (obs, act))):
        ours = init_variables(net, np.random.default_rng(0), *args)
        theirs = net.init(jax.random.PRNGKey(0), *args)
        flat_ours = dict(jax.tree_util.tree_leaves_with_path(ours))
        flat_theirs = dict(jax.tree_util.tree_leaves_with_path(theirs))
        assert flat_ours.keys() == flat_theirs.keys()
        for path, v in flat_theirs.items():
            assert flat_ours[path].shape == v.shape and flat_ours[path].dtype == v.dtype
            if "hidden_" not in str(path) and "'out'" not in str(path):  # norm scales/biases, batch stats
                np.testing.assert_array_equal(flat_ours[path], np.asarray(v))
    # a seed gives the same networks every time, another seed other networks
    a0, a1, b = (Learner(cfg, 11, 3).init(s).actor["params"]["hidden_0"]["kernel"] for s in (0, 0, 1))
    np.testing.assert_array_equal(np.asarray(a0), np.asarray(a1))
    assert not np.array_equal(np.asarray(a0), np.asarray(b))


def test_paper_batch_norm_where_the_paper_puts_it(paper_nets):
    a, c = paper_nets
    # actor: state input and every hidden layer
    assert set(a["batch_stats"]) == {"norm_input", "norm_0", "norm_1"}
    # critic: state input and the layer before the action enters; not after
    assert set(c["batch_stats"]) == {"norm_input", "norm_0"}
    assert a["batch_stats"]["norm_input"]["mean"].shape == (17,)


def test_paper_action_enters_critic_at_second_layer(paper_nets):
    _, c = paper_nets
    p = c["params"]
    assert p["hidden_0"]["kernel"].shape == (17, 400)  # state only
    assert p["hidden_1"]["kernel"].shape == (400 + 6, 300)  # 400 features + action
    assert p["out"]["kernel"].shape == (300, 1)


def test_paper_init_ranges(paper_nets):
    a, c = paper_nets
    for name, fan_in in (("hidden_0", 17), ("hidden_1", 400)):
        for part in ("kernel", "bias"):
            w = np.asarray(a["params"][name][part])
            bound = 1 / np.sqrt(fan_in)
            assert np.abs(w).max() <= bound
            assert np.abs(w).max() > 0.95 * bound  # uniform fills the range
            assert w.std() == pytest.approx(bound / np.sqrt(3), rel=0.15)  # std of U[-b, b]
    w = np.asarray(c["params"]["hidden_1"]["kernel"])
    assert np.abs(w).max() <= 1 / np.sqrt(406) and np.abs(w).max() > 0.95 / np.sqrt(406)
    for net in (a, c):
        w = np.asarray(net["params"]["out"]["kernel"])
        assert np.abs(w).max() <= 3e-3 and np.abs(w).max() > 2.5e-3


def test_paper_preset_values():
    p = preset_config("paper", "HalfCheetah-v5")
    assert (p.actor_lr, p.critic_lr, p.critic_weight_decay, p.gamma, p.tau) == (1e-4, 1e-3, 1e-2, 0.99, 0.001)
    assert (p.batch_size, p.buffer_size, p.noise, p.noise_theta, p.noise_sigma) == (
        64,
        10**6,
        "ou",
        0.15,
        0.2,
    )
    assert p.actor_hidden == (400, 300) and p.critic_hidden == (400, 300) and p.batch_norm
    assert preset_config("", "Hopper-v5").preset == "crossq256"  # MuJoCo's default (tests/test_crossq.py)
    m = preset_config("", "MountainCarContinuous-v0")
    assert m.preset == "modern" and m.critic_action_layer == 0 and not m.batch_norm and m.tau == 0.005
    assert preset_config("", "Pendulum-v1").preset == "pendulum"


def test_modern_networks_have_no_norm_and_action_at_input():
    actor, critic = build_networks(preset_config("modern", "Hopper-v5"), 3)
    c = critic.init(jax.random.PRNGKey(0), jnp.zeros((1, 11)), jnp.zeros((1, 3)))
    assert "batch_stats" not in c
    assert c["params"]["hidden_0"]["kernel"].shape == (14, 256)
