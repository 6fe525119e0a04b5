"""ddpgx tune: trials are ordinary runs, the objective is the mean of the last evaluations, pruned trials stop and
are marked, a stopped study continues its unfinished trial, and bad input is one line."""

from __future__ import annotations

import csv
import json
import threading
import time
from pathlib import Path

import optuna
import pytest

from ddpgx import load_policy
from ddpgx.cli import main
from ddpgx.run import run_status
from ddpgx.tune import TuneSpec, run_tune

SPACE = {
    "tau": {"type": "float", "low": 0.001, "high": 0.05, "log": True},
    "batch_size": {"type": "categorical", "choices": [64, 128]},
}
SMALL = {"learning_starts": 200, "actor_hidden": (32, 32), "critic_hidden": (32, 32), "eval_episodes": 2,
         "checkpoint_every": 400}  # fmt: skip


def spec(out: Path, **over) -> TuneSpec:
    base = dict(env="Pendulum-v1", trials=2, total_steps=1200, eval_every=400, out=str(out), space=SPACE,
                sampler="random", pruner="none", set=dict(SMALL), max_parallel=2)  # fmt: skip
    return TuneSpec(**{**base, **over})


def trials_csv(out: Path) -> list[dict]:
    return list(csv.DictReader(open(out / "trials.csv")))


@pytest.mark.slow
def test_trials_are_ordinary_runs_and_the_objective_is_the_mean_of_the_last_evaluations(tmp_path):
    out = tmp_path / "t"
    run_tune(spec(out))
    study = optuna.load_study(study_name="ddpgx", storage=f"sqlite:///{out / 'study.db'}")
    trials = study.get_trials()
    assert [t.state for t in trials] == [optuna.trial.TrialState.COMPLETE] * 2
    rows = trials_csv(out)
    assert [r["state"] for r in rows] == ["complete"] * 2
    for t, row in zip(trials, rows, strict=True):
        run = out / f"trial_{t.number:04d}__s0"
        evals = [float(r["mean_return"]) for r in csv.DictReader(open(run / "eval.csv"))]
        assert len(evals) == 3 and t.value == pytest.approx(sum(evals[-3:]) / 3)
        assert float(row["value"]) == pytest.approx(t.value, rel=1e-5) and row["runs"] == run.name
        cfg = json.loads((run / "config.json").read_text())["config"]
        assert cfg["tau"] == t.params["tau"] and cfg["batch_size"] == t.params["batch_size"]
        assert 0.001 <= cfg["tau"] <= 0.05 and cfg["actor_hidden"] == [32, 32]
        assert load_policy(run).step == 1200  # eval, record, export read it like any run
        # every evaluation was reported to Optuna at its step
        assert sorted(t.intermediate_values) == [400, 800, 1200]
    run_tune(spec(out, trials=4))  # the same study, grown by a new driver: two more trials
    assert len(trials_csv(out)) == 4
    params = [tuple(sorted(t.params.items())) for t in optuna.load_study(
        study_name="ddpgx", storage=f"sqlite:///{out / 'study.db'}").get_trials()]  # fmt: skip
    assert len(set(params)) == 4, params  # the new driver's sampler does not replay trials 0 and 1


@pytest.mark.slow
def test_best_prints_the_best_trials_and_writes_a_sweep_variant_a_command_and_the_plots(tmp_path, capsys):
    out = tmp_path / "t"
    study = run_tune(spec(out))
    best = study.best_trial
    capsys.readouterr()
    assert main(["tune", str(out), "--best"]) == 0
    text = capsys.readouterr().out
    assert "ddpgx train --env Pendulum-v1 --preset pendulum" in text and "--learning-starts 200" in text
    from ddpgx.grid import build_grid, load_toml

    variant = load_toml(out / "best.toml")
    (cell, *_) = build_grid(variant)  # the best config, as a sweep takes it: the tuned and the fixed fields
    assert cell.cfg.tau == best.params["tau"] and cell.cfg.batch_size == best.params["batch_size"]
    assert cell.cfg.learning_starts == 200 and cell.cfg.actor_hidden == (32, 32)
    assert (out / "history.png").stat().st_size > 1000 and (out / "importance.png").stat().st_size > 1000


@pytest.mark.slow
def test_a_pruned_trial_stops_with_a_checkpoint_and_is_marked_pruned(tmp_path):
    out = tmp_path / "t"
    run_tune(spec(out, trials=2, total_steps=20_000), pruner=optuna.pruners.ThresholdPruner(lower=1e9))
    rows = trials_csv(out)
    assert [r["state"] for r in rows] == ["pruned", "pruned"]
    for r in rows:
        run = out / r["runs"]
        assert run_status(run) == "started"  # stopped at an episode end with a checkpoint, not finished
        assert int(list(csv.DictReader(open(run / "eval.csv")))[-1]["step"]) < 20_000


@pytest.mark.slow
def test_a_stopped_study_continues_its_unfinished_trial(tmp_path):
    out = tmp_path / "t"
    s = spec(out, trials=1, total_steps=3000, eval_every=500, max_parallel=1)

    def stop_when_checkpointed() -> None:
        while not list(out.glob("trial_0000__s0/checkpoints/step_*")):
            time.sleep(0.1)
        (out / ".stop").write_text("stop\n")

    watcher = threading.Thread(target=stop_when_checkpointed, daemon=True)
    watcher.start()
    run_tune(s)
    study = optuna.load_study(study_name="ddpgx", storage=f"sqlite:///{out / 'study.db'}")
    assert [t.state for t in study.get_trials()] == [optuna.trial.TrialState.RUNNING]
    assert run_status(out / "trial_0000__s0") == "started"
    run_tune(s)  # the same command: the trial resumes from its checkpoint and completes
    study = optuna.load_study(study_name="ddpgx", storage=f"sqlite:///{out / 'study.db'}")
    (t,) = study.get_trials()
    assert t.state == optuna.trial.TrialState.COMPLETE and t.number == 0
    steps = [int(r["step"]) for r in csv.DictReader(open(out / "trial_0000__s0" / "eval.csv"))]
    assert steps == [500, 1000, 1500, 2000, 2500, 3000]  # one continuous run, each evaluation once


def test_bad_tune_inputs_are_one_line(tmp_path, capsys, monkeypatch):
    bad = tmp_path / "space.toml"
    bad.write_text('[taux]\ntype = "float"\nlow = 0.1\nhigh = 0.2\n')
    spaces = {
        "gauss.toml": (
            '[tau]\ntype = "gauss"\nlow = 0.1\nhigh = 0.2\n',
            'needs type = "float", "int" or "categorical"',
        ),
        "upside.toml": ('[tau]\ntype = "float"\nlow = 0.2\nhigh = 0.1\n', "needs numbers low < high"),
        "nochoice.toml": ('[noise]\ntype = "categorical"\n', "needs choices = [...]"),
        "broken.toml": ("[tau\n", "is not valid TOML"),
    }
    bad_spaces = []
    for name, (text, message) in spaces.items():
        (tmp_path / name).write_text(text)
        bad_spaces.append((["tune", "--env", "Pendulum-v1", "--out", str(tmp_path / name) + ".out", "--space",
                            str(tmp_path / name)], message))  # fmt: skip
    for argv, message in (
        *bad_spaces,
        (
            ["tune", "--env", "Pendulum-v1", "--out", str(tmp_path / "a"), "--space", str(bad)],
            "not a Config field",
        ),
        (["tune", "--env", "Pendulum-v1", "--out", str(tmp_path / "b"), "--trials", "0"], "must be positive"),
        (["tune", "--env", "NoSuchEnv-v0", "--out", str(tmp_path / "c")], "unknown environment"),
        (["tune", str(tmp_path), "--best"], "holds no study.db"),
        (
            [
                "tune",
                "--env",
                "Pendulum-v1",
                "--out",
                str(tmp_path / "e"),
                "--storage",
                "postgresql://nobody@127.0.0.1:1/x",
            ],
            "cannot open the study storage",
        ),
    ):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and message in err, err
    monkeypatch.setitem(__import__("sys").modules, "optuna", None)
    assert main(["tune", "--env", "Pendulum-v1", "--out", str(tmp_path / "d")]) == 2
    err = capsys.readouterr().err
    assert "pip install 'ddpgx[tune]'" in err and err.count("\n") == 1


TUNE_FILE = """
env = "Pendulum-v1"
trials = 6
total_steps = 2000
eval_every = 400
sampler = "random"
pruner = "none"
max_parallel = 2
out = "{out}"

[set]
learning_starts = 200
actor_hidden = [32, 32]
critic_hidden = [32, 32]
eval_episodes = 2
checkpoint_every = 400

[space.tau]
type = "float"
low = 0.001
high = 0.05
log = true

[space.batch_size]
type = "categorical"
choices = [64, 128]
"""


@pytest.mark.slow
def test_a_sigkilled_driver_then_the_same_command_finishes_the_six_trials_with_none_lost_or_repeated(
    tmp_path,
):
    import os
    import signal
    import subprocess
    import sys

    out = tmp_path / "t"
    study_file = tmp_path / "study.toml"
    study_file.write_text(TUNE_FILE.format(out=out))
    cmd = [sys.executable, "-m", "ddpgx.cli", "tune", str(study_file), "--no-live"]
    log = open(tmp_path / "driver.log", "w")
    p = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)

    def complete() -> dict[str, str]:
        try:
            return {r["number"]: r["value"] for r in trials_csv(out) if r["state"] == "complete"}
        except (OSError, KeyError):
            return {}

    def mid_run() -> list[Path]:  # trial runs with a checkpoint that have not finished
        return [d for d in out.glob("trial_*__s0") if (d / "checkpoints" / "latest").exists()
                and not (d / "final.msgpack").exists()]  # fmt: skip

    t0 = time.time()
    while not (len(complete()) >= 2 and mid_run()):
        assert p.poll() is None, (tmp_path / "driver.log").read_text()
        assert time.time() - t0 < 300, "the study did not get going"
        time.sleep(0.05)
    os.kill(p.pid, signal.SIGKILL)  # the driver, mid-study: no chance to checkpoint or to tell the storage
    p.wait(timeout=30)
    kept, interrupted = complete(), mid_run()
    assert 2 <= len(kept) < 6 and interrupted
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=600)  # the same command, at once
    assert r.returncode == 0, r.stdout + r.stderr
    study = optuna.load_study(study_name="ddpgx", storage=f"sqlite:///{out / 'study.db'}")
    trials = study.get_trials()
    assert sorted(t.number for t in trials) == list(
        range(6)
    )  # six trials, each once: none lost, none repeated
    assert {t.state for t in trials} == {optuna.trial.TrialState.COMPLETE}
    assert sorted(p.name for p in out.glob("trial_*__s*")) == [f"trial_{n:04d}__s0" for n in range(6)]
    rows = {r["number"]: r["value"] for r in trials_csv(out)}
    assert all(rows[n] == v for n, v in kept.items())  # the completed trials kept, not re-run
    for run in interrupted:  # resumed from its checkpoint, not restarted: every evaluation and episode once
        assert [int(e["step"]) for e in csv.DictReader(open(run / "eval.csv"))] == [
            400,
            800,
            1200,
            1600,
            2000,
        ]
        assert [int(e["step"]) for e in csv.DictReader(open(run / "episodes.csv"))] == list(
            range(200, 2001, 200)
        )
        assert run_status(run) == "finished"


@pytest.mark.slow
def test_a_killed_worker_s_trial_resumes_from_its_checkpoint_and_ends_bitwise_equal(tmp_path):
    import os
    import signal

    from ddpgx.run import lock_holder

    s = dict(trials=1, total_steps=3000, eval_every=500, max_parallel=1)
    run_tune(spec(tmp_path / "ref", **s), live=False)  # the same trial (the sampler is seeded), uninterrupted
    out = tmp_path / "t"
    run = out / "trial_0000__s0"
    killed: list[int] = []

    def kill_the_worker() -> None:
        while not (run / "checkpoints" / "latest").exists():
            time.sleep(0.02)
        pid = lock_holder(run)
        killed.append(pid)
        os.kill(pid, signal.SIGKILL)

    watcher = threading.Thread(target=kill_the_worker, daemon=True)
    watcher.start()
    run_tune(spec(out, **s), live=False)
    watcher.join(timeout=5)
    assert killed and killed[0] != os.getpid() and lock_holder(run) != killed[0]  # another worker finished it
    (t,) = optuna.load_study(study_name="ddpgx", storage=f"sqlite:///{out / 'study.db'}").get_trials()
    assert t.state == optuna.trial.TrialState.COMPLETE
    assert [int(e["step"]) for e in csv.DictReader(open(run / "eval.csv"))] == list(range(500, 3001, 500))
    ref = tmp_path / "ref" / "trial_0000__s0"
    assert (run / "final.msgpack").read_bytes() == (ref / "final.msgpack").read_bytes()
    assert len(list(csv.DictReader(open(run / "episodes.csv")))) == 15
    assert [r["return"] for r in csv.DictReader(open(run / "episodes.csv"))] == [
        r["return"] for r in csv.DictReader(open(ref / "episodes.csv"))
    ]


def test_a_study_continued_with_other_settings_is_refused_in_one_line_and_more_trials_are_allowed(tmp_path):
    from ddpgx.errors import UserError
    from ddpgx.tune import open_study

    out = tmp_path / "t"
    out.mkdir()
    open_study(spec(out), out)  # records the study's settings
    open_study(spec(out, trials=5, max_parallel=1), out)  # more trials, other resources: the same study
    with pytest.raises(UserError) as e:
        open_study(spec(out, total_steps=2400, seeds=[0, 1]), out)
    msg = str(e.value)
    assert "was made with --total-steps 1200, not 2400 (and --seeds differ too)" in msg and "\n" not in msg
    with pytest.raises(UserError, match="was made with --space"):
        open_study(spec(out, space={"tau": SPACE["tau"]}), out)
    # the same settings written two ways are the same study: the env's default preset by name, the default cadence
    other = tmp_path / "u"
    other.mkdir()
    open_study(spec(other, preset="", eval_every=0), other)
    open_study(spec(other, preset="pendulum", eval_every=120), other)  # 1200 steps / 10


@pytest.mark.slow
def test_drivers_sharing_a_storage_keep_to_their_own_trials_and_count_the_others_running(tmp_path):
    storage = f"sqlite:///{tmp_path / 'shared.db'}"
    a, b = tmp_path / "a", tmp_path / "b"
    from ddpgx.tune import distributions, open_study

    a.mkdir()
    study = open_study(spec(a, storage=storage), a)
    other = study.ask(distributions(SPACE))  # driver A's trial, running on A's machine
    other.set_user_attr("out", str(a.resolve()))
    run_tune(spec(b, storage=storage, trials=2), live=False)
    trials = optuna.load_study(study_name="ddpgx", storage=storage).get_trials()
    # B did not take A's running trial (before, it resumed it in b/trial_0000 from step 0), and counted it
    assert [(t.number, t.state, t.user_attrs["out"]) for t in trials] == [
        (0, optuna.trial.TrialState.RUNNING, str(a.resolve())),
        (1, optuna.trial.TrialState.COMPLETE, str(b.resolve())),
    ]
    assert sorted(p.name for p in b.glob("trial_*")) == ["trial_0001__s0"]
