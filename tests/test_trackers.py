"""Experiment trackers: MLflow (a real SQLite store) and W&B (offline) hold what the run directory holds, a resume
after SIGKILL continues the same tracker run without sending a step twice, and a missing package is one line."""

from __future__ import annotations

import csv
import importlib.util
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ddpgx import checkpoint as ckpt
from ddpgx.cli import main
from ddpgx.errors import UserError
from ddpgx.presets import preset_config
from ddpgx.run import run_status
from ddpgx.trackers import (
    Tracker,
    _log_records,
    _Seen,
    attach_artifacts,
    check_tracker,
    open_tracker,
    read_state,
    run_tags,
    tracker_names,
    wandb_history,
)
from ddpgx.train import train

HAVE = {n: importlib.util.find_spec(n) is not None for n in ("mlflow", "wandb")}
INSTALLED = [n for n, ok in HAVE.items() if ok]
need_mlflow = pytest.mark.skipif(
    not HAVE["mlflow"], reason="mlflow is not installed (pip install 'ddpgx[mlflow]')"
)
need_any = pytest.mark.skipif(not INSTALLED, reason="neither mlflow nor wandb is installed")

TESTS = Path(__file__).parent
# MLflow's SQLite store on SQLAlchemy 2.1 (its own code; nothing ddpgx can change)
pytestmark = pytest.mark.filterwarnings("ignore:The ``noload`` loader strategy is deprecated")


@pytest.fixture(autouse=True)
def _offline(monkeypatch):
    """No network, no account: W&B offline, MLflow on the SQLite file beside the run directory."""
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("WANDB_PROJECT", raising=False)


@pytest.fixture(autouse=True, scope="module")
def _no_wandb_service_after():
    """W&B's service for this process outlives its runs, named in WANDB_SERVICE: the next module's subprocesses
    would join it. End it after this module."""
    yield
    if "wandb" in sys.modules and sys.modules["wandb"] is not None:
        sys.modules["wandb"].teardown()
    os.environ.pop("WANDB_SERVICE", None)


def rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def mlflow_client(run_dir: Path):
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=f"sqlite:///{run_dir.parent / 'mlflow.db'}")


def history(client, run_id: str, key: str) -> list[tuple[int, float]]:
    """(step, value) in the order they were logged."""
    hist = client.get_metric_history(run_id, key)
    return [(m.step, m.value) for m in sorted(hist, key=lambda m: (m.step, m.timestamp))]


def g6(v: float) -> str:
    return f"{v:.6g}"  # how the CSV logs write floats


# -- choosing and checking a tracker (no package needed)


@pytest.mark.parametrize("name", ["mlflow", "wandb"])
def test_tracker_package_is_installed(name):
    """`make test` installs both trackers' extras, so the tracker tests below run rather than skip: a missing
    package fails here, naming the extra."""
    assert HAVE[name], (
        f"{name} is not installed, so its tracker tests would skip: pip install 'ddpgx[{name}]'"
    )


def test_tracker_names():
    assert tracker_names("none") == [] and tracker_names("") == []
    assert tracker_names("mlflow") == ["mlflow"]
    assert tracker_names(" MLflow , wandb,mlflow") == ["mlflow", "wandb"]
    for bad in ("tensorboard", "none,mlflow", "mlflow;wandb"):
        with pytest.raises(UserError, match="unknown --tracker"):
            tracker_names(bad)
    assert (
        type(open_tracker(preset_config("pendulum", "Pendulum-v1"), Path("/nonexistent"), False)) is Tracker
    )


@pytest.mark.parametrize("name", ["mlflow", "wandb"])
def test_missing_package_is_one_line_and_exit_2_before_anything_exists(name, monkeypatch, capsys, tmp_path):
    monkeypatch.setitem(sys.modules, name, None)  # as if not installed
    with pytest.raises(UserError, match=rf"pip install 'ddpgx\[{name}\]'"):
        check_tracker(preset_config("pendulum", "Pendulum-v1", tracker=name))
    run = tmp_path / "run"
    code = main(["train", "--env", "Pendulum-v1", "--total-steps", "400", "--tracker", f"{name}",
                 "--run-dir", str(run), "--no-progress"])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and f"pip install 'ddpgx[{name}]'" in err and "Traceback" not in err, err
    assert list(tmp_path.iterdir()) == []  # no run directory, no mlflow.db


def test_unknown_tracker_is_one_line(capsys, tmp_path):
    assert main(["train", "--tracker", "neptune", "--run-dir", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unknown --tracker 'neptune'" in err
    assert list(tmp_path.iterdir()) == []


def test_tags_of_sweep_cells_and_tune_trials(tmp_path):
    sweep = tmp_path / "tau-sweep"
    sweep.mkdir()
    (sweep / "sweep.json").write_text("{}")
    cfg = preset_config("td3", "Hopper-v5", seed=3)
    tags = run_tags(cfg, sweep / "Hopper-v5__big__tau=0.01__s3")
    assert tags["sweep"] == "tau-sweep" and tags["variant"] == "big__tau=0.01" and tags["seed"] == "3"
    assert run_tags(cfg, sweep / "Hopper-v5__td3__s3")["variant"] == "td3"
    study = tmp_path / "hopper-tune"
    study.mkdir()
    (study / "study.db").write_text("")
    tags = run_tags(cfg.replace(seed=1), study / "trial_0007__s1")
    assert tags["study"] == "hopper-tune" and tags["variant"] == "trial_0007" and tags["trial"] == "7"
    assert tags["seed"] == "1"
    alone = run_tags(cfg, tmp_path / "myrun")
    assert "sweep" not in alone and "study" not in alone and alone["env"] == "Hopper-v5"


def test_what_a_resumed_tracker_already_holds_is_skipped():
    seen = _Seen({"a": (5, 2), "b": (3, 1)})
    assert [seen.new("a", s) for s in (1, 4, 5, 5, 5, 6, 7)] == [False, False, False, False, True, True, True]
    assert [seen.new("b", s) for s in (3, 4)] == [False, True]
    assert seen.new("c", 0)


# -- the trackers themselves (real stores, no network)


@pytest.mark.slow
@need_any
def test_tracker_run_holds_what_the_run_directory_holds(tmp_path):
    run = tmp_path / "run"
    cfg = preset_config("pendulum", "Pendulum-v1", total_steps=3000, eval_every=1000, tracker=",".join(INSTALLED),
                        run_dir=str(run), progress=False, tensorboard=False)  # fmt: skip
    train(cfg)
    evals, episodes = rows(run / "eval.csv"), rows(run / "episodes.csv")
    assert [int(r["step"]) for r in evals] == [1000, 2000, 3000]
    state = read_state(run)
    saved = json.loads((run / "config.json").read_text())["config"]
    files = {"returns.png", "best.msgpack", "final.msgpack", "config.json"}
    if HAVE["mlflow"]:
        client = mlflow_client(run)
        (r,) = client.search_runs([client.get_experiment_by_name("ddpgx").experiment_id])
        assert r.info.run_id == state["mlflow"]["run_id"] and r.info.status == "FINISHED"
        got = history(client, r.info.run_id, "eval/mean_return")
        assert [(s, g6(v)) for s, v in got] == [(int(e["step"]), e["mean_return"]) for e in evals]
        got = history(client, r.info.run_id, "episode/return")
        assert [(s, g6(v)) for s, v in got] == [(int(e["step"]), e["return"]) for e in episodes]
        assert {"train/critic_loss", "train/actor_loss", "train/mean_q", "train/sps"} <= set(r.data.metrics)
        assert {a.path for a in client.list_artifacts(r.info.run_id)} == files
        assert r.data.params["tracker"] == cfg.tracker and r.data.params["total_steps"] == "3000"
        assert r.data.params["actor_hidden"] == json.dumps(saved["actor_hidden"])
        assert r.data.tags["env"] == "Pendulum-v1" and r.data.tags["seed"] == "0"
        assert (tmp_path / "mlartifacts").is_dir()  # beside the database, not in the working directory
    if HAVE["wandb"]:
        hist = wandb_history(run)
        steps = [h["_step"] for h in hist]
        assert steps == sorted(set(steps))  # one row per env step
        got = [(h["_step"], g6(h["eval/mean_return"])) for h in hist if "eval/mean_return" in h]
        assert got == [(int(e["step"]), e["mean_return"]) for e in evals]
        assert [h["_step"] for h in hist if "episode/return" in h] == [int(e["step"]) for e in episodes]
        (offline,) = (run / "wandb").glob(f"offline-run-*-{state['wandb']['id']}")
        assert files <= {p.name for p in (offline / "files").iterdir()}
        # a torn tail (a killed run's last write) reads as the rows before it
        (wb,) = offline.glob("*.wandb")
        torn = tmp_path / "torn.wandb"
        torn.write_bytes(wb.read_bytes()[: wb.stat().st_size * 2 // 3])
        assert 0 < len(list(_log_records(torn))) < len(list(_log_records(wb)))


@pytest.mark.slow
@need_any
def test_a_resumed_tracker_run_skips_what_it_holds_and_sweeps_are_tagged(tmp_path):
    """Without training: a sweep cell's tracker run, stopped, then resumed with steps it already holds."""
    out = tmp_path / "my-sweep"
    out.mkdir()
    (out / "sweep.json").write_text("{}")
    run = out / "Pendulum-v1__wide__s2"
    run.mkdir()
    cfg = preset_config("pendulum", "Pendulum-v1", seed=2, tracker=",".join(INSTALLED), run_dir=str(run))
    t = open_tracker(cfg, run, False)
    for step in (1, 2, 3):
        t.scalars(step, {"x": float(step)})
    t.scalars(3, {"x": 30.0})  # two values at one step (two envs' episodes)
    t.close()  # stopped before the end: no artifacts
    t = open_tracker(cfg, run, True)
    for step, v in ((2, 2.0), (3, 3.0), (3, 30.0), (4, 4.0)):  # a resume replays from its checkpoint
        t.scalars(step, {"x": v})
    t.artifacts([])
    t.close()
    (run / "policy.gif").write_bytes(b"GIF89a")  # made later by `ddpgx record`
    attach_artifacts(cfg, run, [run / "policy.gif"])
    if HAVE["mlflow"]:
        client = mlflow_client(run)
        exp = client.get_experiment_by_name("my-sweep")
        (r,) = client.search_runs([exp.experiment_id])
        assert sorted(history(client, r.info.run_id, "x")) == [
            (1, 1.0),
            (2, 2.0),
            (3, 3.0),
            (3, 30.0),
            (4, 4.0),
        ]
        assert r.data.tags["sweep"] == "my-sweep" and r.data.tags["variant"] == "wide"
        assert r.data.tags["seed"] == "2" and r.info.status == "FINISHED"
        assert [a.path for a in client.list_artifacts(r.info.run_id)] == ["policy.gif"]
    if HAVE["wandb"]:
        # W&B keeps one value per key and step: the last
        assert [(h["_step"], h["x"]) for h in wandb_history(run)] == [(1, 1.0), (2, 2.0), (3, 30.0), (4, 4.0)]
        sessions = sorted((run / "wandb").glob(f"offline-run-*-{read_state(run)['wandb']['id']}"))
        assert len(sessions) == 3 and (sessions[-1] / "files" / "policy.gif").is_file()  # 3: the GIF's


@pytest.mark.slow
@need_mlflow
def test_what_the_store_lost_is_sent_from_the_csv_logs_on_resume(tmp_path, monkeypatch):
    """A kill loses MLflow's unsent batch; the CSV logs, cut at the checkpoint, hold those steps."""
    import ddpgx.trackers as trackers

    monkeypatch.setattr(trackers, "FLUSH_S", 1e9)  # send only when asked
    run = tmp_path / "run"
    run.mkdir()
    cfg = preset_config("pendulum", "Pendulum-v1", tracker="mlflow", run_dir=str(run))
    t = open_tracker(cfg, run, False)
    t.scalars(1000, {"eval/mean_return": -1000.0, "eval/std_return": 1.0})
    t.flush()  # type: ignore[attr-defined]
    t.scalars(2000, {"eval/mean_return": -500.0, "eval/std_return": 2.0})  # never sent: the process is killed
    (run / "eval.csv").write_text("step,mean_return,std_return,wall_s\n1000,-1000,1,1.5\n2000,-500,2,3\n")
    t = open_tracker(cfg, run, True)  # resumed from the checkpoint at step 2000
    t.scalars(3000, {"eval/mean_return": -150.0, "eval/std_return": 3.0})
    t.close()
    client = mlflow_client(run)
    (r,) = client.search_runs([client.get_experiment_by_name("ddpgx").experiment_id])
    assert history(client, r.info.run_id, "eval/mean_return") == [
        (1000, -1000.0),
        (2000, -500.0),
        (3000, -150.0),
    ]
    assert history(client, r.info.run_id, "eval/std_return") == [(1000, 1.0), (2000, 2.0), (3000, 3.0)]


# the CLI run killed below: ddpgx.cli.main with MLflow's batches sent at every scalar, so that the store holds steps
# past the checkpoint the resume replays from
KILLED = "import sys; import ddpgx.trackers as t; t.FLUSH_S = 0.0; from ddpgx.cli import main; sys.exit(main(sys.argv[1:]))"
FLAGS = [
    "--env", "Pendulum-v1", "--preset", "pendulum", "--seed", "5", "--total-steps", "3000",
    "--learning-starts", "300", "--actor-hidden", "32", "32", "--critic-hidden", "32", "32", "--batch-size", "32",
    "--update-every", "2", "--eval-every", "500", "--eval-episodes", "2", "--log-every", "100",
    "--checkpoint-every", "600", "--no-progress", "--no-plot", "--no-tensorboard",
]  # fmt: skip


def held_step(run: Path) -> int:
    """The last train.csv step MLflow holds (the CSV's, without MLflow: W&B holds nothing it could lose)."""
    state = read_state(run)
    if HAVE["mlflow"]:
        if "mlflow" not in state:
            return -1
        hist = mlflow_client(run).get_metric_history(state["mlflow"]["run_id"], "train/critic_loss")
        return max((m.step for m in hist), default=-1)
    text = (run / "train.csv").read_text() if (run / "train.csv").is_file() else ""
    lines = [ln for ln in text[: text.rfind("\n") + 1].splitlines()[1:] if ln]
    return int(lines[-1].split(",")[0]) if lines else -1


@pytest.mark.slow
@need_any
def test_sigkill_then_resume_continues_the_tracker_run_without_a_step_twice(tmp_path):
    trackers = ",".join(INSTALLED)
    # its own W&B service (this process's, named in WANDB_SERVICE once a test used W&B, would outlive the kill)
    env = {k: v for k, v in os.environ.items() if k != "WANDB_SERVICE"} | {"PYTHONPATH": str(TESTS)}
    rnd = random.Random()
    for _ in range(4):  # the kill must land after the store holds a step past the checkpoint, before the end
        run = tmp_path / "run"
        shutil.rmtree(run, ignore_errors=True)
        cmd = [sys.executable, "-c", KILLED, "train", *FLAGS, "--tracker", trackers, "--run-dir", str(run)]
        p = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        t0 = time.time()
        while (name := ckpt.latest_name(run) if run.is_dir() else None) is None:
            assert p.poll() is None, p.communicate()
            assert time.time() - t0 < 300, "no checkpoint appeared"
            time.sleep(0.02)
        first = int(name.split("_")[1])
        while held_step(run) <= first and p.poll() is None:  # the tracker holds a step past the checkpoint
            time.sleep(0.02)
        time.sleep(rnd.uniform(0.0, 0.05))
        p.send_signal(signal.SIGKILL)
        p.wait(timeout=60)
        if p.returncode == -signal.SIGKILL and run_status(run) != "finished":
            break
    else:
        pytest.fail("could not kill the run before it finished")
    resumed_from = int(ckpt.latest_name(run).split("_")[1])
    before = read_state(run)
    client = mlflow_client(run) if HAVE["mlflow"] else None
    if client is not None:
        held = max(s for s, _ in history(client, before["mlflow"]["run_id"], "train/critic_loss"))
        assert held > resumed_from  # the resume replays steps the store already holds
    assert main(["train", "--resume", str(run), "--no-tensorboard"]) == 0
    assert read_state(run) == before  # the same tracker runs
    evals, episodes, trains = rows(run / "eval.csv"), rows(run / "episodes.csv"), rows(run / "train.csv")
    if client is not None:
        (r,) = client.search_runs([client.get_experiment_by_name("ddpgx").experiment_id])
        assert r.info.run_id == before["mlflow"]["run_id"] and r.info.status == "FINISHED"
        for key in r.data.metrics:
            steps = [s for s, _ in history(client, r.info.run_id, key)]
            assert len(steps) == len(set(steps)), f"{key} has a step twice"
        got = history(client, r.info.run_id, "eval/mean_return")
        assert [(s, g6(v)) for s, v in got] == [(int(e["step"]), e["mean_return"]) for e in evals]
        got = history(client, r.info.run_id, "episode/return")
        assert [(s, g6(v)) for s, v in got] == [(int(e["step"]), e["return"]) for e in episodes]
        got = history(client, r.info.run_id, "train/critic_loss")
        assert [(s, g6(v)) for s, v in got] == [(int(e["step"]), e["critic_loss"]) for e in trains]
        assert {a.path for a in client.list_artifacts(r.info.run_id)} >= {"final.msgpack", "config.json"}
    if HAVE["wandb"]:
        wid = before["wandb"]["id"]
        assert len(list((run / "wandb").glob(f"offline-run-*-{wid}"))) == 2  # two sessions of one W&B run
        hist = wandb_history(run)
        steps = [h["_step"] for h in hist]
        assert steps == sorted(set(steps)), "a step twice"
        got = [(h["_step"], g6(h["eval/mean_return"])) for h in hist if "eval/mean_return" in h]
        assert got == [(int(e["step"]), e["mean_return"]) for e in evals]
        assert [h["_step"] for h in hist if "episode/return" in h] == [int(e["step"]) for e in episodes]
