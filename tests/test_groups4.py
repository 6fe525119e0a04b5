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
import pytest
from killing import ENV as PROCESS_ENV
from killing import resume

from ddpgx import checkpoint as ckpt
from ddpgx import jaxloop
from ddpgx.cli import main
from ddpgx.errors import UserError

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
