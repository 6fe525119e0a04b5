"""CrossQ's switches (Bhatt et al. 2024) on DDPG: batch renormalization, the joint (s, a) / (s', mu(s')) critic pass,
no target networks and Adam's beta1, against numbers computed by hand in numpy, with and without jit."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from test_learner import BATCH  # noqa: E402 - the hand-checked batch of the update tests

from ddpgx import preset_config
from ddpgx.config import Config
from ddpgx.errors import UserError
from ddpgx.learner import Batch, Learner, actor_loss, joint_critic_loss
from ddpgx.networks import RENORM_D_MAX, RENORM_EPS, RENORM_R_MAX, BatchRenorm
from ddpgx.validate import validate

X = np.array([[1.0, -2.0], [3.0, 0.5], [-1.0, 4.0], [0.0, 1.5]], np.float32)
SCALE, BIAS = np.array([1.5, 0.5], np.float32), np.array([0.1, -0.2], np.float32)


def brn_vars(mean, var, steps):
    return {
        "params": {"scale": jnp.asarray(SCALE), "bias": jnp.asarray(BIAS)},
        "batch_stats": {
            "mean": jnp.asarray(mean, jnp.float32),
            "var": jnp.asarray(var, jnp.float32),
            "steps": jnp.asarray(steps, jnp.float32),
        },
    }


def brn_hand(x, mean, var, warm, m=0.99):
    """Ioffe 2017's batch renormalization, written out in numpy: output and the new running statistics."""
    mu_b, var_b = x.mean(0), x.var(0)
    sig_b, sig = np.sqrt(var_b + RENORM_EPS), np.sqrt(np.asarray(var) + RENORM_EPS)
    r = np.clip(sig_b / sig, 1 / RENORM_R_MAX, RENORM_R_MAX) if warm else 1.0
    d = np.clip((mu_b - mean) / sig, -RENORM_D_MAX, RENORM_D_MAX) if warm else 0.0
    out = ((x - mu_b) / sig_b * r + d) * SCALE + BIAS
    return out, m * np.asarray(mean) + (1 - m) * mu_b, m * np.asarray(var) + (1 - m) * var_b


@pytest.mark.parametrize("jit", [False, True])
@pytest.mark.parametrize("phase", ["warmup", "renorm", "clipped"])
def test_batch_renorm_training_pass_matches_the_paper_and_moves_the_running_statistics(jit, phase):
    layer = BatchRenorm(momentum=0.99, warmup=10)
    # renorm: running statistics near the batch's (r, d inside their bounds); clipped: far off (r = 3, d = -5)
    mean, var = {"warmup": ([0.5, 1.0], [2.0, 3.0]), "renorm": ([0.5, 1.0], [2.0, 3.0]),
                 "clipped": ([40.0, -30.0], [0.01, 0.02])}[phase]  # fmt: skip
    steps = 3.0 if phase == "warmup" else 10.0
    f = lambda v, x: layer.apply(v, x, True, mutable=["batch_stats"])  # noqa: E731
    f = jax.jit(f) if jit else f
    out, upd = f(brn_vars(mean, var, steps), jnp.asarray(X))
    want, new_mean, new_var = brn_hand(X, np.array(mean), np.array(var), warm=phase != "warmup")
    np.testing.assert_allclose(np.asarray(out), want, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(np.asarray(upd["batch_stats"]["mean"]), new_mean, rtol=1e-6)
    np.testing.assert_allclose(np.asarray(upd["batch_stats"]["var"]), new_var, rtol=1e-6)
    assert float(upd["batch_stats"]["steps"]) == steps + 1
    if (
        phase == "clipped"
    ):  # the bounds are what made the numbers: unclipped r and d would be far outside them
        sig_b, sig = np.sqrt(X.var(0) + RENORM_EPS), np.sqrt(np.array(var) + RENORM_EPS)
        assert (sig_b / sig > RENORM_R_MAX).all() and (np.abs((X.mean(0) - mean) / sig) > RENORM_D_MAX).all()
    if phase == "warmup":  # plain batch norm: zero mean, the scale's std per feature
        np.testing.assert_allclose((np.asarray(out) - BIAS).mean(0), 0.0, atol=1e-5)


@pytest.mark.parametrize("jit", [False, True])
def test_batch_renorm_inference_uses_the_running_statistics_and_changes_nothing(jit):
    layer = BatchRenorm(momentum=0.99, warmup=0)
    mean, var = np.array([0.5, 1.0]), np.array([2.0, 3.0])
    f = lambda v, x: layer.apply(v, x, False)  # noqa: E731
    out = (jax.jit(f) if jit else f)(brn_vars(mean, var, 5.0), jnp.asarray(X))
    want = (X - mean) / np.sqrt(var + RENORM_EPS) * SCALE + BIAS
    np.testing.assert_allclose(np.asarray(out), want, rtol=1e-5, atol=1e-6)


def test_batch_renorm_r_and_d_carry_no_gradient():
    """The gradient flows through the batch's mean and std (as in batch norm); r and d are constants."""
    layer = BatchRenorm(momentum=0.99, warmup=0)
    mean, var = np.array([0.5, 1.0], np.float32), np.array([2.0, 3.0], np.float32)
    w = jnp.asarray(np.arange(8, dtype=np.float32).reshape(4, 2) / 7.0 - 0.5)
    sig = jnp.sqrt(jnp.asarray(var) + RENORM_EPS)
    r = jnp.clip(jnp.sqrt(jnp.var(X, 0) + RENORM_EPS) / sig, 1 / RENORM_R_MAX, RENORM_R_MAX)
    d = jnp.clip((jnp.mean(X, 0) - mean) / sig, -RENORM_D_MAX, RENORM_D_MAX)

    def ref(x):  # r and d frozen at their values for X
        x_hat = (x - jnp.mean(x, 0)) / jnp.sqrt(jnp.var(x, 0) + RENORM_EPS) * r + d
        return jnp.sum((x_hat * SCALE + BIAS) * w)

    def ours(x):
        out, _ = layer.apply(brn_vars(mean, var, 1.0), x, True, mutable=["batch_stats"])
        return jnp.sum(out * w)

    np.testing.assert_allclose(np.asarray(jax.grad(ours)(jnp.asarray(X))), np.asarray(jax.grad(ref)(jnp.asarray(X))),
                               rtol=1e-5, atol=1e-6)  # fmt: skip


# A CrossQ critic small enough to write out: obs and action 1-d, one hidden layer of 2 units,
# q = w2 . BRN_1(relu(W1 BRN_0([s, a]) + b1)) + b2, every BRN with scale 1 and bias 0.
CQ = Config(
    actor_hidden=(2,), critic_hidden=(2,), batch_size=2, gamma=0.9, batch_renorm=True, renorm_warmup=0,
    joint_critic_pass=True, target_networks=False,
)  # fmt: skip
W1, B1 = np.array([[1.0, -0.5], [0.3, 2.0]], np.float32), np.array([0.1, -0.2], np.float32)
W2, B2 = np.array([[1.5], [-0.7]], np.float32), np.array([0.05], np.float32)
RUN = {
    "norm_input": (np.array([0.2, -0.1]), np.array([1.5, 0.8])),
    "norm_0": (np.array([0.4, 0.3]), np.array([0.6, 1.2])),
}
CBATCH = BATCH  # test_learner's hand-checked batch: rewards 1.0, -0.5; the second transition terminates
NEXT_A = np.array([[0.3], [-0.8]], np.float32)


def critic_variables():
    stats = {k: {"mean": jnp.asarray(m, jnp.float32), "var": jnp.asarray(v, jnp.float32),
                 "steps": jnp.asarray(7.0)} for k, (m, v) in RUN.items()}  # fmt: skip
    ones = {k: {"scale": jnp.ones(2), "bias": jnp.zeros(2)} for k in RUN}
    params = {**ones, "hidden_0": {"kernel": jnp.asarray(W1), "bias": jnp.asarray(B1)},
              "out": {"kernel": jnp.asarray(W2), "bias": jnp.asarray(B2)}}  # fmt: skip
    return {"params": params, "batch_stats": stats}


def critic_hand(s, a, train):
    """The critic in numpy: training mode normalizes with this batch's statistics corrected by r and d."""

    def brn(x, name):
        m, v = RUN[name]
        sig = np.sqrt(v + RENORM_EPS)
        if not train:
            return (x - m) / sig
        mu_b, sig_b = x.mean(0), np.sqrt(x.var(0) + RENORM_EPS)
        r = np.clip(sig_b / sig, 1 / RENORM_R_MAX, RENORM_R_MAX)
        d = np.clip((mu_b - m) / sig, -RENORM_D_MAX, RENORM_D_MAX)
        return (x - mu_b) / sig_b * r + d

    h = brn(np.maximum(brn(np.concatenate([s, a], 1), "norm_input") @ W1 + B1, 0.0), "norm_0")
    return (h @ W2 + B2)[:, 0]


@pytest.mark.parametrize("jit", [False, True])
def test_joint_critic_pass_normalizes_both_halves_with_one_batch_and_bootstraps_from_its_second_half(jit):
    learner = Learner(CQ, 1, 1)
    s, a = np.asarray(CBATCH.obs), np.asarray(CBATCH.action)
    s2 = np.asarray(CBATCH.next_obs)
    q_all = critic_hand(np.concatenate([s, s2]), np.concatenate([a, NEXT_A]), train=True)
    q, q_next = q_all[:2], q_all[2:]
    y = np.array([1.0, -0.5]) + 0.9 * np.array([1.0, 0.0]) * q_next
    want = np.mean((q - y) ** 2)
    # two separate passes give other numbers: the test would catch a critic that normalizes the halves apart
    apart = critic_hand(s, a, train=True)
    assert np.max(np.abs(apart - q)) > 1e-2

    f = lambda p, v: joint_critic_loss(learner.critic, p, v, CBATCH, jnp.asarray(NEXT_A), 0.9, ())  # noqa: E731
    f = jax.jit(f) if jit else f
    v = critic_variables()
    loss, (new_vars, mean_q) = f(v["params"], v)
    np.testing.assert_allclose(float(loss), want, rtol=1e-5)
    np.testing.assert_allclose(float(mean_q), q.mean(), rtol=1e-5)
    # the running statistics moved towards the joint batch of 4 rows
    x0 = np.concatenate([np.concatenate([s, s2]), np.concatenate([a, NEXT_A])], 1)
    np.testing.assert_allclose(np.asarray(new_vars["batch_stats"]["norm_input"]["mean"]),
                               0.99 * RUN["norm_input"][0] + 0.01 * x0.mean(0), rtol=1e-6)  # fmt: skip
    # y carries no gradient: the gradient is that of mean((q - const)^2)
    g = jax.grad(lambda p: f(p, v)[0])(v["params"])
    y_const = jnp.asarray(y, jnp.float32)

    def frozen(p):
        out, _ = learner.critic.apply({**v, "params": p}, jnp.concatenate([CBATCH.obs, CBATCH.next_obs]),
                                      jnp.concatenate([CBATCH.action, jnp.asarray(NEXT_A)]), train=True,
                                      mutable=["batch_stats"])  # fmt: skip
        return jnp.mean((out[:2] - y_const) ** 2)

    g_ref = jax.grad(frozen)(v["params"])
    for x, w in zip(jax.tree_util.tree_leaves(g), jax.tree_util.tree_leaves(g_ref), strict=True):
        np.testing.assert_allclose(np.asarray(x), np.asarray(w), rtol=1e-4, atol=1e-6)


def test_actor_loss_reads_the_renormalized_critic_in_inference_mode():
    learner = Learner(CQ, 1, 1)
    state = learner.init(0).replace(critic=critic_variables())
    obs = CBATCH.obs
    a = learner.actor.apply(state.actor, obs, train=True, mutable=["batch_stats"])[0]
    want = -np.mean(critic_hand(np.asarray(obs), np.asarray(a), train=False))
    loss, _ = actor_loss(learner.actor, learner.critic, state.actor["params"], state.actor, state.critic, obs,
                         0.0, False)  # fmt: skip
    np.testing.assert_allclose(float(loss), want, rtol=1e-5)


def test_target_smoothing_in_the_joint_pass_shifts_mu_s_prime_by_the_clipped_noise_of_the_states_key():
    """CrossQ's deterministic path (--target-noise 0.2 --target-noise-clip 0.5 on `crossq`): the update draws
    N(0, 0.2) clipped to 0.5 from the TrainState's key, adds it to mu(s') (then clips to [-1, 1]) and bootstraps the
    joint pass from that action."""
    cfg = CQ.replace(target_noise=0.2, target_noise_clip=0.5)
    learner = Learner(cfg, 1, 1)
    state = learner.init(0).replace(critic=critic_variables(), key=jax.random.PRNGKey(7))
    _, sub = jax.random.split(state.key)
    eps = np.clip(0.2 * np.asarray(jax.random.normal(sub, (2, 1), jnp.float32)), -0.5, 0.5)
    assert np.abs(eps).min() > 1e-3
    mu_next = np.asarray(learner.actor.apply(state.actor, CBATCH.next_obs, train=False))
    next_a = np.clip(mu_next + eps, -1.0, 1.0)
    s, a, s2 = np.asarray(CBATCH.obs), np.asarray(CBATCH.action), np.asarray(CBATCH.next_obs)
    q_all = critic_hand(np.concatenate([s, s2]), np.concatenate([a, next_a]), train=True)
    y = np.array([1.0, -0.5]) + 0.9 * np.array([1.0, 0.0]) * q_all[2:]
    want = np.mean((q_all[:2] - y) ** 2)
    batches = jax.tree_util.tree_map(lambda x: None if x is None else x[None], CBATCH)
    _, m = learner.update(state, batches)
    np.testing.assert_allclose(float(m.critic_loss), want, rtol=1e-5)
    # without the noise the loss is another number: the test sees the smoothing
    q_plain = critic_hand(np.concatenate([s, s2]), np.concatenate([a, mu_next]), train=True)
    y_plain = np.array([1.0, -0.5]) + 0.9 * np.array([1.0, 0.0]) * q_plain[2:]
    assert abs(np.mean((q_plain[:2] - y_plain) ** 2) - want) > 1e-4


def _batches(k, b, obs_dim=3, act_dim=2, seed=0):
    rng = np.random.default_rng(seed)
    return Batch(
        obs=jnp.asarray(rng.normal(size=(k, b, obs_dim)), jnp.float32),
        action=jnp.asarray(rng.uniform(-1, 1, (k, b, act_dim)), jnp.float32),
        reward=jnp.asarray(rng.normal(size=(k, b)), jnp.float32),
        next_obs=jnp.asarray(rng.normal(size=(k, b, obs_dim)), jnp.float32),
        terminated=jnp.zeros((k, b), jnp.float32),
    )


@pytest.mark.parametrize("target_update", ["step", "call"])
def test_no_target_update_runs_when_the_target_networks_are_off(target_update):
    base = dict(actor_hidden=(8,), critic_hidden=(8,), batch_size=16, target_update=target_update, tau=0.5)
    off = Learner(Config(**base, target_networks=False, batch_renorm=True, joint_critic_pass=True), 3, 2)
    on = Learner(Config(**base, batch_renorm=True), 3, 2)
    for learner, moved in ((off, False), (on, True)):
        s0 = learner.init(0)
        before = jax.tree_util.tree_map(np.array, (s0.actor_target, s0.critic_target))
        online0 = jax.tree_util.tree_map(np.array, s0.critic["params"])
        s1, _ = learner.update(s0, _batches(3, 16))
        after = jax.tree_util.tree_map(np.array, (s1.actor_target, s1.critic_target))
        same = all(np.array_equal(x, y) for x, y in zip(jax.tree_util.tree_leaves(before),
                                                          jax.tree_util.tree_leaves(after), strict=True))  # fmt: skip
        assert same is not moved, (learner.hp.target_networks, target_update)
        changed = jax.tree_util.tree_map(
            lambda x, y: not np.array_equal(x, np.asarray(y)), online0, s1.critic["params"]
        )
        assert all(jax.tree_util.tree_leaves(changed))  # the online critic did learn


def test_adam_b1_is_the_first_moment_decay_of_both_optimizers():
    learner = Learner(Config(actor_hidden=(4,), critic_hidden=(4,), batch_size=8, adam_b1=0.5), 3, 2)
    s0 = learner.init(0)
    s1, _ = learner.update(s0, _batches(1, 8))
    # after one step Adam's first moment is (1 - b1) * g: 0.5 g; with b1 0.9 it would be 0.1 g
    g_mu = s1.critic_opt[0].mu
    g_nu = s1.critic_opt[0].nu  # (1 - b2) g^2, b2 = 0.999
    for mu_, nu_ in zip(jax.tree_util.tree_leaves(g_mu), jax.tree_util.tree_leaves(g_nu), strict=True):
        g = np.sqrt(np.asarray(nu_) / 0.001)
        np.testing.assert_allclose(np.abs(np.asarray(mu_)), 0.5 * g, rtol=1e-3, atol=1e-9)


def test_crossq_preset_and_its_bad_combinations():
    c = preset_config("crossq", "Hopper-v5")
    assert c.batch_renorm and c.joint_critic_pass and not c.target_networks and c.twin_critic
    assert c.critic_hidden == (2048, 2048) and c.actor_hidden == (256, 256) and c.adam_b1 == 0.5
    assert c.policy_delay == 3 and c.actor_lr == c.critic_lr == 1e-3 and c.learning_starts == 5_000
    validate(c)
    for bad, words in (
        (dict(target_networks=True), "--no-target-networks"),
        (dict(batch_norm=True), "not two"),
        (dict(critic_action_layer=1, critic_hidden=(64, 64)), "--critic-action-layer 0"),
        (dict(adam_b1=1.0), "--adam-b1"),
        (dict(noise="param"), "--batch-renorm"),
    ):
        with pytest.raises(UserError, match=words):
            validate(c.replace(**bad))


def test_crossq256_is_crossq_with_256_critics_and_the_mujoco_default(capsys):
    from ddpgx.cli import parse_train_args
    from ddpgx.presets import default_preset

    c, c256 = preset_config("crossq", "Hopper-v5"), preset_config("crossq256", "Hopper-v5")
    assert c256.critic_hidden == (256, 256) and c256.preset == "crossq256"
    assert c256.replace(critic_hidden=c.critic_hidden, preset="crossq") == c  # nothing else differs
    # Gymnasium's MuJoCo envs (judged from the registered entry point) default to it; nothing else does
    for env, want in (
        ("Hopper-v5", "crossq256"),
        ("Walker2d-v4", "crossq256"),
        ("InvertedDoublePendulum-v5", "crossq256"),
        ("Pendulum-v1", "pendulum"),
        ("MountainCarContinuous-v0", "modern"),
        (
            "FetchReach-v4",
            "her",
        ),  # Fetch's sparse goals need HER (docs/RESULTS.md: her on Reach, her8 on Push)
        ("FetchPush-v4", "her8"),
        ("FetchPickAndPlace-v4", "her8"),
        ("FetchSlide-v4", "her8"),
        ("FetchReachDense-v4", "modern"),  # dense rewards: not HER's
        ("my_pkg:FetchPush-v4", "modern"),  # a user's env of the same name is not gymnasium-robotics'
        ("gymnasium_robotics:FetchPush-v4", "her8"),  # the package named, as Gymnasium allows
        ("myns/FetchPush-v0", "modern"),
        ("HandReach-v3", "modern"),
        ("tests.envs_for_tests:Hopper-v5", "modern"),
        ("gymnax:Pendulum-v1", "pendulum"),
    ):
        assert default_preset(env) == want, env
    assert preset_config("", "Ant-v5").critic_hidden == (256, 256)
    # the CLI says which preset it chose, once, and only when it chose one the user may not expect
    cfg = parse_train_args(["--env", "Walker2d-v5", "--total-steps", "1000"])
    err = capsys.readouterr().err.strip().splitlines()
    assert cfg.preset == "crossq256" and cfg.critic_hidden == (256, 256)
    assert (
        len(err) == 1 and "crossq256" in err[0] and "--preset modern" in err[0] and "--preset paper" in err[0]
    )
    assert "renorm" not in err[0]  # the IDP hint is IDP's alone
    cfg = parse_train_args(["--env", "InvertedDoublePendulum-v5", "--total-steps", "1000"])
    err = capsys.readouterr().err.strip().splitlines()
    assert cfg.preset == "crossq256" and cfg.renorm_warmup == preset_config("crossq256").renorm_warmup
    assert len(err) == 1 and "--preset modern" in err[0] and "add --renorm-warmup 1000000" in err[0]
    cfg = parse_train_args(["--env", "FetchPush-v4", "--total-steps", "1000"])
    err = capsys.readouterr().err.strip().splitlines()
    assert cfg.preset == "her8" and cfg.her and cfg.batch_size == 2048
    assert len(err) == 1 and "`her8` (DDPG + HER" in err[0] and "--preset her;" in err[0]
    assert "--preset modern" in err[0]
    for args in (
        ["--env", "FetchPush-v4", "--preset", "her"],
        ["--env", "Walker2d-v5", "--preset", "modern"],
        ["--env", "Pendulum-v1"],
        ["--env", "MountainCarContinuous-v0"],
    ):
        parse_train_args(args)
        assert capsys.readouterr().err == "", args
