"""The compiled loop of JAX-native envs (jaxloop.py): its update is the Learner's, chunks and kills change no bit,
vmapped seeds match separate runs, it learns Pendulum, and bad inputs are one line."""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from killing import ENV as PROCESS_ENV
from killing import kill_after_first_checkpoint, resume
from small import SMALL_BASE

from ddpgx.cli import main
from ddpgx.jaxenvs import make_jax_env
from ddpgx.jaxloop import Program, ring_add, ring_sample
from ddpgx.learner import Learner
from ddpgx.presets import preset_config
from ddpgx.runfiles import load_params
from ddpgx.train import train

ENV = "gymnax:Pendulum-v1"
SMALL = SMALL_BASE


def small_cfg(run_dir: Path | str = "", **kw):
    return preset_config("pendulum", ENV, run_dir=str(run_dir), **{**SMALL, **kw})


def rows(path: Path) -> list[dict]:
    """A CSV's rows without the columns that time things."""
    return [{k: v for k, v in r.items() if k not in ("wall_s", "sps")} for r in csv.DictReader(open(path))]


def leaves_diff(a, b) -> float:
    return max(float(np.max(np.abs(np.asarray(x, np.float64) - np.asarray(y, np.float64))))
               for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b), strict=True))  # fmt: skip


@pytest.mark.slow  # compiles a whole iteration of the loop and the update apart: ~25 s
def test_an_iteration_updates_with_the_learners_update_on_the_batch_it_draws():
    cfg = small_cfg(update_every=1, gradient_steps=2, learning_starts=0, batch_size=16, buffer_size=64,
                    twin_critic=True, target_noise=0.2, policy_delay=2, noise="ou")  # fmt: skip
    jenv = make_jax_env(ENV)
    learner = Learner(cfg, jenv.obs_dim, jenv.act_dim)
    prog = Program(cfg, jenv, learner)
    c = prog.init(3)
    rng = np.random.default_rng(0)
    f = lambda *shape: jnp.asarray(rng.normal(size=shape), jnp.float32)  # noqa: E731
    ring = c.ring.replace(obs=f(64, 3), action=jnp.tanh(f(64, 1)), reward=f(64), next_obs=f(64, 3),
                          terminated=jnp.asarray(rng.random(64) < 0.2, jnp.float32), ptr=jnp.int32(5),
                          size=jnp.int32(64))  # fmt: skip
    c = c.replace(ring=ring)
    new, (done, ret, length, bad) = jax.jit(prog._iteration)(c, jnp.int32(100))  # a unit is due at step 101

    # the same iteration by hand: act, step, write, draw the unit's batches, and the Learner's own update
    key, _, k_env, k_sample = jax.random.split(c.key, 4)
    a, noise, tkey = learner.act(c.train.actor, c.train.explore, c.obs, c.train.noise, c.train.key)
    obs2, _, r, term, _, final = jax.vmap(jenv.step)(jax.random.split(k_env, 1), c.env_state, prog.to_env(a))
    ring2 = ring_add(ring, c.obs, a, r.astype(jnp.float32), final, term.astype(jnp.float32))
    batches = ring_sample(ring2, jax.random.fold_in(k_sample, 0), 2, 16)
    assert int(ring2.ptr) == 6 and np.array_equal(np.asarray(ring2.obs[5]), np.asarray(c.obs[0]))
    copy = lambda t: jax.tree_util.tree_map(jnp.array, t)  # noqa: E731 - the update donates its input
    expected, m = learner.update(copy(c.train.replace(noise=noise, key=tkey)), batches)

    assert np.array_equal(np.asarray(new.obs), np.asarray(obs2)) and np.array_equal(
        np.asarray(new.key), np.asarray(key)
    )
    assert int(new.train.step) == int(expected.step) == 2
    assert (
        leaves_diff(new.train, expected) < 1e-6
    )  # the same maths (one program or two: fusion may move a last bit)
    assert leaves_diff(new.train, c.train) > 1e-4  # and it did move the networks
    assert abs(float(new.metrics[0]) - float(m.critic_loss)) < 1e-4 * max(1.0, abs(float(m.critic_loss)))

    # the unit the iteration runs is the Learner's update, bit for bit, when both are compiled alone
    t2, _ = prog.update_unit(c.train, c.metrics, batches)
    t3, _ = learner.update(copy(c.train), batches)
    assert leaves_diff(t2, t3) == 0.0


@pytest.mark.slow
def test_the_chunk_size_changes_no_bit(tmp_path):
    kw = dict(
        total_steps=2400, learning_starts=500, eval_every=1200, eval_episodes=3, num_envs=2, log_every=500
    )
    train(small_cfg(tmp_path / "a", chunk_steps=1000, **kw))
    train(small_cfg(tmp_path / "b", chunk_steps=7, **kw))  # 4 iterations of 2 envs; chunks cut at every log
    a, b = tmp_path / "a", tmp_path / "b"
    assert (a / "final.msgpack").read_bytes() == (b / "final.msgpack").read_bytes()
    assert (a / "best.msgpack").read_bytes() == (b / "best.msgpack").read_bytes()
    for name in ("episodes.csv", "eval.csv", "train.csv"):
        assert rows(a / name) == rows(b / name), name
    eps = rows(a / "episodes.csv")
    assert len(eps) == 12 and [r["step"] for r in rows(a / "train.csv")] == [
        "1000",
        "1500",
        "2000",
    ]  # 6 episodes per env
    assert [(e["step"], e["env"]) for e in eps[:2]] == [
        ("399", "0"),
        ("400", "1"),
    ]  # the Python loop's step count


@pytest.mark.slow
def test_a_group_killed_at_any_moment_and_resumed_is_bitwise_the_uninterrupted_run(tmp_path):
    flags = ["--env", ENV, "--seeds", "0-1", "--num-envs", "2", "--actor-hidden", "32", "32", "--critic-hidden",
             "32", "32", "--total-steps", "2400", "--learning-starts", "300", "--eval-every", "800",
             "--eval-episodes", "2", "--checkpoint-every", "200", "--chunk-steps", "100", "--no-progress",
             "--no-plot", "--no-tensorboard", "--compile-cache", str(tmp_path / "xla")]  # fmt: skip
    ref, run = tmp_path / "ref", tmp_path / "killed"  # the cache spares the later processes the compile
    # the reference in a fresh process too: there, as in the killed and resumed ones, the two seeds are spread over
    # the cores (one XLA CPU device each, see jaxloop.cpu_devices_for), which rounds differently from one device
    cmd = [sys.executable, "-m", "ddpgx.cli", "train", *flags, "--run-dir", str(ref)]
    assert subprocess.run(cmd, env=PROCESS_ENV, capture_output=True, timeout=600).returncode == 0
    # stopped while the seeds wrote their final files (after every seed's final checkpoint): the resume writes the
    # missing ones from the final checkpoints, bit for bit, and the group is complete
    # (and the same where s1 was stopped between renaming its final checkpoint into place and pointing `latest` at it)
    for gone, pointer_behind in ((["s1"], False), (["s0", "s1"], False), (["s1"], True)):
        torn = tmp_path / "torn"
        shutil.rmtree(torn, ignore_errors=True)
        shutil.copytree(ref, torn)
        for seed in gone:
            (torn / f"Pendulum-v1__pendulum__{seed}" / "final.msgpack").unlink()
        if pointer_behind:
            steps = sorted((torn / "Pendulum-v1__pendulum__s1" / "checkpoints").glob("step_*"))
            assert len(steps) == 2  # --keep-checkpoints 2
            (torn / "Pendulum-v1__pendulum__s1" / "checkpoints" / "latest").write_text(steps[0].name)
        r = resume(torn)
        assert r.returncode == 0, r.stderr
        assert r.stdout.count("wrote it from the run's final checkpoint") == len(gone), r.stdout
        for seed in ("s0", "s1"):
            a, b = ref / f"Pendulum-v1__pendulum__{seed}", torn / f"Pendulum-v1__pendulum__{seed}"
            assert (a / "final.msgpack").read_bytes() == (b / "final.msgpack").read_bytes(), (gone, seed)
    kill_after_first_checkpoint(flags, run, jitter=3.0, inside="Pendulum-v1__pendulum__s1")
    r = resume(run)
    assert r.returncode == 0, r.stderr
    for seed in ("s0", "s1"):
        a, b = ref / f"Pendulum-v1__pendulum__{seed}", run / f"Pendulum-v1__pendulum__{seed}"
        assert (a / "final.msgpack").read_bytes() == (b / "final.msgpack").read_bytes(), seed
        assert (a / "best.msgpack").read_bytes() == (b / "best.msgpack").read_bytes(), seed
        for name in ("episodes.csv", "eval.csv", "train.csv"):
            assert rows(a / name) == rows(b / name), (seed, name)
    # resumed on fewer cores (one): the group keeps the seed partition it started with (group.json), so the resume
    # is still bitwise (one XLA CPU device per core would have rounded differently)
    partition = json.loads((ref / "group.json").read_text())["seed_partition"]
    assert partition == min(2, len(os.sched_getaffinity(0)))
    small = tmp_path / "small"
    kill_after_first_checkpoint(flags, small, jitter=3.0, inside="Pendulum-v1__pendulum__s1")
    r = resume(small, one_core=True)
    assert r.returncode == 0, r.stderr
    assert "not bitwise" not in r.stdout + r.stderr
    for seed in ("s0", "s1"):
        a, b = ref / f"Pendulum-v1__pendulum__{seed}", small / f"Pendulum-v1__pendulum__{seed}"
        assert (a / "final.msgpack").read_bytes() == (b / "final.msgpack").read_bytes(), seed
    # one seed's directory resumes its group, and a finished group says it is complete
    r = resume(run / "Pendulum-v1__pendulum__s0")
    assert r.returncode == 2 and "already complete" in r.stderr and "resuming the group" in r.stdout


PEAK_SCRIPT = r"""
import contextlib, json, resource, sys
import jax
from ddpgx import jaxloop
from ddpgx.presets import preset_config
cfg = preset_config("pendulum", "gymnax:Pendulum-v1", run_dir=sys.argv[1], num_seeds=4, buffer_size=6_000_000,
                    total_steps=1000, progress=False, tensorboard=False, plot=False)
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
with contextlib.ExitStack() as closing:
    _, engine, *_ = jaxloop.build(cfg, False, closing)
    grown = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) * 1024
    ring = sum(x.nbytes for x in jax.tree_util.tree_leaves(engine.carry.ring))
    print(json.dumps({"grown": grown, "ring": ring}))
"""


@pytest.mark.slow  # allocates 4 rings of 206 MB: ~30 s
def test_a_seed_groups_rings_are_made_in_place_not_made_then_stacked(tmp_path):
    """Four seeds' rings of 6M rows (Pendulum: 36 bytes a row, 824 MB in all): the start holds them and the
    backend's own memory (~0.3 GB here). Making each seed's ring, stacking them and placing the stack on the
    seed devices peaked at about 3.5 times the rings (2.1 GB more than this)."""
    r = subprocess.run([sys.executable, "-c", PEAK_SCRIPT, str(tmp_path / "g")], env=PROCESS_ENV,
                       capture_output=True, text=True, timeout=600)  # fmt: skip
    assert r.returncode == 0, r.stderr[-2000:]
    got = json.loads(r.stdout.strip().splitlines()[-1])
    assert got["ring"] == 4 * 6_000_000 * (2 * 3 + 1 + 2) * 4 + 4 * 2 * 4  # rows, ptr and size of 4 seeds
    assert got["grown"] < 2.0 * got["ring"], got


@pytest.mark.slow
def test_vmapped_seeds_match_separate_runs_to_float_tolerance(tmp_path):
    kw = dict(total_steps=300, learning_starts=200, batch_size=32, eval_every=300, eval_episodes=2)
    train(small_cfg(tmp_path / "g", num_seeds=2, seed=4, **kw))
    train(small_cfg(tmp_path / "one", seed=5, **kw))
    g = tmp_path / "g" / "Pendulum-v1__pendulum__s5"
    one = tmp_path / "one"
    # the warm-up episode (uniform actions, no update yet) is the same to the bit
    assert rows(g / "episodes.csv")[0] == rows(one / "episodes.csv")[0]
    a, b = load_params(g / "final.msgpack"), load_params(one / "final.msgpack")
    d = leaves_diff(a["actor"], b["actor"])
    # 100 gradient steps later: batched matmuls round differently (a few float32 ulps here, 1e-7), not a different
    # algorithm; the gap grows with training (2e-5 after 200 steps, 6e-4 after 400: Adam amplifies it)
    assert d < 1e-5, d
    c = load_params(tmp_path / "g" / "Pendulum-v1__pendulum__s4" / "final.msgpack")
    assert leaves_diff(a["actor"], c["actor"]) > 1e-2  # the other seed is another run


@pytest.mark.slow
def test_pendulum_is_learned_by_two_vmapped_seeds(tmp_path):
    res = train(preset_config("pendulum", ENV, run_dir=str(tmp_path), total_steps=7000, num_seeds=2,
                              eval_every=2000, progress=False, plot=False, tensorboard=False))  # fmt: skip
    best = []
    for run in res.runs:
        evals = [float(r["mean_return"]) for r in csv.DictReader(open(run / "eval.csv"))]
        assert evals[0] < -700  # untrained: the pendulum hangs down
        best.append(max(evals))
    assert min(best) > -300, best  # swung up and held (solved is about -150)
    assert main(["report", str(tmp_path), "--out", str(tmp_path / "report.md")]) == 0
    assert "| 2 |" in (tmp_path / "report.md").read_text()  # the two seeds form one group


def one_line(capsys, argv: list[str]) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    return err


def test_bad_inputs_of_the_compiled_loop_are_one_line_before_anything_is_written(
    tmp_path, capsys, monkeypatch
):
    base = ["train", "--no-progress", "--total-steps", "1000"]
    d = lambda x: ["--run-dir", str(tmp_path / x)]  # noqa: E731
    assert "playground:CartpoleBalance" in one_line(capsys, [*base, "--env", "mjx:CartpoleBalance", *d("a")])
    assert "Menagerie" in one_line(capsys, [*base, "--env", "playground:Go1JoystickFlatTerrain", *d("l")])
    err = one_line(capsys, [*base, "--env", "gymnax:Pendulum-v2", *d("b")])
    assert "unknown gymnax env" in err and "gymnax:Pendulum-v1" in err
    assert "Discrete action space" in one_line(capsys, [*base, "--env", "gymnax:CartPole-v1", *d("c")])
    err = one_line(capsys, [*base, "--env", ENV, "--obs-norm", *d("e")])
    assert "does not support --obs-norm" in err
    err = one_line(capsys, [*base, "--env", ENV, "--noise", "param", *d("f")])
    assert "does not support --noise param" in err
    err = one_line(capsys, [*base, "--env", ENV, "--env-kwargs", "max_speed=9", "gravity=3", *d("g")])
    assert "no parameter gravity" in err and "max_steps_in_episode" in err
    err = one_line(capsys, ["train", "--no-progress", "--env", ENV, "--num-seeds", "64", "--total-steps",
                            "1000000000", "--buffer-size", "1000000000", *d("h")])  # fmt: skip
    assert "64 seeds" in err and "fewer --num-seeds" in err
    err = one_line(capsys, [*base, "--env", "Pendulum-v1", "--num-seeds", "2", *d("i")])
    assert "ddpgx sweep" in err
    assert "contiguous" in one_line(capsys, [*base, "--env", ENV, "--seeds", "0,3", *d("j")])
    monkeypatch.setitem(sys.modules, "gymnax", None)  # as if not installed
    assert "pip install 'ddpgx[jaxenvs]'" in one_line(capsys, [*base, "--env", ENV, *d("k")])
    assert not any((tmp_path / x).exists() for x in "abcefghijkl")


def test_a_jax_env_behind_gymnasiums_api_matches_the_compiled_episode():
    """eval, record and export see a gymnax env through GymnaxEnv: the same dynamics and rewards."""
    from ddpgx.envs import make_env

    env = make_env(ENV)
    obs, _ = env.reset(seed=0)
    jenv = make_jax_env(ENV)
    key = jax.random.PRNGKey(0)
    key, sub = jax.random.split(key)
    jobs, state = jenv.reset(sub)
    assert np.allclose(obs, np.asarray(jobs))
    total, steps, done = 0.0, 0, False
    while not done:
        obs, r, term, trunc, _ = env.step(np.array([1.5], np.float32))
        total, steps, done = total + r, steps + 1, term or trunc
    assert steps == 200 and trunc and not term  # Pendulum's time limit is a truncation
    assert -2000 < total < -100
    with pytest.raises(Exception, match="no renderer"):
        make_env("gymnax:Reacher-misc", "rgb_array")


@pytest.mark.slow
def test_a_playground_mjx_task_trains_in_the_compiled_loop_and_evaluates_behind_gymnasiums_api(tmp_path):
    """MuJoCo Playground's CartpoleBalance (MJX): episodes end at the asked length as truncations, per-step rewards
    are the task's (in [0, 1]), and the host-side env gives the trained policy the same kind of returns."""
    from ddpgx.policy import load_policy

    res = train(preset_config("modern", "playground:CartpoleBalance", run_dir=str(tmp_path), total_steps=800,
                              learning_starts=400, eval_every=800, eval_episodes=2,
                              env_kwargs=("max_episode_steps=200",), **SMALL))  # fmt: skip
    eps = rows(res.run_dir / "episodes.csv")
    assert [int(e["length"]) for e in eps] == [200] * 4
    assert all(0.0 < float(e["return"]) < 200.0 for e in eps)
    from ddpgx.envs import make_env

    env, policy = (
        make_env("playground:CartpoleBalance", None, ("max_episode_steps=200",)),
        load_policy(res.run_dir),
    )
    obs, _ = env.reset(seed=0)
    total, steps, done = 0.0, 0, False
    while not done:
        obs, r, term, trunc, _ = env.step(policy(obs))
        total, steps, done = total + r, steps + 1, term or trunc
    assert steps == 200 and trunc and 0.0 < total < 200.0


@pytest.mark.slow
def test_the_compiled_loop_evaluates_and_keeps_the_averaged_policy_and_trains_as_without_it(tmp_path):
    from ddpgx import checkpoint as ckpt

    kw = dict(total_steps=1600, learning_starts=400, eval_every=800, eval_episodes=2, log_every=400)
    train(small_cfg(tmp_path / "plain", **kw))
    train(small_cfg(tmp_path / "avg", policy_avg=0.05, **kw))
    plain, avg = tmp_path / "plain", tmp_path / "avg"
    assert rows(plain / "episodes.csv") == rows(avg / "episodes.csv")
    assert rows(plain / "train.csv") == rows(avg / "train.csv")
    assert rows(plain / "eval.csv") != rows(avg / "eval.csv")
    a, p = load_params(avg / "final.msgpack"), load_params(plain / "final.msgpack")
    state = ckpt.load(avg, replay=False).state
    assert leaves_diff(a["actor"], state["actor_avg"]) == 0.0
    assert leaves_diff(p["actor"], state["actor"]) == 0.0 and leaves_diff(a["actor"], p["actor"]) > 1e-4


@pytest.mark.slow
def test_playground_action_repeat_is_applied_as_its_training_wrappers_apply_it():
    """--env-kwargs action_repeat=2 holds each action for 2 env steps and sums their rewards: with a fixed action,
    50 agent steps give the 100-step episode's return exactly, and episodes are half as long (in agent steps)."""
    from ddpgx.jaxenvs import make_jax_env

    totals = {}
    for repeat in (1, 2):
        e = make_jax_env("playground:CartpoleBalance", ["max_episode_steps=100", f"action_repeat={repeat}"])
        obs, st = jax.jit(e.reset)(jax.random.PRNGKey(0))
        step, n, total, done = jax.jit(e.step), 0, 0.0, False
        while not done:
            obs, st, r, term, trunc, _ = step(jax.random.PRNGKey(n), st, jnp.zeros(e.act_dim))
            total, n, done = total + float(r), n + 1, bool(term or trunc)
        assert e.max_steps == n == 100 // repeat
        totals[repeat] = total
    assert totals[2] == pytest.approx(totals[1], rel=1e-5) and totals[1] > 50.0
    from ddpgx.errors import UserError

    with pytest.raises(UserError, match="action_repeat must be a positive integer"):
        make_jax_env("playground:CartpoleBalance", ["action_repeat=0"])


def test_the_gymnax_envs_ddpg_can_train_are_the_ones_the_error_and_the_guide_list():
    from ddpgx.errors import UserError
    from ddpgx.jaxenvs import GYMNAX_CONTINUOUS, make_jax_env

    for name in GYMNAX_CONTINUOUS:  # each trains (a bounded Box action space, a flat observation)
        assert make_jax_env(f"gymnax:{name}").act_dim >= 1
    for name in (
        "CartPole-v1",
        "Acrobot-v1",
        "MountainCar-v0",
    ):  # discrete ones are refused (MNIST's would download)
        with pytest.raises(UserError):
            make_jax_env(f"gymnax:{name}")
    guide = (Path(__file__).parents[1] / "docs" / "guides" / "jax-envs.md").read_text()
    listed = " ".join(guide.split("the continuous ones:")[1].split(")")[0].split())
    assert sorted(x.strip(" ;,") for x in listed.split(",")) == sorted(GYMNAX_CONTINUOUS)


def test_resuming_a_seed_group_that_does_not_exist_says_so(tmp_path):
    from ddpgx.errors import UserError
    from ddpgx.jaxloop import resolve_group

    cfg = preset_config("pendulum", "gymnax:Pendulum-v1", num_seeds=2, run_dir=str(tmp_path / "gone"))
    with pytest.raises(UserError, match="gone does not exist; pass the directory `ddpgx train` wrote"):
        resolve_group(cfg, resume=True)  # it said the run had lost its group.json
