"""Seed groups of the compiled loop that never lose progress, and JAX envs checked before a run exists (issue #39,
section 6): a group killed between its seeds' checkpoint writes with --keep-checkpoints 1 resumes bitwise; a group
whose group.json is gone resumes from its seeds' config.json; env parameters that make a JAX env degenerate,
non-finite or fail at its first step are one line before anything is written; non-finite evaluations stop a run."""

from __future__ import annotations

import csv
import shutil
import subprocess
import sys
from pathlib import Path

import jax.numpy as jnp
import numpy as np
import pytest
from killing import ENV as PROCESS_ENV
from killing import resume

from ddpgx import checkpoint as ckpt
from ddpgx import jaxloop
from ddpgx.cli import main
from ddpgx.errors import TrainingDiverged
from ddpgx.jaxenvs import JaxEnv, env_problem
from ddpgx.learner import Learner
from ddpgx.presets import preset_config, resolve
from ddpgx.validate import validate

pytestmark = pytest.mark.slow

ENV = "gymnax:Pendulum-v1"
SEEDS = ("Pendulum-v1__pendulum__s0", "Pendulum-v1__pendulum__s1")
KILL_STEP = 400


def flags(cache: Path) -> list[str]:
    return ["--env", ENV, "--seeds", "0-1", "--actor-hidden", "32", "32", "--critic-hidden", "32", "32",
            "--total-steps", "800", "--learning-starts", "200", "--eval-every", "400", "--eval-episodes", "2",
            "--checkpoint-every", "200", "--keep-checkpoints", "1", "--chunk-steps", "100", "--no-progress",
            "--no-plot", "--no-tensorboard", "--compile-cache", str(cache)]  # fmt: skip


# `ddpgx train` whose process SIGKILLs itself (by its own PID) right after seed 0's checkpoint at KILL_STEP is
# written, before seed 1's: the moment between the seeds' writes, hit every time
KILLED_BETWEEN_SEEDS = f"""
import os, signal, sys
from ddpgx import checkpoint
from ddpgx.cli import main
save = checkpoint.save
def killing_save(run_dir, step, *args, **kwargs):
    out = save(run_dir, step, *args, **kwargs)
    if step == {KILL_STEP} and run_dir.name.endswith("__s0"):
        os.kill(os.getpid(), signal.SIGKILL)
    return out
checkpoint.save = killing_save
sys.exit(main(sys.argv[1:]))
"""


def rows(path: Path) -> list[dict]:
    return [{k: v for k, v in r.items() if k not in ("wall_s", "sps")} for r in csv.DictReader(open(path))]


def steps_of(run: Path) -> list[int]:
    return sorted(int(p.name[5:]) for p in (run / ckpt.DIRNAME).glob("step_*"))


@pytest.fixture(scope="module")
def groups(tmp_path_factory) -> tuple[Path, Path]:
    """An uninterrupted group and the same group killed between its seeds' checkpoints at step KILL_STEP."""
    tmp = tmp_path_factory.mktemp("groups")
    ref, killed, cache = tmp / "ref", tmp / "killed", tmp / "xla"
    # fresh processes both: the seeds are spread over the cores there (jaxloop.cpu_devices_for), as on resume
    cmd = [sys.executable, "-m", "ddpgx.cli", "train", *flags(cache), "--run-dir", str(ref)]
    r = subprocess.run(cmd, env=PROCESS_ENV, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    cmd = [sys.executable, "-c", KILLED_BETWEEN_SEEDS, "train", *flags(cache), "--run-dir", str(killed)]
    r = subprocess.run(cmd, env=PROCESS_ENV, capture_output=True, text=True, timeout=600)
    assert r.returncode == -9, r.stderr
    s0, s1 = (steps_of(killed / s) for s in SEEDS)
    assert s0[-1] == KILL_STEP and KILL_STEP not in s1, (s0, s1)  # killed between the seeds' writes
    return ref, killed


def assert_same_group(ref: Path, run: Path) -> None:
    for seed in SEEDS:
        a, b = ref / seed, run / seed
        assert (a / "final.msgpack").read_bytes() == (b / "final.msgpack").read_bytes(), seed
        for name in ("eval.csv", "episodes.csv", "train.csv"):
            assert rows(a / name) == rows(b / name), (seed, name)


def test_a_group_killed_between_its_seeds_checkpoints_with_one_kept_resumes_bitwise(groups, tmp_path):
    ref, killed = groups
    run = tmp_path / "run"
    shutil.copytree(killed, run)
    # the step every seed has is still there: a group prunes only once all its seeds wrote the newer checkpoint
    assert steps_of(run / SEEDS[0]) == [KILL_STEP - 200, KILL_STEP] and steps_of(run / SEEDS[1]) == [
        KILL_STEP - 200
    ]
    r = resume(run)
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stderr
    assert_same_group(ref, run)
    for seed in SEEDS:  # --keep-checkpoints 1 counts the group's checkpoints: one each, at the same step
        assert steps_of(ref / seed) == steps_of(run / seed) == [800]


def test_a_group_some_of_whose_seeds_have_no_checkpoint_yet_starts_over_and_ends_bitwise(groups, tmp_path):
    ref, killed = groups
    run = tmp_path / "run"
    shutil.copytree(killed, run)
    shutil.rmtree(run / SEEDS[1] / ckpt.DIRNAME)  # as if killed between the seeds' first checkpoints
    r = resume(run)
    assert r.returncode == 0, r.stderr
    assert "the group starts again from step 0" in r.stdout
    assert_same_group(ref, run)


def test_a_group_whose_group_json_is_gone_resumes_from_its_seeds_config_json(groups, tmp_path):
    ref, killed = groups
    run = tmp_path / "run"
    shutil.copytree(killed, run)
    recorded = jaxloop.group_config(run)
    (run / jaxloop.GROUP_FILE).unlink()
    rebuilt = jaxloop.group_config(
        run
    )  # from the seeds' config.json files, each of which holds the whole config
    assert rebuilt == recorded.replace(run_dir=str(run))
    r = resume(run / SEEDS[1])  # one seed's directory resumes its group, as with group.json
    assert r.returncode == 0, r.stderr
    assert "resuming the group" in r.stdout
    assert_same_group(ref, run)
    assert jaxloop.group_config(run) == recorded.replace(run_dir=str(run))  # group.json is back


def test_a_group_that_lost_group_json_and_a_seed_is_one_line_and_nothing_is_touched(groups, tmp_path, capsys):
    _, killed = groups
    run = tmp_path / "run"
    shutil.copytree(killed, run)
    (run / jaxloop.GROUP_FILE).unlink()
    shutil.rmtree(run / SEEDS[1])
    before = sorted((p.relative_to(run), p.stat().st_size, p.stat().st_mtime_ns) for p in run.rglob("*"))
    for target in (run, run / SEEDS[0]):
        assert main(["train", "--resume", str(target), "--no-progress"]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "Traceback" not in err, err
        assert "has lost its group.json" in err and SEEDS[1] in err and "new --run-dir" in err, err
    assert (
        sorted((p.relative_to(run), p.stat().st_size, p.stat().st_mtime_ns) for p in run.rglob("*")) == before
    )


BASE = ["train", "--env", ENV, "--total-steps", "400", "--no-progress", "--no-plot", "--no-tensorboard"]


@pytest.mark.parametrize(
    ("kwargs", "says"),
    [
        # degenerate: every episode ends before or at its first step
        (["max_episode_steps=0"], "max_episode_steps=0 ends every episode before its first step"),
        (["max_episode_steps=1"], "max_episode_steps=1 ends every episode at its first step"),
        # non-finite: a pendulum of length zero divides by it
        (["l=0"], "l=0 gives a NaN or inf observation or reward at step"),
        (["g=NaN"], "g=nan gives a NaN or inf observation or reward at step 1"),
        # finite rewards of 1e37 per step: a 200-step episode's return overflows float32; all three share the blame
        (
            ["max_speed=1e19", "g=1e18", "dt=1"],
            "overflows float32; change max_speed (default 8.0), g (default 10.0), dt",
        ),
        # found bad only at the first step of the compiled loop before (a traceback)
        (["dt=[1,2]"], "parameter dt takes a number (its default is 0.05), got [1, 2]"),
        (["max_speed=fast"], "parameter max_speed takes a number (its default is 8.0), got 'fast'"),
        (["max_steps_in_episode=1.5"], "parameter max_steps_in_episode takes a whole number"),
        (["max_speed=NaN"], "cannot be made with --env-kwargs max_speed=nan"),
    ],
)
def test_env_parameters_that_break_a_jax_env_are_one_line_before_anything_is_written(
    kwargs, says, tmp_path, capsys
):
    for seeds in ("0", "0-1"):
        run = tmp_path / f"run{seeds}"
        assert main([*BASE, "--seeds", seeds, "--env-kwargs", *kwargs, "--run-dir", str(run)]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "Traceback" not in err, err
        assert says in err, err
        assert not run.exists()


def test_an_env_that_fails_at_its_first_step_is_named_by_the_probe():
    def reset(key):
        return jnp.zeros((2,), jnp.float32), jnp.int32(0)

    def step(key, t, action):  # as gymnax's maths with a list where a number goes
        return jnp.zeros((2,)) * [1.0, 2.0], t + 1, jnp.float32(0), jnp.bool_(False), jnp.bool_(False), None

    env = JaxEnv("test:Broken", reset, step, 2, 1, np.array([-1.0]), np.array([1.0]), 50)
    assert env_problem(env).startswith("fails at its first step (TypeError: ")


HUGE = -3e38  # a finite float32 reward per step; two of them overflow


def overflowing_env() -> JaxEnv:
    """A 1-d env of 5-step episodes whose every reward is HUGE: each finite, their sum -inf."""

    def reset(key):
        return jnp.zeros((1,), jnp.float32), jnp.int32(0)

    def step(key, t, action):
        t = t + 1
        trunc = t >= 5
        obs = t.astype(jnp.float32)[None]
        return obs, jnp.where(trunc, 0, t), jnp.float32(HUGE), jnp.bool_(False), trunc, obs

    return JaxEnv("test:Overflow", reset, step, 1, 1, np.array([-1.0]), np.array([1.0]), 5)


def test_non_finite_episode_returns_and_evaluations_stop_the_compiled_engine_with_a_line():
    cfg = validate(resolve(preset_config("pendulum", ENV, total_steps=100, learning_starts=50, batch_size=4,
                                         buffer_size=64, chunk_steps=10, eval_episodes=2, num_seeds=2,
                                         actor_hidden=(8,), critic_hidden=(8,))))  # fmt: skip
    jenv = overflowing_env()
    assert (
        env_problem(jenv)
        == "gives rewards as large as 3e+38 per step: a 5-step episode's return overflows float32"
    )
    program = jaxloop.Program(cfg, jenv, Learner(cfg, 1, 1))
    carry = jaxloop.stack([program.init(3), program.init(4)])
    engine = jaxloop.CompiledEngine(cfg, program, carry, [3, 4], 0)
    with pytest.raises(TrainingDiverged) as e:  # eval.csv would say -inf: no result, a stop
        engine.evaluate(0)
    assert str(e.value).startswith("seed 3: the noise-free evaluation at step 0 returned -inf: ")
    with pytest.raises(TrainingDiverged) as e:  # and episodes.csv too
        engine.advance(10)
    assert str(e.value).startswith("seed 3: an episode's return became -inf at step 5: ")
    assert "\n" not in str(e.value)
