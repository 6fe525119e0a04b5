"""Run directories that never lie: one process at a time, every run continuable, checkpoints validated against
the config, logs and plots that show only what was written."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
from flax import serialization
from test_resume import FLAGS, assert_same_run, cfg_for, cli, table

from ddpgx import checkpoint as ckpt
from ddpgx import load_policy, train
from ddpgx.cli import main
from ddpgx.errors import UserError
from ddpgx.run import RunLock, lock_holder


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> Path:
    """A finished 3,000-step run, never to be modified: tests copy it."""
    d = tmp_path_factory.mktemp("finished") / "run"
    train(cfg_for(d, tensorboard=False))
    return d


def copy_run(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def wait_for(cond, p: subprocess.Popen, what: str, limit: float = 120.0) -> None:
    t0 = time.time()
    while not cond():
        assert p.poll() is None, p.communicate()
        assert time.time() - t0 < limit, f"{what} did not happen"
        time.sleep(0.02)


@pytest.mark.slow
def test_a_directory_holding_only_a_lock_file_takes_a_new_run(tmp_path, capsys):
    """What a run killed before it wrote anything leaves (a sweep stopped with runs queued): a lone .lock."""
    run = tmp_path / "run"
    lock = RunLock(run)
    run.mkdir()
    lock.acquire()
    lock.release()
    assert [p.name for p in run.iterdir()] == [".lock"]
    assert main(["train", *FLAGS, "--total-steps", "400", "--run-dir", str(run)]) == 0
    assert [int(r["step"]) for r in table(run / "episodes.csv")] == [200, 400]
    # anything else still makes it another run's directory
    other = tmp_path / "other"
    other.mkdir()
    (other / "stray.txt").write_text("x")
    assert main(["train", *FLAGS, "--run-dir", str(other)]) == 2
    assert "already exists and is not empty" in capsys.readouterr().err


# ------------------------------------------------------------------ one process at a time


@pytest.mark.slow
def test_a_second_process_is_refused_naming_the_pid_and_a_killed_holder_never_blocks(tmp_path, capsys):
    run = tmp_path / "run"
    p = subprocess.Popen(
        cli("train", *FLAGS, "--total-steps", "200000", "--run-dir", str(run)),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        wait_for(lambda: (run / "checkpoints" / "latest").exists(), p, "a checkpoint")
        assert lock_holder(run) == p.pid
        assert main(["train", "--resume", str(run), "--total-steps", "300000"]) == 2
        err = capsys.readouterr().err
        assert f"run directory {run} is in use by process {p.pid}" in err and err.count("\n") == 1
        assert (
            main(["train", *FLAGS, "--run-dir", str(run)]) == 2
        )  # a new run there: refused, naming the trainer
        err = capsys.readouterr().err
        assert (
            f"run directory {run} is being trained by process {p.pid} now" in err
            and "--resume" not in err.split(";")[0]
        )
        # readers take no lock: eval, plot and record work while the run trains
        assert main(["eval", str(run), "--episodes", "1"]) == 0
        assert "the run is unfinished, this is its latest checkpoint" in capsys.readouterr().out
        assert main(["plot", str(run), "--out", str(tmp_path / "live.png")]) == 0
    finally:
        p.send_signal(signal.SIGKILL)
        p.wait(timeout=60)
    rows = len(table(run / "episodes.csv"))
    # the kernel released the killed holder's lock: the next resume goes ahead, and no row is duplicated (to a
    # length past wherever the holder got while the readers above ran)
    total = max(3600, int(ckpt.candidates(run)[0].name.removeprefix("step_")) + 1200)
    assert main(["train", "--resume", str(run), "--total-steps", str(total), "--no-tensorboard"]) == 0
    steps = [int(r["step"]) for r in table(run / "episodes.csv")]
    assert steps == list(range(200, total + 1, 200)) and rows <= len(steps)
    evals = [int(r["step"]) for r in table(run / "eval.csv")]
    assert evals == sorted(set(evals)) and evals[-1] == total


def test_a_lock_is_exclusive_within_one_process_too(tmp_path):
    a, b = RunLock(tmp_path), RunLock(tmp_path)
    a.acquire()
    with pytest.raises(UserError, match=r"is in use by process \d+"):
        b.acquire()
    a.release()
    b.acquire()  # released: free again
    b.release()


# ------------------------------------------------------------------ every run can be continued


@pytest.mark.slow
def test_a_run_without_periodic_checkpoints_can_be_extended(tmp_path):
    """The default Pendulum run (20k steps, first periodic checkpoint at 50k) in small: its end is a checkpoint."""
    d = tmp_path / "run"
    train(cfg_for(d, tensorboard=False, checkpoint_every=1_000_000, total_steps=1_100))
    assert [p.name for p in (d / "checkpoints").glob("step_*")] == ["step_000000001100"]
    assert main(["train", "--resume", str(d), "--total-steps", "1500", "--no-tensorboard"]) == 0
    evals = [int(r["step"]) for r in table(d / "eval.csv")]
    assert evals == [1000, 1100, 1500]
    # the run stopped mid-episode at 1100: that episode was closed, the extension began a new one
    steps = [int(r["step"]) for r in table(d / "episodes.csv")]
    assert steps == [200, 400, 600, 800, 1000, 1300, 1500]
    assert load_policy(d).step == 1500


@pytest.mark.slow
def test_an_interrupted_extension_resumes_and_ends_as_the_uninterrupted_one(tmp_path, finished, capsys):
    ref = copy_run(finished, tmp_path / "ref")
    assert main(["train", "--resume", str(ref), "--total-steps", "5000", "--no-tensorboard"]) == 0
    run = copy_run(finished, tmp_path / "run")
    p = subprocess.Popen(
        cli("train", "--resume", str(run), "--total-steps", "5000", "--no-tensorboard"),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    wait_for(
        lambda: json.loads((run / "config.json").read_text())["config"]["total_steps"] == 5000, p, "start"
    )
    p.send_signal(signal.SIGKILL)
    p.wait(timeout=60)
    assert not (run / "final.msgpack").exists()  # the shorter run's final file cannot pass for the result
    # eval says what it evaluates: the latest checkpoint of an unfinished run
    assert main(["eval", str(run), "--episodes", "1"]) == 0
    out = capsys.readouterr().out
    assert "of 5000: the run is unfinished, this is its latest checkpoint" in out
    assert main(["train", "--resume", str(run), "--no-tensorboard"]) == 0  # not "already complete"
    assert_same_run(ref, run)


@pytest.mark.slow
def test_temporaries_of_a_killed_write_are_removed_at_the_next_start(tmp_path, finished, capsys):
    d = copy_run(finished, tmp_path / "run")
    tmp_ckpt = d / "checkpoints" / ".tmp-step_000000003600-4242"
    tmp_ckpt.mkdir()
    (tmp_ckpt / "replay.npz").write_bytes(b"\0" * 1000)
    (d / ".final.msgpack.tmp-4242").write_bytes(b"x")
    assert main(["train", "--resume", str(d), "--total-steps", "3200", "--no-tensorboard"]) == 0
    assert not tmp_ckpt.exists() and not (d / ".final.msgpack.tmp-4242").exists()
    assert "removed checkpoints/.tmp-step_000000003600-4242" in capsys.readouterr().out


@pytest.mark.slow
def test_a_run_that_reached_its_target_return_is_complete(tmp_path, capsys):
    d = tmp_path / "run"
    res = train(cfg_for(d, tensorboard=False, target_return=-1e9))
    assert res.steps == 1000  # the first evaluation meets it
    assert ckpt.verify(d / "checkpoints" / ckpt.latest_name(d))["finished"] == "target_return"
    assert main(["train", "--resume", str(d), "--total-steps", "4000"]) == 2
    assert "stopped at step 1000 on reaching its --target-return" in capsys.readouterr().err


# ------------------------------------------------------------------ checkpoints that pass the checksum but are wrong


def rewrite_state(path: Path, change) -> None:
    """Change a checkpoint's state.msgpack and write the matching sha256 into its manifest."""
    state = serialization.msgpack_restore((path / "state.msgpack").read_bytes())
    data = change(state)
    (path / "state.msgpack").write_bytes(data)
    m = json.loads((path / "manifest.json").read_text())
    m["files"]["state.msgpack"] = ckpt.sha256(path / "state.msgpack")
    (path / "manifest.json").write_text(json.dumps(m))


def wrong_shape(state):
    k = state["actor"]["params"]["hidden_0"]["kernel"]
    state["actor"]["params"]["hidden_0"]["kernel"] = np.zeros((k.shape[0] + 1, k.shape[1]), k.dtype)
    return serialization.msgpack_serialize(state)


def wrong_dtype(state):
    state["critic"]["params"]["hidden_1"]["bias"] = state["critic"]["params"]["hidden_1"]["bias"].astype(
        np.float64
    )
    return serialization.msgpack_serialize(state)


def missing_key(state):
    del state["critic_opt"]
    return serialization.msgpack_serialize(state)


def undecodable(state):
    return b"\xc1" * 64  # 0xc1 is never used in msgpack


@pytest.mark.parametrize(
    "change,reason,actor_ok",
    [
        (wrong_shape, "actor/params/hidden_0/kernel has shape (4, 32), the config implies (3, 32)", False),
        (wrong_dtype, "critic/params/hidden_1/bias has dtype float64, the config implies float32", True),
        (missing_key, "critic_opt/0/count is missing", True),
        (undecodable, "state.msgpack does not decode", False),
    ],
)
@pytest.mark.slow
def test_a_checkpoint_that_passes_its_checksum_but_does_not_fit_falls_back(
    tmp_path, finished, change, reason, actor_ok, capsys
):
    d = copy_run(finished, tmp_path / "run")
    latest = d / "checkpoints" / ckpt.latest_name(d)
    rewrite_state(latest, change)
    (d / "final.msgpack").unlink()
    # eval needs only the actor: it skips a checkpoint whose actor does not fit, for the previous one
    assert main(["eval", str(d), "--episodes", "1"]) == 0
    used = "step_000000003000, step 3000" if actor_ok else "step_000000002400, step 2400"
    assert used in capsys.readouterr().out
    # resume: the same, saying why, then runs the rest again
    assert main(["train", "--resume", str(d), "--no-tensorboard"]) == 0
    out = capsys.readouterr().out
    assert "skipped invalid checkpoint step_000000003000" in out and reason in out
    assert (d / "final.msgpack").read_bytes() == (finished / "final.msgpack").read_bytes()


@pytest.mark.slow
def test_final_params_that_do_not_fit_the_config_are_refused_in_one_line(tmp_path, finished):
    d = copy_run(finished, tmp_path / "run")
    payload = serialization.msgpack_restore((d / "final.msgpack").read_bytes())
    payload["actor"] = serialization.msgpack_restore(wrong_shape({"actor": payload["actor"]}))["actor"]
    (d / "final.msgpack").write_bytes(serialization.msgpack_serialize(payload))
    with pytest.raises(UserError, match="does not fit the network .* has shape"):
        load_policy(d)


# ------------------------------------------------------------------ logs that tell the truth


@pytest.mark.parametrize("damage", ["missing", "empty"])
@pytest.mark.slow
def test_a_missing_or_emptied_log_is_rebuilt_with_its_header_never_padded(tmp_path, finished, damage, capsys):
    d = copy_run(finished, tmp_path / "run")
    (d / "final.msgpack").unlink()
    shutil.rmtree(d / "checkpoints" / "step_000000003000")  # resume from 2400, where episodes.csv had rows
    if damage == "missing":
        (d / "episodes.csv").unlink()
    else:
        (d / "episodes.csv").write_bytes(b"")
    assert main(["train", "--resume", str(d), "--no-tensorboard"]) == 0
    assert "episodes.csv" in capsys.readouterr().out
    data = (d / "episodes.csv").read_bytes()
    assert b"\0" not in data and data.startswith(b"step,episode,return,length,wall_s\r\n")
    assert [int(r["step"]) for r in table(d / "episodes.csv")] == [2600, 2800, 3000]
    assert table(d / "eval.csv") == table(finished / "eval.csv")  # the others were cut as usual


@pytest.mark.slow
def test_extending_a_run_on_a_read_only_mount_is_one_line_and_touches_nothing(
    tmp_path, finished, capsys, monkeypatch
):
    import errno
    import os

    import ddpgx.run as run_mod

    d = copy_run(finished, tmp_path / "run")
    before = {p: p.read_bytes() for p in d.rglob("*") if p.is_file()}
    real_open = os.open

    def read_only(path, flags, *a):  # what a read-only mount answers to opening the lock for writing
        if str(path).endswith(".lock"):
            raise OSError(errno.EROFS, "Read-only file system")
        return real_open(path, flags, *a)

    monkeypatch.setattr(run_mod.os, "open", read_only)
    assert (
        main(["train", "--resume", str(d), "--total-steps", "4000", "--no-tensorboard", "--no-progress"]) == 2
    )
    err = capsys.readouterr().err
    assert (
        err.count("\n") == 1 and "cannot write to run directory" in err and "Read-only file system" in err
    ), err
    assert {p: p.read_bytes() for p in d.rglob("*") if p.is_file()} == before


def test_run_status_counts_the_newest_step_directory_even_before_latest_names_it(tmp_path):
    import json

    from ddpgx.run import run_status

    ck = tmp_path / "checkpoints"
    assert run_status(tmp_path) == "new"
    for step, finished in ((400, False), (1200, True)):
        (ck / f"step_{step:012d}").mkdir(parents=True)
        (ck / f"step_{step:012d}" / "manifest.json").write_text(json.dumps({"finished": finished}))
    (ck / "latest").write_text("step_000000000400\n")  # killed before the pointer named the final checkpoint
    assert run_status(tmp_path) == "finished"
    (ck / "step_000000001200" / "manifest.json").unlink()
    (ck / "step_000000001200").rmdir()
    (ck / "latest").unlink()  # killed between the first checkpoint's rename and its pointer
    assert run_status(tmp_path) == "started"  # was "new": a sweep's retry then deleted the checkpoint


def test_a_checkpoints_replay_is_written_one_array_at_a_time_and_np_load_reads_it(tmp_path):
    """The compiled loop hands the checkpoint writer rows that are fetched from the device when read; the writer
    reads each only as it writes it, so a checkpoint holds one array, not the whole replay, in host memory."""
    rng = np.random.default_rng(0)
    arrays = {"obs": rng.normal(size=(50, 3)).astype(np.float32), "size": np.asarray(50, np.int32),
              "terminated": (rng.random(50) < 0.1).astype(np.float32)}  # fmt: skip
    path = tmp_path / "replay.npz"

    class Lazy(dict):
        def __init__(self, f):
            super().__init__(arrays)
            self.f, self.written_before = f, []

        def __getitem__(self, name):
            self.written_before.append((name, self.f.tell()))
            return super().__getitem__(name)

    with open(path, "wb") as f:
        lazy = Lazy(f)
        ckpt.write_npz(f, lazy)
    sizes = [n for _, n in lazy.written_before]
    assert [k for k, _ in lazy.written_before] == list(arrays)  # each read once, in order
    assert sizes[0] < 200  # only the zip entry's header was written before obs was read
    assert sizes[1] - sizes[0] > arrays["obs"].nbytes  # obs was written before size was read
    assert sizes[2] > sizes[1]  # and size before terminated
    with np.load(path, allow_pickle=False) as z:
        assert sorted(z.files) == sorted(arrays)
        for k, v in arrays.items():
            assert z[k].dtype == v.dtype and np.array_equal(z[k], v)
