"""The actors engine (--actors K): the same bits for any K at the same total envs, a killed learner resumed and a
killed actor replaced without a changed bit (pipelined), async collection learning and surviving a killed actor,
HER with whole episodes from two actors, no actor process left behind, and bad input in one line."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("ray", reason="the cluster extra is installed by `make test`")

from killing import ENV, alive, kill_after_first_checkpoint, resume  # noqa: E402
from test_resume import assert_same_run, table  # noqa: E402

from ddpgx.actors import close_episode, cycle_steps  # noqa: E402
from ddpgx.config import Config  # noqa: E402

PENDULUM = ["--env", "Pendulum-v1", "--total-steps", "4000", "--learning-starts", "1000", "--eval-every", "2000",
            "--log-every", "1000", "--checkpoint-every", "1000", "--no-progress", "--no-tensorboard", "--no-plot"]  # fmt: skip


def train(flags: list[str], run: Path, timeout: float = 600) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "ddpgx.cli", "train", *flags, "--run-dir", str(run)]
    r = subprocess.run(cmd, env=ENV, capture_output=True, text=True, timeout=timeout)
    assert r.returncode == 0, r.stderr[-3000:]
    return r


def actor_pids(run: Path) -> list[int]:
    """Every actor process the run's actors.log names (replacements included)."""
    return [
        int(line.rsplit("pid ", 1)[1])
        for line in (run / "actors.log").read_text().splitlines()
        if " pid " in line
    ]


def assert_gone(pids: list[int], wait: float = 30) -> None:
    deadline = time.time() + wait
    left = [p for p in pids if alive(p)]
    while left and time.time() < deadline:
        time.sleep(0.5)
        left = [p for p in left if alive(p)]
    assert not left, f"actor processes left behind: {left}"


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    """Pendulum, 2 actors of 1 env, pipelined, uninterrupted."""
    run = tmp_path_factory.mktemp("actors") / "k2"
    train([*PENDULUM, "--actors", "2"], run)
    return run


# ------------------------------------------------------------------------------------------ pure parts


def test_a_cycle_is_whole_update_units_of_at_least_500_steps():
    assert cycle_steps(Config(actors=2, num_envs=1, update_every=1)) == 250  # 500 steps over 2 slots
    assert cycle_steps(Config(actors=2, num_envs=4, update_every=800)) == 100  # her8: 2 episodes per env
    assert cycle_steps(Config(actors=3, num_envs=1, update_every=1, actor_steps=7)) == 7


def test_an_actor_that_does_not_answer_is_said_once_past_the_stall_bound(monkeypatch):
    """Alive but silent (an env stuck in its own code): the learner cannot tell it from a slow actor, so it says
    so once, past max(120 s, 10 x the slowest answer so far), and goes on waiting."""
    import ddpgx.actors as actors

    now = 1000.0
    monkeypatch.setattr(actors.time, "monotonic", lambda: now)
    eng = object.__new__(actors.ActorsEngine)
    lines: list[str] = []
    eng._note = lines.append
    eng.requests = {0: (None, ()), 1: (None, ())}
    eng.asked_at, eng.slowest, eng.stalled = {0: now - 200.0, 1: now - 100.0}, 0.0, set()
    eng._look_for_stalls()
    assert (
        len(lines) == 1
        and lines[0].startswith("actor 0 has not answered for 200 s")
        and "--resume" in lines[0]
    )
    eng._look_for_stalls()
    assert len(lines) == 1  # once
    eng.slowest = 30.0  # answers have taken up to 30 s: late only past 300 s
    eng.asked_at[1] = now - 250.0
    eng._look_for_stalls()
    assert len(lines) == 1


def test_closing_a_slots_episode_draws_the_next_seed_as_the_slot_would():
    import numpy as np

    from ddpgx.rngstate import rng_state

    rng = np.random.default_rng([0, 17, 3])
    st = {
        "need_reset": False,
        "ep_return": 5.0,
        "ep_len": 9,
        "seed": 3,
        "actions": [[0.1]],
        "seed_rng": rng_state(rng),
    }
    closed = close_episode(st)
    expected = int(np.random.default_rng([0, 17, 3]).integers(0, 2**31 - 1))
    assert (
        closed["seed"] == expected
        and closed["need_reset"]
        and closed["actions"] == []
        and closed["ep_len"] == 0
    )
    assert close_episode(closed) is closed  # nothing in progress: unchanged


# ------------------------------------------------------------------------------------------ pipelined: bits


@pytest.mark.slow
def test_one_actor_of_two_envs_is_two_actors_of_one_bit_for_bit(reference, tmp_path):
    run = tmp_path / "k1"
    train([*PENDULUM, "--actors", "1", "--num-envs", "2"], run)
    assert_same_run(reference, run)
    eps = table(run / "episodes.csv")
    assert len(eps) == 20 and {e["env"] for e in eps} == {
        "0",
        "1",
    }  # 4000 steps of 200-step episodes, both envs
    assert_gone(actor_pids(reference) + actor_pids(run))


@pytest.mark.slow
def test_a_killed_learner_resumes_to_the_uninterrupted_run_and_leaves_no_actor(reference, tmp_path):
    run = tmp_path / "killed"
    kill_after_first_checkpoint([*PENDULUM, "--actors", "2"], run)
    before = actor_pids(run)
    assert_gone(before)  # the driver's death ends its actors (nothing waits for them)
    r = resume(run)
    assert r.returncode == 0, r.stderr[-3000:]
    assert_same_run(reference, run)
    assert_gone(actor_pids(run))


@pytest.mark.slow
def test_a_killed_run_resumes_on_another_number_of_actors_to_the_same_bits(reference, tmp_path):
    """Two actors of one env, killed, resumed as one actor of two envs: the slots move, the bits do not."""
    run = tmp_path / "respread"
    kill_after_first_checkpoint([*PENDULUM, "--actors", "2"], run)
    r = subprocess.run([sys.executable, "-m", "ddpgx.cli", "train", "--resume", str(run), "--actors", "1",
                        "--num-envs", "2"], env=ENV, capture_output=True, text=True, timeout=600)  # fmt: skip
    assert r.returncode == 0, r.stderr[-3000:]
    assert_same_run(reference, run)
    assert "actor 0 (envs 0-1)" in (run / "actors.log").read_text()
    r = subprocess.run([sys.executable, "-m", "ddpgx.cli", "train", "--resume", str(run), "--actors", "4",
                        "--num-envs", "1", "--total-steps", "8000"], env=ENV, capture_output=True, text=True,
                       timeout=600)  # fmt: skip
    assert (
        r.returncode == 2
        and "cannot resume with --actors 4 --num-envs 1: the run steps 2 envs in all" in r.stderr
    ), r.stderr


@pytest.mark.slow
def test_an_actor_killed_mid_cycle_is_replaced_and_the_run_keeps_its_bits(reference, tmp_path):
    run = tmp_path / "actor-killed"
    cmd = [sys.executable, "-m", "ddpgx.cli", "train", *PENDULUM, "--actors", "2", "--run-dir", str(run)]
    p = subprocess.Popen(cmd, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    t0 = time.time()
    while not (run / "checkpoints" / "latest").exists():  # learning: the cycles are under way
        assert p.poll() is None, p.communicate()
        assert time.time() - t0 < 300
        time.sleep(0.02)
    victim = actor_pids(run)[1]
    os.kill(victim, signal.SIGKILL)
    _, stderr = p.communicate(timeout=300)
    assert p.returncode == 0, stderr[-3000:]
    log = (run / "actors.log").read_text()
    assert "actor 1 stopped (its process or node died); a new actor collects" in log
    assert len(actor_pids(run)) == 3 and victim not in actor_pids(run)[2:]
    assert_same_run(reference, run)
    assert_gone(actor_pids(run))


@pytest.mark.slow
def test_an_env_that_kills_its_actor_at_the_same_state_each_time_ends_the_run_in_one_line(tmp_path):
    """A replaced actor collects the same chunk again: an env that crashes its process there would be replaced
    forever. After MAX_REPLACEMENTS deaths in a row the run stops, and no actor is left."""
    run = tmp_path / "crash"
    cmd = [sys.executable, "-m", "ddpgx.cli", "train", "--env", "envs_for_tests:TestCrashInActor-v0", "--actors", "1",
           "--total-steps", "1000", "--no-progress", "--no-tensorboard", "--no-plot", "--run-dir", str(run)]  # fmt: skip
    r = subprocess.run(cmd, env=ENV, capture_output=True, text=True, timeout=300)
    assert r.returncode == 2, r.stderr[-3000:]
    last = r.stderr.strip().splitlines()[-1]
    assert "actor 0 died 3 times in a row on the same chunk" in last, r.stderr[-3000:]
    assert "starts over" in last  # no checkpoint yet: the host says so on the same line
    assert (run / "actors.log").read_text().count("actor 0 stopped") == 2  # replaced twice, then given up
    assert len(actor_pids(run)) == 3
    assert_gone(actor_pids(run))


# ------------------------------------------------------------------------------------------ async


@pytest.mark.slow
def test_async_collection_learns_pendulum_and_survives_a_killed_actor(tmp_path):
    """Measured: eval -197 at 5000 steps, -175 at 10000 (pendulum preset, 2 async actors)."""
    run = tmp_path / "async"
    flags = ["--env", "Pendulum-v1", "--actors", "2", "--collect", "async", "--total-steps", "10000",
             "--eval-every", "2500", "--checkpoint-every", "2000", "--no-progress", "--no-tensorboard", "--no-plot",
             "--run-dir", str(run)]  # fmt: skip
    p = subprocess.Popen([sys.executable, "-m", "ddpgx.cli", "train", *flags], env=ENV, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)  # fmt: skip
    t0 = time.time()
    while not (run / "checkpoints" / "latest").exists():
        assert p.poll() is None, p.communicate()
        assert time.time() - t0 < 300
        time.sleep(0.02)
    os.kill(actor_pids(run)[0], signal.SIGKILL)
    _, stderr = p.communicate(timeout=300)
    assert p.returncode == 0, stderr[-3000:]
    assert "actor 0 stopped" in (run / "actors.log").read_text()
    evals = [float(r["mean_return"]) for r in table(run / "eval.csv")]
    assert max(evals) >= -300, evals
    steps = [int(r["step"]) for r in table(run / "episodes.csv")]
    # 10000 steps of 200-step episodes over 2 slots, the last chunks cut at the run's end (none past it)
    assert steps == sorted(steps) and len(steps) >= 48 and steps[-1] <= 10000, steps
    assert [int(r["step"]) for r in table(run / "eval.csv")][-1] == 10000
    assert_gone(actor_pids(run))


# ------------------------------------------------------------------------------------------ HER


@pytest.mark.slow
def test_her_with_two_actors_solves_fetch_reach_with_whole_episodes(tmp_path):
    pytest.importorskip("gymnasium_robotics")
    run = tmp_path / "reach"
    train(["--env", "FetchReach-v4", "--preset", "her", "--actors", "2", "--total-steps", "4000", "--eval-every",
           "2000", "--no-progress", "--no-tensorboard", "--no-plot"], run)  # fmt: skip
    success = [float(r["success"]) for r in table(run / "eval.csv")]
    assert max(success) >= 0.9, success
    eps = table(run / "episodes.csv")
    # every episode arrived whole: 50 steps each, 40 per env, at env step (its 50th step) x 2 envs + its index
    assert len(eps) == 80 and {int(e["length"]) for e in eps} == {50}
    for env in ("0", "1"):
        steps = [int(e["step"]) for e in eps if e["env"] == env]
        assert steps == [100 * k - 1 + int(env) for k in range(1, 41)], steps[:4]
    import numpy as np

    final = run / "checkpoints" / (run / "checkpoints" / "latest").read_text().strip()
    with np.load(final / "replay.npz") as z:
        for env in (0, 1):  # HER's episode buffer of each env: 40 complete episodes, none in progress
            slot, t, used, _capacity, max_steps = z[f"env{env}.position"].tolist()
            assert (slot, t, used, max_steps) == (40, 0, 40, 50)


# ------------------------------------------------------------------------------------------ bad input


def cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ddpgx.cli", "train", *args], env=ENV, capture_output=True,
                          text=True, timeout=300, cwd=cwd)  # fmt: skip


@pytest.mark.parametrize(
    "flags, expected",
    [
        (["--env", "gymnax:Pendulum-v1", "--actors", "2"], "--actors steps Gymnasium envs in Ray actors"),
        (
            ["--env", "Pendulum-v1", "--actors", "2", "--noise", "param"],
            "with --actors use --noise gaussian or ou",
        ),
        (
            ["--env", "Pendulum-v1", "--actors", "2", "--num-envs", "2", "--vector", "async"],
            "drop --vector async",
        ),
        (["--env", "Pendulum-v1", "--actors", "3", "--total-steps", "1000"], "use 999"),
        (["--env", "Pendulum-v1", "--actors", "-1"], "--actors must be >= 0"),
        (
            ["--env", "Pendulum-v1", "--actors", "1", "--actor-address", "127.0.0.1:1"],
            "cannot reach a Ray cluster at --actor-address 127.0.0.1:1",
        ),
    ],
)
def test_bad_actor_input_is_one_line_and_creates_nothing(tmp_path, flags, expected):
    run = tmp_path / "never"
    r = cli(*flags, "--run-dir", str(run))
    assert r.returncode == 2 and expected in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert not run.exists()


def test_an_env_only_this_process_knows_is_refused_before_the_run_exists(tmp_path):
    script = tmp_path / "own.py"
    script.write_text(
        "import sys, gymnasium as gym\n"
        "from gymnasium.envs.classic_control.pendulum import PendulumEnv\n"
        "gym.register('Mine-v0', entry_point=PendulumEnv, max_episode_steps=200)\n"
        "from ddpgx.cli import main\n"
        f"sys.exit(main(['train', '--env', 'Mine-v0', '--actors', '1', '--run-dir', r'{tmp_path / 'never'}']))\n"
    )
    r = subprocess.run([sys.executable, str(script)], env=ENV, capture_output=True, text=True, timeout=300)
    assert r.returncode == 2 and "--actors cannot make Mine-v0 in an actor's process" in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "never").exists()


def test_actors_beyond_a_clusters_cpus_are_refused(tmp_path):
    from ddpgx.actors import check_cluster
    from ddpgx.errors import UserError

    class FakeRay:
        @staticmethod
        def available_resources():
            return {"CPU": 2.0, "memory": 64 * 2**30}

    check_cluster(FakeRay, Config(actors=2))
    check_cluster(FakeRay, Config(actors=8, actor_cpus=0.0))
    with pytest.raises(UserError, match="needs 3 CPUs; this Ray cluster has 2 free"):
        check_cluster(FakeRay, Config(actors=3))
    with pytest.raises(UserError, match=r"need about .* GiB; this Ray cluster has 64.0 GiB free"):
        check_cluster(FakeRay, Config(actors=200, num_envs=2, actor_cpus=0.0))


# ------------------------------------------------------------------------------------------ two nodes


@pytest.mark.slow
def test_actors_run_on_the_second_node_of_a_two_node_cluster(tmp_path):
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0, "node_ip_address": "127.0.0.1"})
    worker = cluster.add_node(num_cpus=2, node_ip_address="127.0.0.1")
    nodes = [cluster.head_node, *cluster.worker_nodes]
    pids = [pi.process.pid for n in nodes for infos in n.all_processes.values() for pi in infos]
    try:
        run = tmp_path / "two-nodes"
        train(["--env", "Pendulum-v1", "--actors", "2", "--total-steps", "1000", "--learning-starts", "500",
               "--eval-every", "1000", "--no-progress", "--no-tensorboard", "--no-plot", "--actor-address",
               cluster.address], run)  # fmt: skip
        lines = (run / "actors.log").read_text().splitlines()
        assert len(lines) == 2 and all(f"node {worker.node_id[:12]}" in line for line in lines), lines
        assert len(table(run / "episodes.csv")) == 4  # 500 steps of each env: two 200-step episodes
        actors = actor_pids(run)
    finally:
        cluster.shutdown()
    assert_gone([*pids, *actors])
