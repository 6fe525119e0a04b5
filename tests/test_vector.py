"""--num-envs N: the update schedule by hand, truncation in vector envs, per-env seeds, bitwise resume after a
SIGKILL for N = 4 (sync and async), a dead env subprocess, and the bad inputs."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import goal_envs  # noqa: F401  (registers StepCounter-v0)
import gymnasium as gym
import numpy as np
import pytest
from killing import kill_after_first_checkpoint, resume

from ddpgx import preset_config, train
from ddpgx.cli import main
from ddpgx.schedule import UpdateSchedule

TESTS = Path(__file__).parent


def test_the_schedule_against_hand_computed_update_steps():
    # start 256, one unit after every 100 env steps: units at env steps 355, 455, 555, ...
    s = UpdateSchedule(start=256, update_every=100, gradient_steps=40)
    assert s.first == 355
    assert [s.units_by(x) for x in (354, 355, 454, 455, 1000)] == [0, 1, 1, 2, 7]
    # N = 8 envs: iteration (448, 456] holds step 455 -> one unit, i.e. 40 gradient steps in one call
    assert s.units_between(448, 456) == 1 and s.units_between(456, 464) == 0
    # update_every 1, N = 4: units at env steps 10, 11, 12, ...: iteration (8, 12] holds 3, later ones 4
    one = UpdateSchedule(start=10, update_every=1, gradient_steps=1)
    assert [one.units_between(b, b + 4) for b in (0, 4, 8, 12)] == [0, 0, 3, 4]
    assert one.usual_units(4) == 4 and s.usual_units(8) == 1
    # 0.25 gradient steps per env step: update_every 4, gradient_steps 1
    q = UpdateSchedule(start=8, update_every=4, gradient_steps=1)
    assert q.gradient_steps_by(8 + 4 * 10 - 1) == 10
    # policy delay 2: calls of 1 gradient step alternate; calls of 3 steps hold an actor step each time
    d = UpdateSchedule(start=1, update_every=1, gradient_steps=1, policy_delay=2)
    assert [d.actor_in_call(x - 1, x) for x in range(1, 7)] == [False, True, False, True, False, True]
    d3 = UpdateSchedule(start=1, update_every=1, gradient_steps=3, policy_delay=2)
    assert all(d3.actor_in_call(x - 1, x) for x in range(1, 7))
    # the next call after step 456 with N = 8 runs at the iteration ending 560 (unit due at 555)
    assert s.next_call_end(456, 8) == 560 and s.next_call_end(355, 1) == 455


def counter_cfg(run_dir: Path, **over):
    return preset_config(
        "modern", "goal_envs:StepCounter-v0", actor_hidden=(16,), critic_hidden=(16,), total_steps=84, learning_starts=40,
        batch_size=8, eval_every=84, eval_episodes=1, run_dir=str(run_dir), progress=False, plot=False,
        tensorboard=False, **over,
    )  # fmt: skip


def stored_transitions(run: Path) -> list[tuple[np.ndarray, np.ndarray]]:
    """(obs, next_obs) of every stored transition of every env's ring, from the final checkpoint."""
    from ddpgx import checkpoint as ckpt

    replay = ckpt.load(run).replay
    envs = sorted({k.split(".")[0] for k in replay}) if any("." in k for k in replay) else [""]
    out = []
    for e in envs:
        prefix = f"{e}." if e else ""
        obs, valid, rows = replay[prefix + "obs"], replay[prefix + "valid"], int(replay[prefix + "rows"])
        for r in np.flatnonzero(valid):
            out.append((obs[r], obs[(r + 1) % rows]))
    return out


@pytest.mark.parametrize("vector", ["sync", "async"])
@pytest.mark.slow
def test_truncated_episodes_store_their_true_final_observation(tmp_path, vector):
    train(counter_cfg(tmp_path / "r", num_envs=3, vector=vector))
    pairs = stored_transitions(tmp_path / "r")
    assert len(pairs) == 84
    for o, nxt in pairs:  # next_obs is one step later in the same episode: never the next episode's first
        assert nxt[0] == o[0] + 1 and nxt[1] == o[1], (o, nxt)
    assert sum(nxt[0] == 7 for _, nxt in pairs) == 12  # every episode's last transition ends at its 7th step
    rows = list(csv.DictReader(open(tmp_path / "r" / "episodes.csv")))
    assert [r["env"] for r in rows[:3]] == ["0", "1", "2"] and {r["length"] for r in rows} == {"7"}


@pytest.mark.slow
def test_each_env_has_its_own_seed_and_the_same_seed_gives_the_same_bits(tmp_path):
    train(counter_cfg(tmp_path / "a", num_envs=3))
    train(counter_cfg(tmp_path / "b", num_envs=3))
    offsets = {}
    for o, _ in stored_transitions(tmp_path / "a"):
        offsets.setdefault(float(o[1]), 0)
    assert len(offsets) == 12  # 3 envs x 4 episodes, every one with its own start
    assert (tmp_path / "a" / "final.msgpack").read_bytes() == (tmp_path / "b" / "final.msgpack").read_bytes()
    strip = lambda p: [r[:-2] + r[-1:] for r in csv.reader(open(p))]  # noqa: E731 - without wall_s
    assert strip(tmp_path / "a" / "episodes.csv") == strip(tmp_path / "b" / "episodes.csv")


@pytest.mark.slow
def test_one_env_keeps_the_single_env_checkpoint_format(tmp_path):
    """N = 1 is the loop as it was (checked bitwise against the previous code, see docs/PERFORMANCE.md): its
    checkpoints hold no collector state and the env's own random stream, so runs made before resume."""
    import json

    train(counter_cfg(tmp_path / "r"))
    manifest = json.loads(next((tmp_path / "r" / "checkpoints").glob("step_*/manifest.json")).read_text())
    assert "collector" not in manifest and "env" in manifest["rng"]
    header = next(csv.reader(open(tmp_path / "r" / "episodes.csv")))
    assert header == ["step", "episode", "return", "length", "wall_s"]


def kill_and_resume(tmp_path: Path, flags: list[str]) -> tuple[Path, Path]:
    ref, run = tmp_path / "ref", tmp_path / "killed"
    assert main(["train", *flags, "--run-dir", str(ref)]) == 0
    kill_after_first_checkpoint(flags, run, jitter=2.0)
    r = resume(run)
    assert r.returncode == 0, r.stderr
    return ref, run


@pytest.mark.parametrize("vector", ["sync", "async"])
@pytest.mark.slow
def test_four_envs_killed_mid_episode_and_resumed_are_bitwise_the_uninterrupted_run(tmp_path, vector):
    flags = ["--env", "Pendulum-v1", "--num-envs", "4", "--vector", vector, "--actor-hidden", "32", "32",
             "--critic-hidden", "32", "32", "--total-steps", "3200", "--learning-starts", "400", "--eval-every", "1600",
             "--eval-episodes", "2", "--checkpoint-every", "300", "--no-progress", "--no-plot", "--no-tensorboard"]  # fmt: skip
    ref, run = kill_and_resume(tmp_path, flags)
    assert (ref / "final.msgpack").read_bytes() == (run / "final.msgpack").read_bytes()
    assert (ref / "best.msgpack").read_bytes() == (run / "best.msgpack").read_bytes()
    for name in ("episodes.csv", "eval.csv", "train.csv"):
        strip = lambda p: [  # noqa: E731
            {k: v for k, v in row.items() if k not in ("wall_s", "sps")} for row in csv.DictReader(open(p))
        ]  # noqa: E731
        assert strip(ref / name) == strip(run / name), name


@pytest.mark.slow
def test_two_her_envs_killed_and_resumed_are_bitwise_the_uninterrupted_run(tmp_path):
    flags = ["--env", "goal_envs:PointGoal-v0", "--preset", "her", "--num-envs", "2", "--actor-hidden", "32", "32",
             "--critic-hidden", "32", "32", "--total-steps", "3000", "--buffer-size", "4000", "--eval-every", "1000",
             "--eval-episodes", "4", "--checkpoint-every", "330", "--no-progress", "--no-plot", "--no-tensorboard"]  # fmt: skip
    ref, run = kill_and_resume(tmp_path, flags)
    assert (ref / "final.msgpack").read_bytes() == (run / "final.msgpack").read_bytes()


def env_workers(pid: int) -> list[int]:
    """The env subprocesses (multiprocessing spawn children) of process ``pid``."""
    kids = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    out = []
    for k in kids:
        try:
            cmd = Path(f"/proc/{k}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if "spawn_main" in cmd:
            out.append(int(k))
    return out


@pytest.mark.slow
def test_a_dead_env_subprocess_stops_the_run_in_one_line_and_it_resumes(tmp_path):
    run = tmp_path / "r"
    flags = ["--env", "Pendulum-v1", "--num-envs", "2", "--vector", "async", "--actor-hidden", "16",
             "--critic-hidden", "16", "--total-steps", "200000", "--learning-starts", "100", "--checkpoint-every", "200",
             "--eval-every", "100000", "--no-progress", "--no-plot", "--no-tensorboard", "--run-dir", str(run)]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(TESTS)}
    p = subprocess.Popen([sys.executable, "-m", "ddpgx.cli", "train", *flags], env=env, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)  # fmt: skip
    t0 = time.time()
    while not (run / "checkpoints" / "latest").exists():
        assert p.poll() is None, p.communicate()
        assert time.time() - t0 < 180
        time.sleep(0.05)
    workers = env_workers(p.pid)
    assert len(workers) == 2, workers
    os.kill(workers[1], signal.SIGKILL)
    out, err = p.communicate(timeout=60)  # it must not hang
    assert p.returncode == 2, err
    lines = [x for x in err.splitlines() if x.strip()]
    assert len(lines) == 1 and "env subprocess died" in lines[0] and "--resume" in lines[0], err
    r = subprocess.run([sys.executable, "-m", "ddpgx.cli", "train", "--resume", str(run), "--total-steps", "1200",
                        "--no-tensorboard"], env=env, capture_output=True, text=True, timeout=300)  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert (run / "final.msgpack").exists()


def one_line(capsys, argv: list[str]) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    return err


def test_bad_num_envs_inputs_are_one_line_before_the_run_directory_exists(tmp_path, capsys, monkeypatch):
    base = ["train", "--env", "Pendulum-v1", "--no-progress", "--total-steps", "1000"]
    err = one_line(capsys, [*base, "--num-envs", "0", "--run-dir", str(tmp_path / "a")])
    assert "--num-envs must be a positive integer" in err
    err = one_line(capsys, [*base, "--num-envs", "3", "--run-dir", str(tmp_path / "b")])
    assert "not a multiple of --num-envs 3" in err
    err = one_line(
        capsys,
        [*base[:-1], "100000", "--num-envs", "100000", "--vector", "async", "--run-dir", str(tmp_path / "c")],
    )
    assert "100000 async envs" in err and "fewer --num-envs" in err
    gym.register("InProcessOnly-v0", entry_point=lambda: goal_envs.StepCounter(), max_episode_steps=7)
    err = one_line(capsys, ["train", "--env", "InProcessOnly-v0", "--num-envs", "2", "--vector", "async",
                            "--total-steps", "100", "--no-progress", "--run-dir", str(tmp_path / "d")])  # fmt: skip
    assert "--vector async" in err and "--vector sync" in err
    err = one_line(capsys, [*base, "--num-envs", "2", "--noise", "param", "--run-dir", str(tmp_path / "e")])
    assert "--noise param" in err
    # made in its process, but its step info holds a lock, which cannot travel back
    (tmp_path / "lockinfo_env.py").write_text(
        "import threading\nimport gymnasium as gym\nimport numpy as np\n\n\nclass LockInfo(gym.Env):\n"
        "    observation_space = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)\n"
        "    action_space = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)\n\n"
        "    def reset(self, *, seed=None, options=None):\n        return np.zeros(2, np.float32), {}\n\n"
        "    def step(self, action):\n"
        "        return np.zeros(2, np.float32), 0.0, False, False, {'lock': threading.Lock()}\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    err = one_line(capsys, ["train", "--env", "lockinfo_env:LockInfo", "--num-envs", "2", "--vector", "async",
                            "--total-steps", "100", "--no-progress", "--run-dir", str(tmp_path / "f")])  # fmt: skip
    assert (
        "cannot be sent between processes (cannot pickle '_thread.lock' object)" in err
        and "--vector sync" in err
    )
    assert not any((tmp_path / x).exists() for x in "abcdef")


@pytest.mark.slow
def test_async_with_one_env_trains_in_this_process_and_checkpoints_as_one_env(tmp_path):
    import json

    train(counter_cfg(tmp_path / "r", vector="async"))
    manifest = json.loads(next((tmp_path / "r" / "checkpoints").glob("step_*/manifest.json")).read_text())
    assert "env" in manifest["rng"] and "collector" not in manifest
    train(counter_cfg(tmp_path / "s"))  # the same run as --vector sync
    assert (tmp_path / "r" / "final.msgpack").read_bytes() == (tmp_path / "s" / "final.msgpack").read_bytes()
