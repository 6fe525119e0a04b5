"""Bad input, round five (issue #39, section 6): tune, report, plot, sweep and eval --onnx. Each user error is one
line on stderr, exit 2 (1 for a tune whose every trial failed), no traceback, and nothing created or changed on
disk; report and plot find the runs of seed groups and tune studies in a folder; two sweep drivers started at
once on one --out: the loser names the process that holds it."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import numpy as np
import pytest

from ddpgx.cli import main
from ddpgx.errors import UserError

pytest.importorskip("optuna", reason="the tune extra is installed by `make test`")


def listing(root: Path) -> list[tuple[str, int, int]]:
    """Every file and directory under ``root``: (path, size, mtime) — what 'nothing created or changed' compares."""
    out = []
    for p in sorted(root.rglob("*")):
        st = p.lstat()
        out.append((str(p.relative_to(root)), 0 if p.is_dir() else st.st_size, st.st_mtime_ns))
    return out


def one_line(capsys, argv: list[str], code: int = 2) -> str:
    got = main(argv)
    err = capsys.readouterr().err
    assert got == code and err.count("\n") == 1 and "Traceback" not in err, (got, err)
    return err


def fake_run(path: Path, seed: int, finals: float, **config) -> Path:
    """A run directory as report and plot read it: config.json, eval.csv (evaluations at 100 and 200 steps, the
    last one ``finals``) and episodes.csv."""
    path.mkdir(parents=True)
    cfg = {"env": "Pendulum-v1", "preset": "pendulum", "seed": seed, **config}
    (path / "config.json").write_text(json.dumps({"config": cfg}))
    (path / "eval.csv").write_text(
        f"step,mean_return,std_return,wall_s\n100,-1000.0,1.0,1.5\n200,{finals},1.0,3.0\n"
    )
    (path / "episodes.csv").write_text("step,episode,return,length,wall_s\n200,1,-900.0,200,2.0\n")
    return path


# ---------------------------------------------------------------------------------------------------------- tune

SPACES = {
    "tau.toml": '[tau]\ntype = "float"\nlow = 0.001\nhigh = 0.05\n',
    "nolow.toml": '[tau]\ntype = "float"\nhigh = 0.05\n',
    "upside.toml": '[tau]\ntype = "float"\nlow = 0.5\nhigh = 0.05\n',
    "gauss.toml": '[tau]\ntype = "normal"\nlow = 0.1\nhigh = 0.5\n',
    "nochoice.toml": '[noise]\ntype = "categorical"\nchoices = []\n',
    "batch_a.toml": '[batch_size]\ntype = "categorical"\nchoices = ["a"]\n',
    "batch_float.toml": '[batch_size]\ntype = "float"\nlow = 16\nhigh = 64\n',
    "negative_tau.toml": '[tau]\ntype = "float"\nlow = -1.0\nhigh = 0.5\n',
    "arch.toml": '[net_arch]\ntype = "categorical"\nchoices = ["huge"]\n',
    "seed.toml": '[seed]\ntype = "int"\nlow = 0\nhigh = 5\n',
}
TUNE_CASES = [
    (["--out", "afile"], "--out {tmp}/afile is an existing file; a study needs a directory"),
    (["--space", "tau.toml", "--set", "tau=0.01"],
     "--set tau: the search space tunes tau; drop it from --set, or from the space"),
    (["--set", "actor_hidden=32 32"],  # the default space's net_arch sets both networks' sizes
     "--set actor_hidden: the search space tunes actor_hidden (through [net_arch], which sets actor_hidden and "
     "critic_hidden)"),
    (["--space", "tau.toml", "--set", "seed=3"], "--set seed: the tune sets seed itself; use --seeds"),
    (["--space", "tau.toml", "--set", "total_steps=5"], "--set total_steps: the tune sets total_steps itself"),
    (["--space", "nolow.toml"], "nolow.toml: [tau] needs numbers low < high (got low=None, high=0.05)"),
    (["--space", "upside.toml"], "upside.toml: [tau] needs numbers low < high (got low=0.5, high=0.05)"),
    (["--space", "gauss.toml"], 'gauss.toml: [tau] needs type = "float", "int" or "categorical"'),
    (["--space", "nochoice.toml"], "nochoice.toml: [noise] is categorical and needs choices = [...]"),
    (["--space", "batch_a.toml"],
     "batch_a.toml: [batch_size] choice 'a': batch_size=a is not valid: batch_size must be an int"),
    (["--space", "batch_float.toml"],
     'batch_float.toml: [batch_size] type = "float" gives 16.0: batch_size=16.0 is not valid: batch_size must be '
     "an int"),
    (["--space", "negative_tau.toml"], 'negative_tau.toml: [tau] type = "float" gives -1.0: --tau must be in (0, 1]'),
    (["--space", "arch.toml"], "arch.toml: [net_arch] choice 'huge': net_arch='huge' is not valid: net_arch must "
     "be one of small, medium, big"),
    (["--space", "seed.toml"], "seed.toml: [seed] is set by the tune itself (--seeds)"),
    (["--space", "tau.toml", "--set", "eval_episodes=-1"],
     "the trials' fixed fields (--set, --preset) make no valid run: --eval-episodes must be a positive integer"),
    (["--space", "tau.toml", "--storage", "postgresql://nobody@127.0.0.1:1/x"], "cannot open the study storage"),
]  # fmt: skip


@pytest.mark.parametrize("args,expected", TUNE_CASES, ids=[" ".join(a) for a, _ in TUNE_CASES])
def test_bad_tune_input_is_one_line_before_the_study_directory_is_made(
    tmp_path, capsys, monkeypatch, args, expected
):
    monkeypatch.chdir(tmp_path)
    for name, text in SPACES.items():
        (tmp_path / name).write_text(text)
    (tmp_path / "afile").write_text("a file\n")
    before = listing(tmp_path)
    argv = ["tune", "--env", "Pendulum-v1", "--trials", "1", "--total-steps", "1000", "--no-live"]
    if "--out" not in args:
        argv += ["--out", "study"]
    err = one_line(capsys, argv + args)
    assert expected.format(tmp=tmp_path) in err, err
    assert listing(tmp_path) == before


def test_a_tune_on_a_study_another_driver_holds_names_it_and_changes_nothing(tmp_path, capsys):
    from ddpgx.run import RunLock

    out = tmp_path / "study"
    out.mkdir()
    (out / "study.db").write_bytes(b"")  # what the running driver's study would be: not touched
    holder = RunLock(out)
    holder.acquire()  # as a running driver holds it
    try:
        before = listing(tmp_path)
        err = one_line(
            capsys, ["tune", "--env", "Pendulum-v1", "--out", str(out), "--trials", "1", "--no-live"]
        )
        assert (
            f"--out {out} is being tuned by process {os.getpid()}; wait for it or stop it with `touch" in err
        )
        assert listing(tmp_path) == before
    finally:
        holder.release()


class FailingDriver:
    """Ray's stand-in: every run it is given fails as a run whose worker raised (its run directory made)."""

    def __init__(self, *args, **kw) -> None:
        self.pending: dict = {}
        self.stopping = False

    def __enter__(self) -> FailingDriver:
        return self

    def __exit__(self, *exc) -> None:
        pass

    def submit(self, cfg: dict, tag, own_stop=None) -> None:
        Path(cfg["run_dir"]).mkdir(parents=True)
        self.pending[cfg["run_dir"]] = tag

    def poll(self, timeout: float = 1.0) -> list:
        done = [
            (tag, {"status": "failed", "error": "FloatingPointError: boom at step 17"})
            for tag in self.pending.values()
        ]
        self.pending.clear()
        return done

    def drain(self) -> list:
        return []


def test_a_tune_whose_every_trial_fails_exits_1_naming_the_error_and_where_to_look(
    tmp_path, capsys, monkeypatch
):
    import csv

    import ddpgx.tune

    monkeypatch.setattr(ddpgx.tune, "Driver", FailingDriver)
    (tmp_path / "tau.toml").write_text(SPACES["tau.toml"])
    out = tmp_path / "study"
    argv = ["tune", "--env", "Pendulum-v1", "--trials", "3", "--total-steps", "1000", "--out", str(out), "--space",
            str(tmp_path / "tau.toml"), "--sampler", "random", "--pruner", "none", "--max-parallel", "1",
            "--no-live"]  # fmt: skip
    err = one_line(capsys, argv, code=1)
    assert (
        f"ddpgx: error: all 3 trials of the study failed; trial 2 (its run directory {out}/trial_0002__s0) failed "
        f"with: FloatingPointError: boom at step 17; every trial's error is in {out}/trials.csv"
    ) in err, err
    rows = list(csv.DictReader(open(out / "trials.csv")))
    assert [(r["number"], r["state"], r["runs"], r["error"]) for r in rows] == [
        (str(i), "fail", f"trial_{i:04d}__s0", "FloatingPointError: boom at step 17") for i in range(3)
    ]


def test_all_failed_is_said_only_when_no_trial_of_the_study_did_better():
    import optuna

    from ddpgx.tune import all_failed

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize")
    assert all_failed(study, "x") == ""  # no trial yet: nothing to say
    t = study.ask()
    t.set_user_attr("error", "ValueError: one\nsecond line")
    study.tell(t, state=optuna.trial.TrialState.FAIL)
    assert all_failed(study, "x") == (
        "all 1 trial of the study failed; trial 0 (it made no run directory) failed with: ValueError: one; every "
        "trial's error is in x/trials.csv"
    )
    study.tell(study.ask(), -150.0)  # one complete trial: the study has a best, no error
    assert all_failed(study, "x") == ""


# -------------------------------------------------------------------------------------------- report and plot


def readonly(path: Path, monkeypatch) -> None:
    """``path`` read-only; as root (who may write anywhere), ``os.access`` answers as it would for its owner."""
    path.chmod(0o555)
    if os.geteuid() == 0:
        real = os.access
        monkeypatch.setattr(
            "ddpgx.plots.os.access",
            lambda p, mode: real(p, mode) and not (mode & os.W_OK and not os.stat(p).st_mode & 0o200),
        )


OUTPUT_CASES = [
    ("report", "afile/x.md", "cannot write afile/x.md: afile is a file, not a directory"),
    ("report", "afile/sub/x.md", "cannot write afile/sub/x.md: afile is a file, not a directory"),
    ("plot", "afile/x.png", "cannot write afile/x.png: afile is a file, not a directory"),
    (
        "report",
        "ro/x.md",
        "cannot write ro/x.md: ro is not writable; give --out a directory you can write to",
    ),
    ("plot", "ro/sub/x.png", "cannot write ro/sub/x.png: ro is not writable"),
    (
        "report",
        "taken/x.md",
        "cannot write the report taken/x.md: is a directory: taken/x.png",
    ),  # the image's name
    ("plot", "taken", "cannot write taken/returns.png: is a directory: taken/returns.png"),
]


@pytest.mark.parametrize("cmd,out,expected", OUTPUT_CASES, ids=[f"{c} {o}" for c, o, _ in OUTPUT_CASES])
def test_report_and_plot_that_cannot_write_their_output_are_one_line(
    tmp_path, capsys, monkeypatch, cmd, out, expected
):
    monkeypatch.chdir(tmp_path)
    fake_run(tmp_path / "run", 0, -200.0)
    (tmp_path / "afile").write_text("a file\n")
    (tmp_path / "ro").mkdir()
    (tmp_path / "taken" / "x.png").mkdir(parents=True)  # where report writes its image: a directory
    (tmp_path / "taken" / "returns.png").mkdir()
    readonly(tmp_path / "ro", monkeypatch)
    before = listing(tmp_path)
    try:
        err = one_line(capsys, [cmd, "run", "--out", out])
    finally:
        (tmp_path / "ro").chmod(0o755)
    assert expected in err, err
    assert listing(tmp_path) == before


GARBAGE = [
    ("binary", bytes(range(256)) * 3, "is not a ddpgx CSV log (its first line is not a header of column names"),
    ("nul-header", b"step,mean_return\x00,std\n1,2,3\n", "is not a ddpgx CSV log"),
    ("columns", b"a,b\n1,2\n", "has no step column; its columns are a, b"),
    ("text", b"step,mean_return,std_return,wall_s\n100,abc,0,1\n", "is corrupt: line 2 has mean_return = 'abc', "
     "not a number"),
    ("short-row", b"step,mean_return,std_return,wall_s\n100,-5,0,1\n200\n", "is corrupt: line 3 has fewer values "
     "than its header"),
]  # fmt: skip


@pytest.mark.parametrize("cmd", ["report", "plot"])
@pytest.mark.parametrize("name,data,expected", GARBAGE, ids=[g[0] for g in GARBAGE])
def test_a_garbage_eval_csv_is_one_line_naming_the_file(
    tmp_path, capsys, monkeypatch, cmd, name, data, expected
):
    monkeypatch.chdir(tmp_path)
    run = fake_run(tmp_path / "run", 0, -200.0)
    (run / "eval.csv").write_bytes(data)
    before = listing(tmp_path)
    out = ["--out", "out/r.md"] if cmd == "report" else ["--out", "out/r.png", "--metric", "eval"]
    err = one_line(capsys, [cmd, "run", *out])
    assert f"ddpgx: error: run/eval.csv {expected}" in err, err
    assert listing(tmp_path) == before


def test_report_and_plot_of_a_mixed_folder_take_the_runs_of_its_seed_groups_and_studies(tmp_path, capsys):
    import csv

    mixed = tmp_path / "mixed"
    fake_run(mixed / "plain", 0, -100.0)
    group = mixed / "group"  # the compiled loop's --num-seeds 2: group.json and one run per seed
    fake_run(group / "Pendulum-v1__pendulum__s1", 1, -200.0)
    fake_run(group / "Pendulum-v1__pendulum__s2", 2, -300.0)
    (group / "group.json").write_text(
        json.dumps({"config": {"env": "Pendulum-v1", "num_seeds": 2}, "seeds": [1, 2]})
    )
    study = mixed / "study"  # a tune study: study.db and its trials' runs, one with another tau
    fake_run(study / "trial_0000__s3", 3, -400.0)
    fake_run(study / "trial_0001__s0", 0, -50.0, tau=0.01)
    (study / "study.db").write_bytes(b"")
    (study / "trials.csv").write_text("number,state\n")
    (mixed / "notes").mkdir()  # a folder with no run: said, not silently left out
    (mixed / "README.txt").write_text("files are passed over\n")
    assert main(["report", str(mixed), "--out", str(tmp_path / "r.md")]) == 0
    out = capsys.readouterr().out
    assert out.count("ddpgx: warning:") == 1
    assert f"ddpgx: warning: skipped {mixed}/notes: it holds no ddpgx run directory" in out
    rows = {r["group"]: r for r in csv.DictReader(open(tmp_path / "r.csv"))}
    assert sorted(rows) == ["pendulum, tau=0.005", "pendulum, tau=0.01"]
    four = rows["pendulum, tau=0.005"]
    assert (four["n_seeds"], four["seeds"], float(four["final_mean"])) == ("4", "0 1 2 3", -250.0)
    one = rows["pendulum, tau=0.01"]
    assert (one["n_seeds"], one["seeds"], float(one["final_mean"])) == ("1", "0", -50.0)
    assert main(["plot", str(mixed), "--out", str(tmp_path / "p.png"), "--metric", "eval"]) == 0
    assert (tmp_path / "p.png").stat().st_size > 10_000


# ----------------------------------------------------------------------------------------------------- eval --onnx


def onnx_model(path: Path, widths: dict[str, int], env: str = "HalfCheetah-v5") -> Path:
    """A model with the given inputs (batch x width), as ``ddpgx export`` names them, and an export's metadata."""
    import onnx
    from onnx import TensorProto, helper

    inputs = [helper.make_tensor_value_info(n, TensorProto.FLOAT, ["B", w]) for n, w in widths.items()]
    first = next(iter(widths))
    output = helper.make_tensor_value_info("action", TensorProto.FLOAT, ["B", widths[first]])
    graph = helper.make_graph([helper.make_node("Identity", [first], ["action"])], "g", inputs, [output])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    helper.set_model_props(model, {"env_id": env, "source": "best.msgpack", "step": "5000"})
    onnx.save(model, str(path))
    return path


def onnx_run(path: Path, obs_dim: int, layout: list[int] | None) -> Path:
    path.mkdir()
    meta = {"config": {"env": "Pendulum-v1"}, "obs_dim": obs_dim, "goal_layout": layout}
    (path / "config.json").write_text(json.dumps(meta))
    return path


GOAL = {"observation": 4, "achieved_goal": 2, "desired_goal": 2}
ONNX_CASES = [
    ("flat-17-on-3", {"observation": 17}, 3, None,
     "takes observation of width 17 (it was exported from a run of HalfCheetah-v5), but this run's env "
     "Pendulum-v1 gives flat observations of 3 values; export this run's policy with `ddpgx export RUN_DIR"),
    ("goal-on-flat", GOAL, 8, None,
     "takes observation of width 4, achieved_goal of width 2, desired_goal of width 2 (it was exported from a run "
     "of HalfCheetah-v5), but this run's env Pendulum-v1 gives flat observations of 8 values"),
    ("flat-on-goal", {"observation": 8}, 8, [4, 2],
     "takes observation of width 8 (it was exported from a run of HalfCheetah-v5), but this run's env Pendulum-v1 "
     "gives a goal Dict (observation of width 4, achieved_goal of width 2, desired_goal of width 2)"),
    ("goal-3-on-goal-2", {**GOAL, "achieved_goal": 3, "desired_goal": 3}, 8, [4, 2],
     "takes observation of width 4, achieved_goal of width 3, desired_goal of width 3"),
]  # fmt: skip


@pytest.mark.parametrize("name,widths,obs_dim,layout,expected", ONNX_CASES, ids=[c[0] for c in ONNX_CASES])
def test_an_onnx_model_that_does_not_fit_the_run_is_one_line(
    tmp_path, name, widths, obs_dim, layout, expected
):
    pytest.importorskip("onnxruntime", reason="the export extra is installed by `make test`")
    from ddpgx.export import OnnxPolicy

    model = onnx_model(tmp_path / "m.onnx", widths)
    run = onnx_run(tmp_path / "run", obs_dim, layout)
    with pytest.raises(UserError) as e:
        OnnxPolicy.for_run(model, run)
    assert str(e.value).startswith(f"--onnx {model} ") and expected in str(e.value), str(e.value)
    assert "\n" not in str(e.value)
    if layout is None:  # without the run's size (eval as it calls it now), the first call checks it
        policy = OnnxPolicy(model, None)
        with pytest.raises(UserError, match="takes observation of width"):
            policy(np.zeros((1, obs_dim), np.float32))


def test_an_onnx_model_that_fits_names_itself_as_the_source(tmp_path):
    pytest.importorskip("onnxruntime", reason="the export extra is installed by `make test`")
    from ddpgx.export import OnnxPolicy

    model = onnx_model(tmp_path / "m.onnx", {"observation": 3}, env="Pendulum-v1")
    policy = OnnxPolicy.for_run(model, onnx_run(tmp_path / "run", 3, None))
    assert policy.description == f"ONNX model {model}, exported from best.msgpack at step 5000"
    obs = np.array([[0.5, -0.25, 2.0]], np.float32)
    np.testing.assert_array_equal(policy(obs), obs)  # the identity model: the observation back
    goal = OnnxPolicy.for_run(onnx_model(tmp_path / "g.onnx", GOAL), onnx_run(tmp_path / "g", 8, [4, 2]))
    np.testing.assert_array_equal(
        goal(np.arange(16, dtype=np.float32).reshape(2, 8)), [[0, 1, 2, 3], [8, 9, 10, 11]]
    )


@pytest.mark.slow
def test_eval_onnx_of_a_model_from_another_env_is_one_line(tmp_path, capsys):
    pytest.importorskip("onnxruntime", reason="the export extra is installed by `make test`")
    from small import SMALL_BASE

    from ddpgx import preset_config, train

    cfg = preset_config("pendulum", "Pendulum-v1", run_dir=str(tmp_path / "run"), **{**SMALL_BASE,
                        "total_steps": 300, "learning_starts": 100, "eval_every": 300, "eval_episodes": 1})  # fmt: skip
    run = train(cfg).run_dir
    model = onnx_model(tmp_path / "cheetah.onnx", {"observation": 17})
    before = listing(tmp_path)
    err = one_line(capsys, ["eval", str(run), "--episodes", "1", "--onnx", str(model)])
    assert (
        f"--onnx {model} takes observation of width 17 (it was exported from a run of HalfCheetah-v5)" in err
    )
    assert "gives flat observations of 3 values" in err
    assert listing(tmp_path) == before


# ---------------------------------------------------------------------------------------------------------- sweep

SWEEP = ["sweep", "--env", "Pendulum-v1", "--preset", "pendulum", "--total-steps", "1000", "--no-live"]


@pytest.mark.parametrize(
    "setup,expected",
    [
        ("file", "--out {out} is an existing file, not a directory; give a directory for the sweep"),
        ("foreign", "--out {out} exists and is not a sweep directory (no sweep.json; it holds notes.txt); use "
         "another --out"),
    ],
)  # fmt: skip
def test_a_sweep_out_that_is_not_a_sweep_is_refused_before_its_lock_is_made(
    tmp_path, capsys, setup, expected
):
    pytest.importorskip("ray", reason="the cluster extra is installed by `make test`")
    out = tmp_path / "out"
    if setup == "file":
        out.write_text("a file\n")
    else:
        out.mkdir()
        (out / "notes.txt").write_text("mine\n")
    before = listing(tmp_path)
    err = one_line(capsys, [*SWEEP, "--out", str(out)])
    assert expected.format(out=out) in err, err
    assert listing(tmp_path) == before  # no .lock left in a directory that is not a sweep's


@pytest.mark.parametrize("stagger", [0.0, 0.1], ids=["at-once", "while-the-winner-writes-sweep.json"])
def test_two_sweep_drivers_on_one_out_the_loser_names_the_winner(tmp_path, monkeypatch, stagger):
    """The lock is taken before the sweep's files are read or made: of two drivers started on one --out at the same
    moment (8 times), or the second while the first writes its sweep.json (slowed to 0.3 s), one runs and the other
    is told which process holds it, never "not a sweep directory" (the first's half-written sweep.json)."""
    pytest.importorskip("ray", reason="the cluster extra is installed by `make test`")
    import time

    import ddpgx.grid
    import ddpgx.sweep
    from ddpgx.sweep import SweepResult, SweepSpec, run_sweep

    def hold(spec, cells, out, live):  # the winner: it holds the lock a moment, as a running sweep would
        time.sleep(0.3)
        return SweepResult(out, [], None)

    real_write = ddpgx.grid.write_json

    def slow_write(path: Path, obj) -> None:  # atomic_write_bytes's temporary file, there for 0.3 s
        path.with_name(f".{path.name}.tmp-{os.getpid()}").write_text("{")
        time.sleep(0.3 if stagger else 0.0)
        real_write(path, obj)

    monkeypatch.setattr(ddpgx.sweep, "_sweep_locked", hold)
    monkeypatch.setattr(ddpgx.sweep, "check_envs", lambda cells: None)  # Pendulum: known good
    monkeypatch.setattr(ddpgx.grid, "write_json", slow_write)
    for i in range(1 if stagger else 8):
        out = tmp_path / f"s{i}"
        spec = SweepSpec(env=["Pendulum-v1"], preset=["pendulum"], seeds=[0], total_steps=1000, out=str(out))
        start = threading.Barrier(2)
        results: list[str] = []

        def driver(delay: float, spec: SweepSpec = spec, start=start, results: list[str] = results) -> None:
            start.wait()
            time.sleep(delay)
            try:
                run_sweep(spec, live=False)
                results.append("ran")
            except UserError as e:
                results.append(str(e))

        threads = [threading.Thread(target=driver, args=(d,)) for d in (0.0, stagger)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(results) == [
            f"--out {out} is being swept by process {os.getpid()}; wait for it, or stop it with `touch "
            f"{out}/.stop` (its runs checkpoint and it exits), then run this again",
            "ran",
        ], results
        assert json.loads((out / "sweep.json").read_text())["grid"] == ["Pendulum-v1__pendulum__s0"]


def test_a_driver_that_finds_a_half_made_sweep_names_the_process_that_holds_it(tmp_path):
    """What the loser used to see: the winner's lock held, its sweep.json not yet renamed into place."""
    pytest.importorskip("ray", reason="the cluster extra is installed by `make test`")
    from ddpgx.run import RunLock
    from ddpgx.sweep import SweepSpec, run_sweep

    out = tmp_path / "s"
    out.mkdir()
    holder = RunLock(out)
    holder.acquire()
    (out / ".sweep.json.tmp-12345").write_text("{")
    before = listing(tmp_path)
    try:
        spec = SweepSpec(env=["Pendulum-v1"], preset=["pendulum"], seeds=[0], total_steps=1000, out=str(out))
        with pytest.raises(UserError, match=f"is being swept by process {os.getpid()}; wait for it"):
            run_sweep(spec, live=False)
    finally:
        holder.release()
    assert listing(tmp_path) == before
