"""`ddpgx sweep` on Ray and `ddpgx report`: many ordinary runs, never lost, compared with confidence intervals."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("ray", reason="the cluster extra is installed by `make test`")

from killing import alive  # noqa: E402
from test_resume import table  # noqa: E402

from ddpgx import load_policy  # noqa: E402
from ddpgx.cli import main  # noqa: E402
from ddpgx.errors import UserError  # noqa: E402
from ddpgx.run import lock_holder  # noqa: E402
from ddpgx.sweep import SweepSpec, run_sweep  # noqa: E402

TINY_SET = [
    "actor_hidden=16 16", "critic_hidden=16 16", "batch_size=32", "learning_starts=200", "eval_every=400",
    "eval_episodes=2", "checkpoint_every=400", "update_every=2", "tensorboard=false", "plot=false",
]  # fmt: skip


def spec(out: Path, seeds=(0, 1), taus=("0.01", "0.05"), total=1200, **kw) -> SweepSpec:
    sets = {k: [v] for k, v in (s.split("=", 1) for s in TINY_SET)}
    return SweepSpec(
        env=["Pendulum-v1"], preset=["pendulum"], seeds=list(seeds), set={"tau": list(taus), **sets},
        total_steps=total, out=str(out), **kw,
    )  # fmt: skip


def sweep_cli(*args: str, **kw) -> list[str]:
    flags = [a for s in TINY_SET for a in ("--set", s)]
    return [sys.executable, "-m", "ddpgx.cli", "sweep", "--env", "Pendulum-v1", "--preset", "pendulum",
            "--total-steps", "1200", *flags, "--no-live", *args]  # fmt: skip


@pytest.fixture(scope="module", autouse=True)
def own_core_locks(tmp_path_factory):
    """This module's runs take cores among themselves, whatever other ddpgx sweeps hold on this machine."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DDPGX_CORE_LOCKS", str(tmp_path_factory.mktemp("core-locks")))
        yield


@pytest.fixture(scope="module")
def swept(tmp_path_factory) -> Path:
    """A 2-config x 2-seed Pendulum sweep on an embedded local Ray."""
    out = tmp_path_factory.mktemp("sweep") / "tau"
    res = run_sweep(spec(out), live=False)
    assert [r.status for r in res.runs] == ["done"] * 4, [r.error for r in res.runs]
    return out


def last_evals(run: Path) -> tuple[float, float]:
    rows = list(csv.DictReader(open(run / "eval.csv")))
    values = [float(r["mean_return"]) for r in rows]
    return values[-1], max(values)


@pytest.mark.slow
def test_a_sweep_makes_ordinary_runs_and_a_report_with_the_numbers_of_its_runs(swept):
    import scipy.stats

    names = sorted(p.name for p in swept.iterdir() if p.is_dir())
    assert names == [f"Pendulum-v1__pendulum__tau={t}__s{s}" for t in ("0.01", "0.05") for s in (0, 1)]
    spec_file = json.loads((swept / "sweep.json").read_text())
    seed_major = [f"Pendulum-v1__pendulum__tau={t}__s{s}" for s in (0, 1) for t in ("0.01", "0.05")]
    assert spec_file["grid"] == seed_major and sorted(seed_major) == names
    assert spec_file["spec"]["set"]["tau"] == ["0.01", "0.05"]
    for name in names:  # every run is an ordinary run: it loads, and eval reads it
        run = swept / name
        cfg = load_policy(run).config
        assert (cfg.tau, cfg.seed, cfg.total_steps, cfg.actor_hidden) == (
            float(name.split("tau=")[1].split("__")[0]),
            int(name[-1]),
            1200,
            (16, 16),
        )
    assert main(["eval", str(swept / names[0]), "--episodes", "1"]) == 0
    with open(swept / "report.csv", newline="") as f:
        rows = {r["group"]: r for r in csv.DictReader(f)}
    assert set(rows) == {"pendulum, tau=0.01", "pendulum, tau=0.05"}
    for tau in ("0.01", "0.05"):
        runs = [swept / f"Pendulum-v1__pendulum__tau={tau}__s{s}" for s in (0, 1)]
        finals = np.array([last_evals(r)[0] for r in runs])
        r = rows[f"pendulum, tau={tau}"]
        assert int(r["n_seeds"]) == 2 and r["seeds"] == "0 1"
        np.testing.assert_allclose(float(r["final_mean"]), finals.mean(), rtol=1e-12)
        np.testing.assert_allclose(float(r["iqm"]), scipy.stats.trim_mean(finals, 0.25), rtol=1e-12)
        np.testing.assert_allclose(
            float(r["best_mean"]), np.mean([last_evals(x)[1] for x in runs]), rtol=1e-12
        )
        assert float(r["steps"]) == 1200
        ci = scipy.stats.bootstrap((finals,), np.mean, n_resamples=10_000, method="percentile",
                                   rng=np.random.default_rng(0)).confidence_interval  # fmt: skip
        np.testing.assert_allclose([float(r["final_ci_low"]), float(r["final_ci_high"])], [ci.low, ci.high])
    md = (swept / "report.md").read_text()
    assert "| pendulum, tau=0.01 | 2 |" in md and (swept / "report.png").stat().st_size > 10_000
    where = json.loads((swept / "runs.json").read_text())
    assert {w["status"] for w in where.values()} == {"done"} and len(where) == 4
    if hasattr(os, "sched_setaffinity"):  # each run pinned to one core, never two runs on one core at once
        assert all(len(w["cores"]) == 1 for w in where.values())


@pytest.mark.slow
def test_re_running_a_finished_sweep_starts_nothing_and_a_changed_spec_is_refused(swept, monkeypatch):
    import ddpgx.sweep as sw

    def no_ray(*a, **k):
        raise AssertionError("a finished sweep must not start any run")

    monkeypatch.setattr(sw, "_execute", no_ray)
    before = {p: p.stat().st_mtime_ns for p in swept.rglob("final.msgpack")}
    res = run_sweep(spec(swept), live=False)
    assert [r.status for r in res.runs] == ["done"] * 4
    assert {p: p.stat().st_mtime_ns for p in swept.rglob("final.msgpack")} == before
    with pytest.raises(UserError, match=r'holds a different sweep \(set was .*"0.05".*now .*"0.02"'):
        run_sweep(spec(swept, taus=("0.01", "0.02")), live=False)


def test_report_statistics_equal_scipys_on_a_fixed_data_set():
    import scipy.stats

    from ddpgx.report import _iqm, _mean, bootstrap_ci, iqm

    x = np.array([3.0, -1.0, 7.5, 2.0, 10.0, 4.0, 0.5])
    assert iqm(x) == scipy.stats.trim_mean(x, 0.25)
    for stat, ref in ((_mean, np.mean), (_iqm, lambda v, axis: scipy.stats.trim_mean(v, 0.25, axis=axis))):
        ci = scipy.stats.bootstrap(
            (x,), ref, n_resamples=10_000, method="percentile", rng=np.random.default_rng(0)
        )
        assert bootstrap_ci([x], stat) == (ci.confidence_interval.low, ci.confidence_interval.high)
    # several strata: each resampled within itself (stratified), the statistic over all of them
    y = np.array([0.2, 0.9, 0.4])
    ref = scipy.stats.bootstrap(
        (x, y), lambda a, b, axis: scipy.stats.trim_mean(np.concatenate([a, b], axis=axis), 0.25, axis=axis),
        n_resamples=10_000, method="percentile", paired=False, rng=np.random.default_rng(0),
    ).confidence_interval  # fmt: skip
    assert bootstrap_ci([x, y], _iqm) == (ref.low, ref.high)
    assert all(v != v for v in bootstrap_ci([x[:1]], _mean))  # one seed: no CI


def test_report_prints_success_rates_with_two_decimals_and_returns_with_one():
    from ddpgx.report import GroupStats, markdown

    s = GroupStats("FetchReach-v4", "her", [0, 1], 0.95, (0.9, 1.0), 0.95, (0.9, 1.0), 0.975, 10_000, 60.0)
    assert "| her | 2 | 0.95 | [0.90, 1.00] | 0.95 | [0.90, 1.00] | 0.97 | 10000 | 60 s |" in markdown(
        [s], "success"
    )
    assert "| her | 2 | 0.9 | [0.9, 1.0] | 0.9 | [0.9, 1.0] | 1.0 | 10000 | 60 s |" in markdown([s], "eval")


@pytest.mark.slow
def test_a_worker_killed_mid_run_is_retried_from_its_checkpoint_and_ends_bitwise_equal(swept, tmp_path):
    out = tmp_path / "killed"
    p = subprocess.Popen(sweep_cli("--seeds", "1", "--set", "tau=0.05", "--out", str(out)),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    run = out / "Pendulum-v1__pendulum__s1"
    t0 = time.time()
    while not (run / "checkpoints" / "latest").exists():
        assert p.poll() is None, p.communicate()
        assert time.time() - t0 < 240, "no checkpoint appeared"
        time.sleep(0.05)
    worker = lock_holder(run)
    assert worker is not None and worker != p.pid
    os.kill(worker, signal.SIGKILL)
    stdout, stderr = p.communicate(timeout=300)
    assert p.returncode == 0, stderr
    assert "1 done, 0 failed" in stdout
    assert json.loads((out / "runs.json").read_text())["Pendulum-v1__pendulum__s1"]["pid"] != worker
    ref = swept / "Pendulum-v1__pendulum__tau=0.05__s1"
    assert (run / "final.msgpack").read_bytes() == (ref / "final.msgpack").read_bytes()
    assert table(run / "episodes.csv") == table(ref / "episodes.csv")


@pytest.mark.slow
def test_ctrl_c_checkpoints_the_running_runs_and_the_same_command_continues(tmp_path):
    out = tmp_path / "stopped"
    # the tiny run steps at ~4000/s once it updates, and a Ctrl-C reaches it within ~1-2 s (the driver polls each
    # second, the run looks at each episode end): 30k steps leave it far from its end when the stop arrives
    cmd = sweep_cli(
        "--seeds", "1", "--set", "checkpoint_every=100000", "--total-steps", "30000", "--out", str(out)
    )
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    run = out / "Pendulum-v1__pendulum__s1"
    t0 = time.time()
    while not (run / "episodes.csv").exists() or len(table(run / "episodes.csv")) < 1:
        assert p.poll() is None, p.communicate()
        assert time.time() - t0 < 240, "the run did not start"
        time.sleep(0.05)
    p.send_signal(signal.SIGINT)
    stdout, stderr = p.communicate(timeout=300)
    assert p.returncode == 130, stderr
    assert "continue it with the same command: ddpgx sweep" in stderr
    assert (run / "checkpoints" / "latest").exists() and not (run / "final.msgpack").exists()
    stopped_at = int(json.loads((out / "runs.json").read_text())["Pendulum-v1__pendulum__s1"]["step"])
    assert 0 < stopped_at < 30000 and stopped_at % 200 == 0  # at an episode end
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert [int(x["step"]) for x in table(run / "episodes.csv")] == list(range(200, 30001, 200))


@pytest.mark.slow
def test_a_sweep_joins_a_two_node_cluster_and_spreads_its_runs(tmp_path):
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "node_ip_address": "127.0.0.1"})
    cluster.add_node(num_cpus=1, node_ip_address="127.0.0.1")
    nodes = [cluster.head_node, *cluster.worker_nodes]
    pids = [pi.process.pid for n in nodes for infos in n.all_processes.values() for pi in infos]
    try:
        out = tmp_path / "two-nodes"
        r = subprocess.run(sweep_cli("--seeds", "0-1", "--set", "tau=0.05", "--address", cluster.address,
                                     "--out", str(out)), capture_output=True, text=True, timeout=400)  # fmt: skip
        assert r.returncode == 0, r.stderr
        where = json.loads((out / "runs.json").read_text())
        assert len(where) == 2 and {w["status"] for w in where.values()} == {"done"}
        assert len({w["node"] for w in where.values()}) == 2  # one run on each node
        workers = [w["pid"] for w in where.values()]
    finally:
        cluster.shutdown()
    deadline = time.time() + 30
    left = [p for p in [*pids, *workers] if alive(p)]
    while left and time.time() < deadline:
        time.sleep(0.5)
        left = [p for p in left if alive(p)]
    assert not left, f"processes left behind: {left}"


@pytest.mark.slow
def test_a_run_that_fails_is_marked_and_the_others_go_on(tmp_path, monkeypatch, capsys):
    (tmp_path / "nan_envs.py").write_text(
        "import gymnasium as gym, numpy as np\n"
        "class NanLater(gym.Env):\n"
        "    observation_space = gym.spaces.Box(-1, 1, (2,), np.float32)\n"
        "    action_space = gym.spaces.Box(-1, 1, (1,), np.float32)\n"
        "    def reset(self, *, seed=None, options=None):\n"
        "        super().reset(seed=seed); self.t = 0\n"
        "        return np.zeros(2, np.float32), {}\n"
        "    def step(self, a):\n"
        "        self.t += 1\n"
        "        o = np.full(2, np.nan if self.t == 30 else 0.0, np.float32)\n"
        "        return o, 0.0, False, self.t >= 50, {}\n"
    )
    monkeypatch.chdir(tmp_path)  # the user's env module sits where the sweep starts, as for `ddpgx train`
    out = Path("some-fail")  # relative: the workers write under the driver's directory all the same
    args = ["sweep", "--env", "Pendulum-v1", "nan_envs:NanLater", "--preset", "modern", "--total-steps", "400",
            *[a for s in TINY_SET for a in ("--set", s)], "--no-live", "--out", str(out)]  # fmt: skip
    assert main(args) == 1
    captured = capsys.readouterr().out
    assert "failed: NanLater__modern__s0: TrainingDiverged: the environment returned a NaN or inf" in captured
    assert "1 done, 1 failed" in captured
    where = json.loads((tmp_path / out / "runs.json").read_text())
    assert where["Pendulum-v1__modern__s0"]["status"] == "done"
    assert "at step 30" in where["NanLater__modern__s0"]["error"]


BAD = [
    (["--env", "Pendulm-v1"], "unknown environment 'Pendulm-v1'; did you mean Pendulum-v1"),
    (["--env", "Pendulum-v1", "--preset", "fast"], "unknown preset 'fast'"),
    (["--env", "Pendulum-v1", "--set", "tua=0.1"], "unknown config field 'tua'; did you mean tau?"),
    (["--env", "Pendulum-v1", "--set", "tau=0.1,abc"], "tau=abc is not valid: tau must be a number"),
    (["--env", "Pendulum-v1", "--set", "tau=2"], "--tau must be in (0, 1], got 2.0"),
    (["--env", "Pendulum-v1", "--set", "tau="], "--set tau=: an empty value"),
    (["--env", "Pendulum-v1", "--seeds", ""], "--seeds '' names no seed"),
    (["--preset", "modern"], "a sweep needs at least one --env"),
    (
        ["--env", "Pendulum-v1", "--address", "127.0.0.1:1"],
        "cannot reach a Ray cluster at --address 127.0.0.1:1",
    ),
    (["--env", "Pendulum-v1", "--seed", "3"], "unknown flag --seed; did you mean --seeds?"),
    (
        ["--env", "Pendulum-v1", "--exclude", "Pendulum-v1__modern__s0"],
        "exclude 'Pendulum-v1__modern__s0' matches no run of the sweep; its runs are named like "
        "Pendulum-v1__pendulum__s0",
    ),
]


@pytest.mark.parametrize("args,message", BAD, ids=[" ".join(b[0]) for b in BAD])
def test_bad_sweep_input_exits_2_before_any_run(args, message, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["sweep", *args, "--no-live", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    assert not out.exists()


def test_without_ray_the_sweep_names_the_extra_to_install(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "ray", None)
    assert main(["sweep", "--env", "Pendulum-v1", "--no-live", "--out", str(tmp_path / "out")]) == 2
    assert "pip install 'ddpgx[cluster]'" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_variants_are_named_configs_crossed_with_seeds_and_run_seed_major(tmp_path):
    from ddpgx.grid import build_grid, load_toml

    f = tmp_path / "s.toml"
    f.write_text(
        'env = "Pendulum-v1"\npreset = "pendulum"\nseeds = "0-1"\nout = "o"\n'
        '[[variant]]\nname = "base"\n'
        '[[variant]]\nname = "td3"\npreset = "td3"\nactor_hidden = [64, 64]\n'
        '[[variant]]\nname = "norm"\nobs_norm = true\nobs_clip = 3\n'
    )
    cells = build_grid(load_toml(f))
    assert [c.name for c in cells] == [
        "Pendulum-v1__base__s0", "Pendulum-v1__td3__s0", "Pendulum-v1__norm__s0",
        "Pendulum-v1__base__s1", "Pendulum-v1__td3__s1", "Pendulum-v1__norm__s1",
    ]  # fmt: skip
    by = {c.name: c.cfg for c in cells}
    assert by["Pendulum-v1__base__s1"].preset == "pendulum" and not by["Pendulum-v1__base__s1"].twin_critic
    td3 = by["Pendulum-v1__td3__s0"]
    assert (td3.preset, td3.twin_critic, td3.target_noise, td3.policy_delay, td3.actor_hidden) == (
        "td3",
        True,
        0.2,
        2,
        (64, 64),
    )
    assert by["Pendulum-v1__norm__s1"].obs_norm and by["Pendulum-v1__norm__s1"].obs_clip == 3.0
    f.write_text('env = "Pendulum-v1"\nout = "o"\n[[variant]]\nname = "a b"\n')
    with pytest.raises(UserError, match="needs a name without spaces"):
        build_grid(load_toml(f))
    f.write_text('env = "Pendulum-v1"\nout = "o"\n[[variant]]\nname = "x"\nobs_nrom = true\n')
    with pytest.raises(UserError, match="did you mean obs_norm"):
        build_grid(load_toml(f))


def test_every_committed_sweep_file_still_builds_its_grid_with_todays_config():
    """A study is continued months later with "the same command": a renamed Config field or preset would surface
    only then, mid-study. Every file in benchmarks/sweeps must load and validate now."""
    from ddpgx.grid import build_grid, load_toml

    files = sorted((Path(__file__).resolve().parents[1] / "benchmarks" / "sweeps").glob("*.toml"))
    assert len(files) >= 20
    grids = {f.stem: build_grid(load_toml(f)) for f in files}
    for stem, cells in grids.items():
        names = [c.name for c in cells]
        assert len(set(names)) == len(names), stem
    suite = {c.name: c.cfg for c in grids["suite300_crossq"]}
    assert len(suite) == 15  # 5 envs x 1 variant x 3 seeds
    hum = suite["Humanoid-v5__crossq-256__s2"]
    assert (hum.env, hum.preset, hum.critic_hidden, hum.total_steps, hum.batch_renorm) == (
        "Humanoid-v5", "crossq", (256, 256), 300_000, True
    )  # fmt: skip
    idp = {c.name: c.cfg for c in grids["idp_renorm"]}
    assert sorted(idp) == [
        "InvertedDoublePendulum-v5__crossq-256-bn__s0",
        "InvertedDoublePendulum-v5__crossq-256-bn__s1",
    ]
    assert {(c.renorm_warmup, c.total_steps) for c in idp.values()} == {(1_000_000, 200_000)}


def test_a_sweep_grows_by_seeds_or_variants_keeps_its_runs_and_adopts_runs_made_before_it(tmp_path, capsys):
    from ddpgx.grid import SPEC_FILE, build_grid, check_spec_file

    out = tmp_path / "grow"
    small = spec(out, seeds=(0,), taus=("0.01",))
    (out / "Pendulum-v1__pendulum__s0").mkdir(parents=True)  # a run made by hand, under the grid's name
    (out / "Pendulum-v1__pendulum__s0" / "config.json").write_text("{}")
    check_spec_file(out, small, build_grid(small))  # adopted, not refused
    grown = spec(out, seeds=(0, 1, 2), taus=("0.01",))
    check_spec_file(out, grown, build_grid(grown))  # more seeds: the sweep goes on
    recorded = json.loads((out / SPEC_FILE).read_text())
    assert recorded["spec"]["seeds"] == [0, 1, 2] and len(recorded["grid"]) == 3
    fewer = spec(out, seeds=(1, 2), taus=("0.01",))
    with pytest.raises(UserError, match="holds a different sweep"):  # dropping a seed is not growing
        check_spec_file(out, fewer, build_grid(fewer))
    longer = spec(out, seeds=(0, 1, 2), taus=("0.01",), total=5000)
    with pytest.raises(UserError, match="total_steps was 1200, now 5000"):
        check_spec_file(out, longer, build_grid(longer))
    two_taus = spec(out, seeds=(0, 1, 2), taus=("0.01", "0.02"))  # renames the old runs (tau=... in the name)
    with pytest.raises(UserError, match="holds a different sweep"):
        check_spec_file(out, two_taus, build_grid(two_taus))
    other = tmp_path / "other"
    (other / "not-a-run").mkdir(parents=True)
    with pytest.raises(UserError, match="is not a sweep directory"):
        check_spec_file(other, small, build_grid(small))


@pytest.mark.slow
def test_a_second_driver_on_the_same_out_is_refused_and_a_stop_file_starts_no_more_runs(
    tmp_path, monkeypatch
):
    import ddpgx.worker as worker
    from ddpgx.run import RunLock

    out = tmp_path / "locked"
    small = spec(out, seeds=(0, 1, 2), taus=("0.01",))
    out.mkdir()
    holder = RunLock(out)
    holder.acquire()  # as a running driver holds it
    try:
        with pytest.raises(UserError, match=f"is being swept by process {os.getpid()}"):
            run_sweep(small, live=False)
    finally:
        holder.release()
    log = tmp_path / "started.txt"

    def fake_task(
        cfg, stop_file, cpus, cwd
    ):  # the first run asks the sweep to stop, as `touch OUT/.stop` would
        with open(log, "a") as f:  # (it runs in a Ray worker process)
            f.write(f"{cfg['seed']}\n")
        Path(stop_file).write_text("stop\n")
        return {"status": "stopped", "step": 0}

    monkeypatch.setattr(worker, "run_task", fake_task)
    res = run_sweep(small.__class__(**{**small.__dict__, "max_parallel": 1}), live=False)
    assert log.read_text().split() == ["0"] and [r.status for r in res.runs] == ["stopped"] * 3
    # runs.json lists every run of the grid, the ones never started too
    listed = json.loads((out / "runs.json").read_text())
    assert sorted(listed) == sorted(r.cell.name for r in res.runs) and {
        v["status"] for v in listed.values()
    } == {"stopped"}


@pytest.mark.slow
def test_without_max_parallel_a_sweep_starts_only_what_the_cluster_holds_so_a_stop_file_holds_back_the_rest(
    tmp_path, monkeypatch
):
    import ddpgx.worker as worker

    cores = os.cpu_count() or 1  # the embedded Ray's CPUs: at most this many runs at once, 1 CPU each
    out, log = tmp_path / "held", tmp_path / "started.txt"

    def fake_task(cfg, stop_file, cpus, cwd):  # every run that starts asks the sweep to stop
        with open(log, "a") as f:
            f.write(f"{cfg['seed']}\n")
        time.sleep(0.5)  # the runs the driver submitted together are all running by now
        Path(stop_file).write_text("stop\n")
        return {"status": "stopped", "step": 0}

    monkeypatch.setattr(worker, "run_task", fake_task)
    res = run_sweep(spec(out, seeds=tuple(range(cores + 3)), taus=("0.01",)), live=False)
    started = log.read_text().split()
    # before, the default submitted the whole grid to Ray at once: every run started, one after another
    assert 1 <= len(started) <= cores, started
    assert [r.status for r in res.runs] == ["stopped"] * (cores + 3)


@pytest.mark.slow
def test_a_sweep_stopped_by_its_stop_file_exits_non_zero_with_the_command_to_continue(
    tmp_path, monkeypatch, capsys
):
    import ddpgx.worker as worker
    from ddpgx.cli import main

    def fake_task(cfg, stop_file, cpus, cwd):
        Path(stop_file).write_text("stop\n")
        return {"status": "stopped", "step": 0}

    monkeypatch.setattr(worker, "run_task", fake_task)
    argv = ["sweep", "--env", "Pendulum-v1", "--seeds", "0-1", "--total-steps", "400", "--out", str(tmp_path / "o"),
            "--max-parallel", "1", "--no-live"]  # fmt: skip
    assert main(argv) == 130
    err = capsys.readouterr().err
    assert "sweep stopped with 2 runs unfinished; continue it with the same command: ddpgx sweep --env" in err


@pytest.mark.slow
def test_excluded_runs_are_not_started_and_the_sweep_without_exclude_is_the_same_sweep(
    tmp_path, monkeypatch, capsys
):
    import ddpgx.worker as worker
    from ddpgx.cli import main

    log = tmp_path / "started.txt"

    def fake_task(cfg, stop_file, cpus, cwd):  # a Ray worker process: it says which run it was given, and how
        run = Path(cfg["run_dir"])  # runs.json lists that run while it runs
        listed = json.loads((run.parent / "runs.json").read_text())[run.name]["status"]
        with open(log, "a") as f:
            f.write(f"{cfg['seed']}\n")
        assert listed == "running", listed
        return {"status": "stopped", "step": 0}

    monkeypatch.setattr(worker, "run_task", fake_task)
    out = tmp_path / "o"
    argv = ["sweep", "--env", "Pendulum-v1", "--seeds", "0-3", "--total-steps", "400", "--out", str(out),
            "--max-parallel", "1", "--no-live"]  # fmt: skip
    assert main([*argv, "--exclude", "*__s1", "--exclude", "Pendulum-v1__pendulum__s3"]) == 130
    assert log.read_text().split() == ["0", "2"]
    assert "0 done, 0 failed, 2 stopped, 2 excluded (not run: exclude)" in capsys.readouterr().out
    listed = json.loads((out / "runs.json").read_text())
    assert {k: v["status"] for k, v in listed.items()} == {
        "Pendulum-v1__pendulum__s0": "stopped", "Pendulum-v1__pendulum__s1": "excluded",
        "Pendulum-v1__pendulum__s2": "stopped", "Pendulum-v1__pendulum__s3": "excluded",
    }  # fmt: skip
    log.unlink()
    assert main(argv) == 130  # the same out without --exclude: the same sweep, every unfinished run goes
    assert log.read_text().split() == ["0", "1", "2", "3"]


@pytest.mark.parametrize(
    "line, key",
    [("total_steps = 1500.7", "total_steps"), ('total_steps = "abc"', "total_steps"), ("total_steps = -5", "total_steps"),
     ('seeds = [0, "x"]', "'x'"), ("env = 5", "env"), ('env = ["Pendulum-v1", 3]', "env"),
     ('max_parallel = "two"', "max_parallel"), ("cpus_per_run = true", "cpus_per_run"),
     ('exclude = "Pendulum-v1__pendulum__s0"', "exclude"), ("exclude = [3]", "exclude")],
)  # fmt: skip
def test_a_sweep_file_value_of_the_wrong_type_is_one_line_naming_its_key(tmp_path, capsys, line, key):
    f = tmp_path / "s.toml"
    base = {"env": 'env = "Pendulum-v1"', "out": f'out = "{tmp_path / "out"}"'}
    base[line.split(" =")[0]] = line
    f.write_text("\n".join(base.values()) + "\n")
    assert main(["sweep", str(f)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and key in err, err
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_runs_json_lists_every_run_with_its_true_status_even_when_it_was_deleted_or_a_run_finished_unwatched(
    swept, tmp_path
):
    import shutil

    out = tmp_path / "tau"
    shutil.copytree(swept, out)
    before = json.loads((out / "runs.json").read_text())
    (out / "runs.json").unlink()  # deleted; and a run a killed driver never recorded as finished:
    res = run_sweep(spec(out), live=False)  # every run is finished: nothing to start, no Ray
    assert [r.status for r in res.runs] == ["done"] * 4
    after = json.loads((out / "runs.json").read_text())
    assert set(after) == set(before) and {w["status"] for w in after.values()} == {"done"}
    assert all(after[k]["step"] == before[k]["step"] == 1200 for k in after)


@pytest.mark.slow
def test_a_finished_run_that_exclude_names_is_still_done_and_reported(swept, tmp_path):
    import shutil

    out = tmp_path / "tau"
    shutil.copytree(swept, out)
    res = run_sweep(spec(out, exclude=["*__s1"]), live=False)  # every run finished: nothing to start, no Ray
    assert [r.status for r in res.runs] == ["done"] * 4
    groups = list(csv.DictReader(open(out / "report.csv")))  # the s1 runs are in the report
    assert res.report is not None and [g["seeds"] for g in groups] == ["0 1", "0 1"]
    listed = json.loads((out / "runs.json").read_text())
    assert {v["status"] for v in listed.values()} == {"done"}


@pytest.mark.slow
def test_a_run_finished_but_stopped_before_its_final_file_is_completed_by_the_next_sweep_not_retrained(
    swept, tmp_path
):
    import shutil

    out = tmp_path / "tau"
    shutil.copytree(swept, out)
    run = sorted(out.glob("Pendulum-v1__*__s1"))[0]
    final = (run / "final.msgpack").read_bytes()
    episodes = (run / "episodes.csv").read_bytes()
    (run / "final.msgpack").unlink()  # its worker killed after the final checkpoint, before final.msgpack
    res = run_sweep(spec(out), live=False)
    assert [r.status for r in res.runs] == ["done"] * 4, [r.error for r in res.runs]
    assert (run / "final.msgpack").read_bytes() == final  # written from the final checkpoint
    assert (run / "episodes.csv").read_bytes() == episodes  # nothing trained again
    assert json.loads((out / "runs.json").read_text())[run.name]["status"] == "done"
