"""Never lose a run: kill it anywhere after its first checkpoint, resume, and end bitwise-identical."""

from __future__ import annotations

import csv
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from ddpgx import checkpoint as ckpt
from ddpgx import load_policy, preset_config, train
from ddpgx.cli import main
from ddpgx.errors import UserError
from ddpgx.run import run_status

ARGS = dict(
    total_steps=3_000,
    learning_starts=300,
    actor_hidden=(32, 32),
    critic_hidden=(32, 32),
    batch_size=32,
    buffer_size=2_500,  # smaller than the run: the buffer wraps before the end
    update_every=2,
    eval_every=1_000,
    eval_episodes=2,
    log_every=200,
    checkpoint_every=600,
    progress=False,
    plot=False,
)
FLAGS = [
    "--env", "Pendulum-v1", "--preset", "pendulum", "--seed", "5", "--total-steps", "3000",
    "--learning-starts", "300", "--actor-hidden", "32", "32", "--critic-hidden", "32", "32", "--batch-size", "32",
    "--buffer-size", "2500", "--update-every", "2", "--eval-every", "1000", "--eval-episodes", "2",
    "--log-every", "200", "--checkpoint-every", "600", "--no-progress", "--no-plot",
]  # fmt: skip


def cfg_for(run_dir: Path, **over):
    return preset_config("pendulum", "Pendulum-v1", seed=5, run_dir=str(run_dir), **{**ARGS, **over})


def table(path: Path, drop=("wall_s", "sps")) -> list[dict]:
    with open(path, newline="") as f:
        return [{k: v for k, v in r.items() if k not in drop} for r in csv.DictReader(f)]


def assert_same_run(a: Path, b: Path) -> None:
    assert (a / "final.msgpack").read_bytes() == (b / "final.msgpack").read_bytes()
    for name in ("episodes.csv", "eval.csv", "train.csv"):
        assert table(a / name) == table(b / name), name


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    """The same run, never interrupted."""
    d = tmp_path_factory.mktemp("ref") / "run"
    train(cfg_for(d, tensorboard=False))
    return d


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "ddpgx.cli", *args]


def start_and_signal(run: Path, sig: int, delay: float, extra: tuple[str, ...] = ()) -> subprocess.Popen:
    p = subprocess.Popen(
        cli("train", *FLAGS, *extra, "--run-dir", str(run)),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    latest = run / "checkpoints" / "latest"
    t0 = time.time()
    while not latest.exists():
        assert p.poll() is None, p.communicate()
        assert time.time() - t0 < 120, "no checkpoint appeared"
        time.sleep(0.02)
    time.sleep(delay)
    p.send_signal(sig)
    p.wait(timeout=120)
    return p


# every stability switch at once: twin critics, target smoothing, n-step returns, observation statistics and
# adaptive parameter noise all live in the checkpoint
SWITCHES = ("--twin-critic", "--target-noise", "0.2", "--n-step", "3", "--obs-norm", "--noise", "param",
            "--param-noise-interval", "25")  # fmt: skip


@pytest.mark.parametrize("extra", [(), SWITCHES], ids=["ddpg", "all-switches"])
@pytest.mark.slow
def test_sigkill_at_a_random_step_then_resume_is_bitwise_identical(tmp_path, reference, extra):
    if extra:  # the uninterrupted run with the same switches
        ref = tmp_path / "ref"
        assert main(["train", *FLAGS, *extra, "--run-dir", str(ref), "--no-tensorboard"]) == 0
        reference = ref
    rnd = random.Random()
    for attempt in range(4):  # the kill must land before the run ends
        run = tmp_path / f"killed{attempt}"
        p = start_and_signal(run, signal.SIGKILL, rnd.uniform(0.0, 1.0) / (attempt + 1), extra)
        # before the run's end: a kill after its final checkpoint (but before final.msgpack) landed too late
        if p.returncode == -signal.SIGKILL and run_status(run) != "finished":
            break
    else:
        pytest.fail("could not kill the run before it finished")
    killed_at = len(table(run / "episodes.csv"))
    r = subprocess.run(
        cli("train", "--resume", str(run), "--no-tensorboard"), capture_output=True, text=True, timeout=300
    )
    assert r.returncode == 0, r.stderr
    assert_same_run(reference, run)
    assert killed_at <= len(table(run / "episodes.csv"))


@pytest.mark.slow
def test_sigterm_saves_then_exits_with_the_resume_command(tmp_path, reference):
    run = tmp_path / "termed"
    p = start_and_signal(run, signal.SIGTERM, 0.0)
    err = p.stderr.read()
    assert p.returncode == 128 + signal.SIGTERM, err
    assert f"resume with: ddpgx train --resume {run}" in err and "saved at step" in err
    step = int(err.split("saved at step ")[1].split(";")[0])
    assert ckpt.latest_name(run) == f"step_{step:012d}"
    assert main(["train", "--resume", str(run)]) == 0
    assert_same_run(reference, run)
    # TensorBoard events continue: both sessions' files are there
    assert len(list((run / "tb").iterdir())) >= 2


def finished_run(tmp_path: Path, name: str) -> Path:
    d = tmp_path / name
    train(cfg_for(d, tensorboard=False))
    return d


@pytest.mark.slow
def test_checkpoints_keep_the_last_two_and_hold_everything(tmp_path):
    d = finished_run(tmp_path, "run")
    names = sorted(p.name for p in (d / "checkpoints").glob("step_*"))
    assert len(names) == 2 and ckpt.latest_name(d) == names[-1]
    # episode ends at multiples of 600, and the run's end: the last checkpoint is the finished run
    assert names == ["step_000000002400", "step_000000003000"]
    m = ckpt.verify(d / "checkpoints" / names[-1])
    assert set(m["rng"]) == {"replay", "warmup", "env", "eval"}
    assert m["counters"]["step"] == 3000 and m["format_version"] == ckpt.FORMAT_VERSION
    assert m["finished"] == "total_steps"
    assert ckpt.verify(d / "checkpoints" / names[0])["finished"] is None
    loaded = ckpt.load(d)
    for part in (
        "actor",
        "critic",
        "actor_target",
        "critic_target",
        "actor_opt",
        "critic_opt",
        "noise",
        "key",
    ):
        assert part in loaded.state
    assert int(loaded.replay["filled"]) == 2500 + 1  # the 2,500-row buffer has wrapped: all rows filled


@pytest.mark.slow
def test_corrupt_latest_checkpoint_falls_back_to_the_previous(tmp_path, reference, capsys):
    d = finished_run(tmp_path, "run")
    latest = d / "checkpoints" / ckpt.latest_name(d)
    data = (latest / "replay.npz").read_bytes()
    (latest / "replay.npz").write_bytes(data[: len(data) // 2])  # truncated
    loaded = ckpt.load(d)
    assert loaded.path.name == "step_000000002400"
    assert "replay.npz is corrupt or truncated" in loaded.skipped[0]
    (d / "final.msgpack").unlink()
    train(cfg_for(d, tensorboard=False), resume=True)
    assert "skipped invalid checkpoint" in capsys.readouterr().out
    assert_same_run(reference, d)


@pytest.mark.slow
def test_checkpoint_of_another_env_or_format_is_refused(tmp_path, capsys):
    d = finished_run(tmp_path, "run")
    for c in (d / "checkpoints").glob("step_*"):
        m = json.loads((c / "manifest.json").read_text())
        m["env"] = "Hopper-v5"
        (c / "manifest.json").write_text(json.dumps(m))
    assert main(["train", "--resume", str(d), "--total-steps", "4000"]) == 2
    assert "is from env Hopper-v5" in capsys.readouterr().err
    for c in (d / "checkpoints").glob("step_*"):
        m = json.loads((c / "manifest.json").read_text())
        m["format_version"] = 99
        (c / "manifest.json").write_text(json.dumps(m))
    assert main(["train", "--resume", str(d), "--total-steps", "4000"]) == 2
    err = capsys.readouterr().err
    assert "no valid checkpoint" in err and "format version 99" in err and err.count("\n") == 1


@pytest.mark.slow
def test_resume_with_changed_hyperparameters_is_refused(tmp_path, capsys):
    d = finished_run(tmp_path, "run")
    assert main(["train", "--resume", str(d), "--tau", "0.1"]) == 2
    assert "cannot resume with --tau 0.1: the run was started with 0.01" in capsys.readouterr().err
    assert main(["train", "--resume", str(d)]) == 2
    assert "is already complete (3000 steps); pass a larger --total-steps" in capsys.readouterr().err


@pytest.mark.slow
def test_extend_a_finished_run_with_more_steps(tmp_path):
    d = finished_run(tmp_path, "run")
    assert main(["train", "--resume", str(d), "--total-steps", "3400", "--no-tensorboard"]) == 0
    steps = [int(r["step"]) for r in table(d / "episodes.csv")]
    assert steps == list(range(200, 3401, 200))  # no duplicated and no missing rows
    evals = [int(r["step"]) for r in table(d / "eval.csv")]
    assert evals == [1000, 2000, 3000, 3400]


def test_resume_on_something_that_is_not_a_run(tmp_path, capsys):
    assert main(["train", "--resume", str(tmp_path)]) == 2
    assert "is not a ddpgx run directory" in capsys.readouterr().err
    (tmp_path / "config.json").write_text(
        json.dumps({"config": {"env": "Pendulum-v1", "preset": "pendulum"}})
    )
    assert main(["train", "--resume", str(tmp_path)]) == 2
    assert "no checkpoint to resume from" in capsys.readouterr().err


def test_unwritable_run_dir_is_refused_before_training(tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    assert main(["train", *FLAGS, "--run-dir", str(blocker / "run")]) == 2
    err = capsys.readouterr().err
    assert "cannot write to run directory" in err and "pass a writable --run-dir" in err


@pytest.mark.slow
def test_failed_checkpoint_write_keeps_the_previous_one(tmp_path, reference, monkeypatch):
    d = tmp_path / "run"
    real = ckpt.write_npz
    calls = {"n": 0}

    def disk_full(f, arrays):
        calls["n"] += 1
        if calls["n"] == 3:
            f.write(b"partial")
            raise OSError(28, "No space left on device")
        return real(f, arrays)

    monkeypatch.setattr(ckpt, "write_npz", disk_full)
    with pytest.raises(
        UserError, match=r"No space left on device.*previous checkpoint \(step_000000001200\) is intact"
    ):
        train(cfg_for(d, tensorboard=False))
    assert not list((d / "checkpoints").glob(".tmp-*"))
    assert ckpt.load(d).path.name == "step_000000001200"
    monkeypatch.setattr(ckpt, "write_npz", real)
    train(cfg_for(d, tensorboard=False), resume=True)
    assert_same_run(reference, d)


@pytest.mark.slow
def test_a_run_stopped_before_its_first_checkpoint_resumes_from_step_0(
    tmp_path, reference, monkeypatch, capsys
):
    """A signal during start-up or compilation, or a disk full at the first write, leaves config.json and maybe
    logs but no checkpoint: --resume starts the run again from its config.json and ends as the uninterrupted run
    (a rerun into the directory points to --resume, which now works)."""
    d = tmp_path / "run"
    real = ckpt.write_npz

    def disk_full(f, arrays):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(ckpt, "write_npz", disk_full)
    with pytest.raises(UserError, match="no earlier checkpoint exists; free some space and resume with"):
        train(cfg_for(d, tensorboard=False))
    assert (d / "config.json").exists() and not list((d / "checkpoints").glob("step_*"))
    monkeypatch.setattr(ckpt, "write_npz", real)
    capsys.readouterr()
    assert main(["train", "--resume", str(d), "--no-progress"]) == 0
    assert "stopped before its first checkpoint: it starts again from step 0" in capsys.readouterr().out
    assert_same_run(reference, d)


@pytest.mark.slow
def test_policy_and_eval_from_any_checkpoint(tmp_path, capsys):
    d = finished_run(tmp_path, "run")
    first = sorted((d / "checkpoints").glob("step_*"))[0]
    p_ck = load_policy(d, first)
    p_final = load_policy(d)
    obs = np.array([0.3, -0.2, 0.1], np.float32)
    assert p_ck.source == first and not np.array_equal(p_ck(obs), p_final(obs))
    assert main(["eval", str(d), "--checkpoint", str(first), "--episodes", "1"]) == 0
    assert "mean return" in capsys.readouterr().out
    (d / "final.msgpack").unlink()  # a run stopped early: its latest checkpoint is used
    assert load_policy(d).source.name == ckpt.latest_name(d)


@pytest.mark.slow
def test_keyboard_interrupt_in_process_also_checkpoints(tmp_path):
    from ddpgx.train import Interrupted

    d = tmp_path / "run"
    timer_pid = os.getpid()

    import threading

    def interrupt_when_checkpointed():
        while not (d / "checkpoints" / "latest").exists():
            time.sleep(0.01)
        os.kill(timer_pid, signal.SIGINT)

    threading.Thread(target=interrupt_when_checkpointed, daemon=True).start()
    with pytest.raises(Interrupted) as e:
        train(cfg_for(d, tensorboard=False, total_steps=200_000))
    # the signal can land while the periodic checkpoint at 600 is being written: then that one is the last
    assert e.value.step >= 600 and ckpt.latest_name(d) == f"step_{e.value.step:012d}"
