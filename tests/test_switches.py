"""DDPG's stability switches (TD3's twin critics and target smoothing, n-step returns, observation normalization,
adaptive parameter noise, CrossQ's critic): their maths against hand-computed numbers, exact resume with each, and learning."""

from __future__ import annotations

import csv
import importlib
import json
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import serialization
from small import SMALL_BASE
from test_learner import mu, q  # noqa: E402 - the reference forward passes

from ddpgx import load_policy, preset_config, train
from ddpgx import noise as noise_lib
from ddpgx.config import Config
from ddpgx.learner import (
    PARAM_NOISE_ALPHA,
    Batch,
    Learner,
    actor_loss,
    critic_loss,
    critic_target,
    smoothing_noise,
)
from ddpgx.obsnorm import EPS, RunningStats
from ddpgx.replay import ReplayBuffer
from ddpgx.runfiles import load_params
from ddpgx.train import Interrupted

TWIN = Config(
    actor_hidden=(1,),
    critic_hidden=(1,),
    critic_action_layer=0,
    gamma=0.9,
    tau=0.1,
    batch_size=2,
    twin_critic=True,
)
ACTOR_T = (0.4, 0.0, 1.0, 0.0)  # a = tanh(w2 relu(w1 s + b1) + b2)
Q0_T = (0.8, 0.3, 0.1, 2.0, -0.1)  # q = w2 relu(ws s + wa a + b1) + b2
Q1_T = (-0.5, 0.0, 2.0, 1.0, 0.0)
Q0 = (1.0, -0.5, 0.2, 1.5, 0.05)
Q1 = (-0.5, 1.0, 0.0, 2.0, 0.1)
BATCH = Batch(
    obs=jnp.array([[1.0], [-2.0]]),
    action=jnp.array([[0.5], [-1.0]]),
    reward=jnp.array([1.0, -0.5]),
    next_obs=jnp.array([[2.0], [0.5]]),
    terminated=jnp.array([0.0, 0.0]),
)


def actor_vars(w):
    w1, b1, w2, b2 = w
    return {"params": {"hidden_0": {"kernel": jnp.array([[w1]]), "bias": jnp.array([b1])},
                       "out": {"kernel": jnp.array([[w2]]), "bias": jnp.array([b2])}}}  # fmt: skip


def critic_params(w):
    ws, wa, b1, w2, b2 = w
    return {"hidden_0": {"kernel": jnp.array([[ws], [wa]]), "bias": jnp.array([b1])},
            "out": {"kernel": jnp.array([[w2]]), "bias": jnp.array([b2])}}  # fmt: skip


@pytest.fixture(scope="module")
def twin():
    learner = Learner(TWIN, 1, 1)
    state = learner.init(0).replace(
        actor=actor_vars((0.5, 0.1, 2.0, -0.3)),
        actor_target=actor_vars(ACTOR_T),
        critic={"params": {"q0": critic_params(Q0), "q1": critic_params(Q1)}},
        critic_target={"params": {"q0": critic_params(Q0_T), "q1": critic_params(Q1_T)}},
    )
    return learner, state


@pytest.mark.parametrize("jit", [False, True])
def test_twin_critic_target_takes_the_smaller_target_q_and_smoothing_shifts_the_target_action(twin, jit):
    learner, state = twin
    s2, r = np.array([2.0, 0.5]), np.array([1.0, -0.5])

    def hand(eps):
        a = np.clip(mu(ACTOR_T, s2) + eps, -1.0, 1.0)
        return r + 0.9 * np.minimum(q(Q0_T, s2, a), q(Q1_T, s2, a))

    f = lambda st, b, e: critic_target(learner.actor, learner.critic, st, b, TWIN.gamma, e)  # noqa: E731
    f = jax.jit(f) if jit else f
    np.testing.assert_allclose(np.asarray(f(state, BATCH, None)), hand(0.0), rtol=1e-6, atol=1e-6)
    # the min is taken per transition: here Q'_1 is smaller for the first, Q'_0 for the second
    a = mu(ACTOR_T, s2)
    assert q(Q1_T, s2[0], a[0]) < q(Q0_T, s2[0], a[0]) and q(Q0_T, s2[1], a[1]) < q(Q1_T, s2[1], a[1])
    eps = np.array([[0.5], [-0.5]], np.float32)  # mu'(2) + 0.5 > 1 is clipped to the action bound
    assert mu(ACTOR_T, 2.0) + 0.5 > 1.0
    np.testing.assert_allclose(
        np.asarray(f(state, BATCH, jnp.asarray(eps))), hand(eps[:, 0]), rtol=1e-6, atol=1e-6
    )


@pytest.mark.parametrize("jit", [False, True])
def test_twin_critic_losses_add_up_and_the_actor_follows_the_first_critic(twin, jit):
    learner, state = twin
    y = jnp.array([1.0, 2.0])
    s, a = np.array([1.0, -2.0]), np.array([0.5, -1.0])
    fc = lambda p: critic_loss(learner.critic, p, state.critic, BATCH, y)[0]  # noqa: E731
    expected = np.mean((q(Q0, s, a) - [1.0, 2.0]) ** 2) + np.mean((q(Q1, s, a) - [1.0, 2.0]) ** 2)
    assert float((jax.jit(fc) if jit else fc)(state.critic["params"])) == pytest.approx(expected, rel=1e-5)
    fa = lambda p: actor_loss(learner.actor, learner.critic, p, state.actor, state.critic, BATCH.obs)[0]  # noqa: E731
    a_pi = mu((0.5, 0.1, 2.0, -0.3), s)
    assert float((jax.jit(fa) if jit else fa)(state.actor["params"])) == pytest.approx(
        -np.mean(q(Q0, s, a_pi)), rel=1e-5
    )


@pytest.mark.parametrize("jit", [False, True])
def test_actor_q_min_follows_the_smaller_of_the_twin_critics_per_transition(twin, jit):
    """CrossQ's actor (--actor-q min) maximizes min(Q_0, Q_1), TD3's Q_0."""
    learner, state = twin
    s = np.array([1.0, -2.0])
    a_pi = mu((0.5, 0.1, 2.0, -0.3), s)
    q0, q1 = q(Q0, s, a_pi), q(Q1, s, a_pi)
    assert (q1 < q0).any()  # the two differ, so the test tells min from Q_0
    fa = lambda p: actor_loss(learner.actor, learner.critic, p, state.actor, state.critic, BATCH.obs, 0.0, True,  # noqa: E731
                              "min")[0]  # fmt: skip
    got = float((jax.jit(fa) if jit else fa)(state.actor["params"]))
    assert got == pytest.approx(-np.mean(np.minimum(q0, q1)), rel=1e-5)
    assert got != pytest.approx(-np.mean(q0), rel=1e-3)


def test_smoothing_noise_is_a_clipped_gaussian():
    x = np.asarray(smoothing_noise(jax.random.PRNGKey(0), (200_000,), 0.2, 0.5))
    assert x.min() == pytest.approx(-0.5) and x.max() == pytest.approx(0.5)
    assert abs(x.mean()) < 0.003
    # std of N(0, 0.2^2) clipped at 2.5 sigma: sigma * sqrt(1 - 2 phi(2.5) 2.5 / (2 Phi(2.5) - 1) + tails)
    from scipy.stats import truncnorm

    inside = truncnorm(-2.5, 2.5, scale=0.2)
    p_out = 2 * (1 - 0.5 * (1 + __import__("math").erf(2.5 / 2**0.5)))
    var = (1 - p_out) * inside.var() + p_out * 0.5**2
    assert x.std() == pytest.approx(var**0.5, rel=0.01)
    assert np.mean(np.abs(x) == np.float32(0.5)) == pytest.approx(p_out, abs=0.001)


def test_n_step_targets_on_a_hand_built_episode():
    """Episode A (4 steps) ends in a termination, episode B (3 steps) by a time limit, episode C is under way."""
    buf = ReplayBuffer(100, 1, 1)
    rewards = {"A": [1.0, 2.0, 3.0, 4.0], "B": [10.0, 20.0, 30.0], "C": [100.0, 200.0]}
    obs = {"A": [0, 1, 2, 3, 4], "B": [10, 11, 12, 13], "C": [20, 21, 22]}
    for ep, rs in rewards.items():
        for t, rew in enumerate(rs):
            last = t == len(rs) - 1
            terminated = ep == "A" and last
            end = last and ep != "C"
            buf.add(np.array([obs[ep][t]]), np.zeros(1), rew, np.array([obs[ep][t + 1]]), terminated, end)
    g = 0.5
    starts = (
        {("A", t): t for t in range(4)}
        | {("B", t): 5 + t for t in range(3)}
        | {("C", t): 9 + t for t in range(2)}
    )
    b = buf.gather_n_step(np.array(list(starts.values())), 3, g)
    expected = {  # (reward sum, next obs, terminated, discount), written out by hand
        ("A", 0): (1 + g * 2 + g * g * 3, 3, 0, g**3),
        ("A", 1): (2 + g * 3 + g * g * 4, 4, 1, g**3),  # the termination is the window's last step
        ("A", 2): (3 + g * 4, 4, 1, g**2),  # cut by the termination: no bootstrap
        ("A", 3): (4, 4, 1, g),
        ("B", 0): (10 + g * 20 + g * g * 30, 13, 0, g**3),
        ("B", 1): (20 + g * 30, 13, 0, g**2),  # the time limit: bootstraps from B's last observation
        ("B", 2): (30, 13, 0, g),
        ("C", 0): (100 + g * 200, 22, 0, g**2),  # the episode being collected: its latest observation
        ("C", 1): (200, 22, 0, g),
    }
    for i, key in enumerate(starts):
        r, nxt, term, disc = expected[key]
        assert (b.reward[i], b.next_obs[i, 0], b.terminated[i], b.discount[i]) == pytest.approx(
            (r, nxt, term, disc)
        ), key
    # n = 1 is DDPG's one-step transition
    one = buf.gather_n_step(np.array(list(starts.values())), 1, g)
    ref = buf.gather(np.array(list(starts.values())))
    for x, y in zip(one[:5], ref[:5], strict=True):
        np.testing.assert_array_equal(x, y)
    # and the learner's target uses the batch's own discount
    learner = Learner(Config(actor_hidden=(4,), critic_hidden=(4,)), 1, 1)
    state = learner.init(0)
    bj = Batch(*(jnp.asarray(x) for x in b))
    y = critic_target(learner.actor, learner.critic, state, bj, 0.99)
    q_next = learner.critic.apply(
        state.critic_target, bj.next_obs, learner.actor.apply(state.actor_target, bj.next_obs)
    )
    np.testing.assert_allclose(
        np.asarray(y), b.reward + b.discount * (1 - b.terminated) * np.asarray(q_next), rtol=1e-6
    )


def test_running_statistics_equal_numpys():
    rng = np.random.default_rng(0)
    x = rng.normal([3.0, -100.0, 0.0], [0.1, 50.0, 1e-3], size=(5000, 3)).astype(np.float32)
    st = RunningStats(3)
    for row in x:
        st.push(row)
    np.testing.assert_allclose(st.mean, x.astype(np.float64).mean(0), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(st.var, x.astype(np.float64).var(0), rtol=1e-9)
    mean, std = st.mean_std()
    np.testing.assert_array_equal(std, np.sqrt(x.astype(np.float64).var(0) + EPS).astype(np.float32))
    st2 = RunningStats(3)
    st2.load_state(json.loads(json.dumps(st.state())))  # through JSON, as in a checkpoint: the same bits
    assert st2.count == st.count and (st2.mean == st.mean).all() and (st2.m2 == st.m2).all()


SMALL = dict(
    **SMALL_BASE, total_steps=2_000, learning_starts=300, batch_size=32, buffer_size=5_000, update_every=2,
    eval_every=1_000, eval_episodes=2, log_every=200, checkpoint_every=600,
)  # fmt: skip


@pytest.mark.slow
def test_obs_norm_statistics_are_those_of_every_observation_and_serve_acting_learning_and_load_policy(
    tmp_path, monkeypatch
):
    run = tmp_path / "norm"
    train(preset_config("pendulum", "Pendulum-v1", seed=1, run_dir=str(run), obs_norm=True, **SMALL))
    ck = sorted((run / "checkpoints").glob("step_*"))[-1]
    with np.load(
        ck / "replay.npz"
    ) as z:  # every observation of the run is stored once (the buffer never wrapped)
        seen = z["obs"][: int(z["filled"])].astype(np.float64)
    manifest = json.loads((ck / "manifest.json").read_text())
    assert manifest["obs_stats"]["count"] == len(seen)
    np.testing.assert_allclose(manifest["obs_stats"]["mean"], seen.mean(0), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(np.asarray(manifest["obs_stats"]["m2"]) / len(seen), seen.var(0), rtol=1e-9)
    want_mean = seen.mean(0).astype(np.float32)
    want_std = np.sqrt(seen.var(0) + EPS).astype(np.float32)
    state = serialization.msgpack_restore((ck / "state.msgpack").read_bytes())
    for net in ("actor", "critic", "actor_target", "critic_target"):  # one set of statistics, everywhere
        np.testing.assert_allclose(state[net]["obs_stats"]["mean"], want_mean, rtol=1e-6)
        np.testing.assert_allclose(state[net]["obs_stats"]["std"], want_std, rtol=1e-6)
    final = load_params(run / "final.msgpack")["actor"]["obs_stats"]
    np.testing.assert_allclose(final["mean"], want_mean, rtol=1e-6)
    # mid-run, the networks hold the statistics written at the last multiple of OBS_STATS_EVERY (forced to 70 in
    # the run below): at the checkpoint at step 1800, those of step 1750, i.e. 9 resets + 1750 steps' observations
    run70 = tmp_path / "every70"
    monkeypatch.setattr(
        importlib.import_module("ddpgx.pyengine"), "OBS_STATS_EVERY", 70
    )  # the module, not train()
    train(preset_config("pendulum", "Pendulum-v1", seed=1, run_dir=str(run70), obs_norm=True, **SMALL))
    mid = run70 / "checkpoints" / "step_000000001800"
    with np.load(mid / "replay.npz") as z:
        upto = z["obs"][: int(z["filled"])].astype(np.float64)
    mid_state = serialization.msgpack_restore((mid / "state.msgpack").read_bytes())
    assert len(upto) == 9 * 201
    for net in ("actor", "critic_target"):
        np.testing.assert_allclose(mid_state[net]["obs_stats"]["mean"], upto[:1759].mean(0), rtol=1e-6)
        np.testing.assert_allclose(
            mid_state[net]["obs_stats"]["std"], np.sqrt(upto[:1759].var(0) + EPS), rtol=1e-6
        )
    assert not np.allclose(mid_state["actor"]["obs_stats"]["mean"], upto[:1760].mean(0), rtol=1e-6, atol=0)
    # the run's end writes them, whatever the schedule: final.msgpack has all of them
    with np.load(sorted((run70 / "checkpoints").glob("step_*"))[-1] / "replay.npz") as z:
        all70 = z["obs"][: int(z["filled"])].astype(np.float64)
    final70 = load_params(run70 / "final.msgpack")["actor"]["obs_stats"]
    np.testing.assert_allclose(final70["mean"], all70.mean(0), rtol=1e-6)
    policy = load_policy(run)
    np.testing.assert_allclose(policy.variables["obs_stats"]["std"], want_std, rtol=1e-6)
    # the policy normalizes: by hand, the same actor on (obs - mean) / std clipped at 5
    obs = np.array([[0.3, -0.9, 4.0], [1.0, 0.0, -8.0]], np.float32)
    v = policy.variables["params"]
    x = np.clip((obs - final["mean"]) / final["std"], -5, 5)
    for i in range(2):
        x = np.maximum(x @ v[f"hidden_{i}"]["kernel"] + v[f"hidden_{i}"]["bias"], 0)
    np.testing.assert_allclose(
        policy.normalized(obs), np.tanh(x @ v["out"]["kernel"] + v["out"]["bias"]), atol=1e-5
    )


def test_parameter_noise_adapts_by_exactly_alpha_and_perturbs_only_the_copy():
    cfg = Config(actor_hidden=(16, 16), critic_hidden=(16,), noise="param", param_noise_sigma=0.05)
    learner = Learner(cfg, 3, 2)
    state = learner.init(0)
    assert "norm_0" in state.actor["params"]  # LayerNorm in the actor, as Plappert et al. recommend
    actor_before = jax.tree_util.tree_map(np.array, state.actor)
    state = learner.resample_param_noise(state)
    pert, act = state.explore["params"], state.actor["params"]
    jax.tree_util.tree_map(
        np.testing.assert_array_equal, actor_before, jax.tree_util.tree_map(np.array, state.actor)
    )
    for layer in ("hidden_0", "hidden_1", "out"):
        d = np.asarray(pert[layer]["kernel"] - act[layer]["kernel"])
        assert d.std() == pytest.approx(0.05, rel=0.25) and abs(d.mean()) < 0.02
    for name in ("scale", "bias"):  # LayerNorm's own parameters are not perturbed
        np.testing.assert_array_equal(pert["norm_0"][name], act["norm_0"][name])
    obs = jnp.asarray(np.random.default_rng(0).normal(size=(64, 3)), jnp.float32)
    sigma = np.float32(state.explore["sigma"])
    grown, d = jax.jit(partial_adapt(learner, delta=10.0))(state, obs)  # distance far below delta: grows
    assert float(d) < 10.0 and np.float32(grown.explore["sigma"]) == np.float32(
        sigma * np.float32(PARAM_NOISE_ALPHA)
    )
    shrunk, d = jax.jit(partial_adapt(learner, delta=1e-6))(grown, obs)  # far above: shrinks
    assert float(d) > 1e-6
    assert np.float32(shrunk.explore["sigma"]) == np.float32(
        grown.explore["sigma"] / np.float32(PARAM_NOISE_ALPHA)
    )
    # the measured distance is that of a perturbation with the current sigma, computed by hand from it
    assert noise_lib.adapt_sigma(jnp.float32(1.0), jnp.float32(0.3), 0.2, 1.01) == pytest.approx(1 / 1.01)
    assert noise_lib.adapt_sigma(jnp.float32(1.0), jnp.float32(0.1), 0.2, 1.01) == pytest.approx(1.01)


def partial_adapt(learner, delta):
    from functools import partial

    from ddpgx.learner import adapt_param_noise

    return partial(adapt_param_noise, learner.actor, delta)


SWITCHES = {
    "twin_critic": dict(twin_critic=True),
    "target_noise": dict(target_noise=0.2, target_noise_clip=0.5),
    "n_step": dict(n_step=3),
    "obs_norm": dict(obs_norm=True),
    "param_noise": dict(noise="param", param_noise_interval=25),
    # CrossQ's critic (renorm past its warm-up within the run, joint pass, no targets, Adam beta1 0.5)
    "crossq": dict(
        batch_renorm=True, joint_critic_pass=True, target_networks=False, adam_b1=0.5, renorm_warmup=500
    ),
    "policy_avg": dict(policy_avg=0.01),
}


def _without_wall(data: bytes) -> list[list[str]]:
    """A CSV's rows without its wall_s column (found by name: eval.csv has mean_length after it)."""
    rows = [ln.split(",") for ln in data.decode().splitlines()]
    k = rows[0].index("wall_s")
    return [r[:k] + r[k + 1 :] for r in rows]


def _files(run: Path) -> dict[str, bytes]:
    return {n: (run / n).read_bytes() for n in ("final.msgpack", "episodes.csv", "eval.csv")}


@pytest.mark.parametrize("switch", list(SWITCHES))
@pytest.mark.slow
def test_stopped_and_resumed_with_each_switch_is_bitwise_the_uninterrupted_run(tmp_path, switch):
    cfg = preset_config("pendulum", "Pendulum-v1", seed=3, **SMALL, **SWITCHES[switch])
    ref = tmp_path / "ref"
    train(cfg.replace(run_dir=str(ref)))
    run = tmp_path / "stopped"
    episodes = iter(range(100))
    with pytest.raises(Interrupted):  # stops at the 5th episode end (step 1000), after updates have run
        train(cfg.replace(run_dir=str(run)), stop=lambda: next(episodes) >= 4)
    assert not (run / "final.msgpack").exists()
    train(cfg.replace(run_dir=str(run)), resume=True)
    ra, rb = _files(ref), _files(run)
    for name in ra:
        if name.endswith(".csv"):  # the wall-clock column differs; everything else is the same bits
            assert _without_wall(ra[name]) == _without_wall(rb[name]), name
        else:
            assert ra[name] == rb[name], name


@pytest.mark.parametrize("switch", list(SWITCHES))
@pytest.mark.slow
def test_pendulum_still_learns_with_each_switch(tmp_path, switch):
    cfg = preset_config(
        "pendulum", "Pendulum-v1", seed=0, total_steps=12_000, target_return=-200.0, run_dir=str(tmp_path / "r"),
        progress=False, plot=False, tensorboard=False, **SWITCHES[switch],
    )  # fmt: skip
    res = train(cfg)
    assert res.final_eval_mean >= -250.0, (switch, res.final_eval_mean, res.steps)


def random_batches(rng: np.random.Generator, k: int, b: int) -> Batch:
    """K batches of b transitions of a 3-d observation and a 2-d action, stacked on axis 0."""
    return Batch(
        obs=jnp.asarray(rng.normal(size=(k, b, 3)), jnp.float32),
        action=jnp.asarray(rng.uniform(-1, 1, (k, b, 2)), jnp.float32),
        reward=jnp.asarray(rng.normal(size=(k, b)), jnp.float32),
        next_obs=jnp.asarray(rng.normal(size=(k, b, 3)), jnp.float32),
        terminated=jnp.zeros((k, b), jnp.float32),
    )


def test_targets_move_once_per_call_with_target_update_call():
    """baselines' HER: K gradient steps, then one soft update of the targets towards the online networks."""
    k, b = 3, 8
    batches = random_batches(np.random.default_rng(0), k, b)
    base = dict(actor_hidden=(8,), critic_hidden=(8,), tau=0.1, batch_size=b, gradient_steps=k)  # one unit
    per_call, per_step = Learner(Config(**base, target_update="call"), 3, 2), Learner(Config(**base), 3, 2)
    s0 = per_call.init(0)
    first_target = jax.tree_util.tree_map(np.array, s0.actor_target)
    s_call, _ = per_call.update(per_call.init(0), batches)
    s_step, _ = per_step.update(per_step.init(0), batches)
    # the online networks took the same K steps either way (the targets differ only from the second step on)
    want = jax.tree_util.tree_map(lambda o, t: 0.1 * np.asarray(o) + 0.9 * t, s_call.actor, first_target)
    jax.tree_util.tree_map(lambda a, w: np.testing.assert_allclose(np.asarray(a), w, rtol=1e-6, atol=1e-7),
                           s_call.actor_target, want)  # fmt: skip
    diff = jax.tree_util.tree_map(lambda a, c: float(np.max(np.abs(np.asarray(a) - np.asarray(c)))),
                                  s_step.actor_target, s_call.actor_target)  # fmt: skip
    assert max(jax.tree_util.tree_leaves(diff)) > 1e-6  # per step is another schedule


def test_a_call_of_several_units_moves_the_targets_once_per_unit_as_separate_calls_would():
    """An engine fuses the units due together into one call (N envs > update_every, an actors' cycle): the
    targets must move after each unit's gradient steps, as they do when each unit is its own call."""
    units, k, b = 3, 2, 8
    batches = random_batches(np.random.default_rng(1), units * k, b)
    learner = Learner(Config(actor_hidden=(8,), critic_hidden=(8,), tau=0.1, batch_size=b, gradient_steps=k,
                             update_every=5, target_update="call"), 3, 2)  # fmt: skip
    fused, _ = learner.update(learner.init(0), batches)
    one_by_one = learner.init(0)
    for u in range(units):
        part = jax.tree_util.tree_map(lambda x, u=u: x[u * k : (u + 1) * k], batches)
        one_by_one, _ = learner.update(one_by_one, part)
    for a, c in zip(jax.tree_util.tree_leaves(fused), jax.tree_util.tree_leaves(one_by_one), strict=True):
        np.testing.assert_allclose(np.asarray(a), np.asarray(c), rtol=1e-5, atol=1e-6)
    # before, the fused call moved the targets once, a single Polyak step of 0.1 towards the online critic
    t0 = np.asarray(jax.tree_util.tree_leaves(learner.init(0).critic_target)[0])
    once = 0.1 * np.asarray(jax.tree_util.tree_leaves(fused.critic)[0]) + 0.9 * t0
    assert np.abs(np.asarray(jax.tree_util.tree_leaves(fused.critic_target)[0]) - once).max() > 1e-4


@pytest.mark.parametrize("delay,every", [(2, 1), (3, 2)])
@pytest.mark.slow
def test_logged_actor_loss_with_policy_delay_is_that_of_the_last_call_that_updated_the_actor(
    tmp_path, delay, every
):
    """A call whose critic steps include no actor step reports nan; the log keeps the last real actor loss. An
    off-by-one in which calls update the actor would put nan rows into train.csv."""
    run = tmp_path / "delay"
    over = {**SMALL, "total_steps": 1_400, "update_every": every, "log_every": 100}
    train(preset_config("pendulum", "Pendulum-v1", seed=0, run_dir=str(run), policy_delay=delay, **over))
    with open(run / "train.csv") as f:
        rows = [r for r in csv.DictReader(f) if int(r["step"]) > SMALL["learning_starts"]]
    losses = [float(r["actor_loss"]) for r in rows]
    assert len(losses) == 11 and np.isfinite(losses).all(), losses
    assert len(set(losses)) == len(losses)  # a new actor loss at every log: the actor keeps updating


@pytest.mark.parametrize("preset", ["td3-paper", "her8", "crossq"])
@pytest.mark.slow
def test_each_new_preset_trains_and_resumes_bitwise(tmp_path, preset):
    """A few hundred steps of the preset (networks shrunk), stopped at its first checkpoint and resumed, end with
    the bits of the uninterrupted run."""
    from ddpgx.train import Interrupted

    env = "goal_envs:PointGoal-v0" if preset == "her8" else "Pendulum-v1"
    small = dict(actor_hidden=(32, 32), critic_hidden=(32, 32), total_steps=1_600, learning_starts=400,
                 batch_size=64, update_every=200 if preset == "her8" else 1, eval_every=800, eval_episodes=2,
                 checkpoint_every=400, progress=False, plot=False, tensorboard=False)  # fmt: skip
    if preset == "crossq":  # past batch renormalization's warm-up within the run
        small["renorm_warmup"] = 300
    ref = train(preset_config(preset, env, run_dir=str(tmp_path / "ref"), **small))
    cfg = preset_config(preset, env, run_dir=str(tmp_path / "cut"), **small)
    asked = []

    def stop() -> bool:
        asked.append(1)
        return len(asked) > 3

    with pytest.raises(Interrupted):
        train(cfg, stop=stop)
    res = train(cfg, resume=True)
    assert res.steps == ref.steps == 1_600
    assert (tmp_path / "ref" / "final.msgpack").read_bytes() == (
        tmp_path / "cut" / "final.msgpack"
    ).read_bytes()


def test_td3_paper_starts_with_10k_random_steps_on_halfcheetah_and_ant_only():
    assert preset_config("td3-paper", "HalfCheetah-v5").learning_starts == 10_000
    assert preset_config("td3-paper", "Ant-v5").learning_starts == 10_000
    c = preset_config("td3-paper", "Hopper-v5")
    assert c.learning_starts == 1_000 and c.batch_size == 100 and c.actor_hidden == (400, 300)
    assert (
        c.twin_critic and c.policy_delay == 2 and c.target_noise == 0.2 and c.actor_lr == c.critic_lr == 1e-3
    )


def _leaves(tree):
    return [np.asarray(x) for x in jax.tree_util.tree_leaves(tree)]


@pytest.mark.parametrize("delay", [1, 2])
def test_policy_avg_follows_the_actor_by_its_rate_after_each_actor_update_only(delay):
    from test_crossq import _batches

    base = dict(actor_hidden=(8,), critic_hidden=(8,), batch_size=16, policy_delay=delay)
    off = Learner(Config(**base), 3, 2)
    assert off.init(0).actor_avg == {} and off.update(off.init(0), _batches(1, 16))[0].actor_avg == {}
    rate = 0.25
    learner = Learner(Config(**base, policy_avg=rate), 3, 2)
    s0 = learner.init(0)
    assert all(np.array_equal(a, b) for a, b in zip(_leaves(s0.actor_avg), _leaves(s0.actor), strict=True))
    a0 = _leaves(s0.actor)
    # 3 gradient steps: the actor moves at steps 1, 2, 3 (delay 1) or at step 2 alone (delay 2)
    s = s0
    hand = [x.copy() for x in a0]
    for k in range(3):
        s, _ = learner.update(s, _batches(1, 16, seed=k))
        if (k + 1) % delay == 0:
            hand = [rate * x + (1 - rate) * h for x, h in zip(_leaves(s.actor), hand, strict=True)]
    for got, want in zip(_leaves(s.actor_avg), hand, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)
    assert not all(np.allclose(x, y) for x, y in zip(_leaves(s.actor_avg), _leaves(s.actor), strict=True))
    # the critic and the actor learn as without the switch: the same bits
    s_off = off.init(0)
    for k in range(3):
        s_off, _ = off.update(s_off, _batches(1, 16, seed=k))
    for x, y in zip(_leaves((s.actor, s.critic)), _leaves((s_off.actor, s_off.critic)), strict=True):
        assert np.array_equal(x, y)


@pytest.mark.slow
def test_policy_avg_changes_what_is_evaluated_and_kept_but_not_training(tmp_path):
    cfg = preset_config("pendulum", "Pendulum-v1", seed=5, **SMALL)
    plain, avg = tmp_path / "plain", tmp_path / "avg"
    train(cfg.replace(run_dir=str(plain)))
    train(cfg.replace(run_dir=str(avg), policy_avg=0.02))

    def rows(run, name):  # without the wall-clock column
        return _without_wall((run / name).read_bytes())

    assert rows(plain, "episodes.csv") == rows(avg, "episodes.csv")  # exploration and learning: the same
    assert rows(plain, "eval.csv") != rows(avg, "eval.csv")  # the averaged policy is what is evaluated
    p_plain, p_avg = load_params(plain / "final.msgpack"), load_params(avg / "final.msgpack")
    for x, y in zip(_leaves(p_plain["critic"]), _leaves(p_avg["critic"]), strict=True):
        assert np.array_equal(x, y)
    # final.msgpack's actor is the checkpoint's averaged actor, not its online one, and load_policy serves it
    from ddpgx import checkpoint as ckpt

    state = ckpt.load(avg, replay=False).state
    for x, y in zip(_leaves(p_avg["actor"]), _leaves(state["actor_avg"]), strict=True):
        assert np.array_equal(x, y)
    assert not all(
        np.array_equal(x, y) for x, y in zip(_leaves(p_avg["actor"]), _leaves(state["actor"]), strict=True)
    )
    for x, y in zip(_leaves(p_plain["actor"]), _leaves(state["actor"]), strict=True):
        assert np.array_equal(x, y)  # the online actor is the plain run's
    obs = np.array([[1.0, 0.0, 0.5], [0.0, 1.0, -2.0]], np.float32)
    pol = load_policy(avg)
    for x, y in zip(_leaves(pol.variables), _leaves(p_avg["actor"]), strict=True):
        assert np.array_equal(x, y)
    assert not np.allclose(pol.normalized(obs), load_policy(plain).normalized(obs))
