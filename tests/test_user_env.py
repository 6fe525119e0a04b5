"""A user's own environment from the command line: module:EnvId, module:EnvClass, --env-kwargs, --env-module,
recorded in config.json so that eval, record and --resume need no extra flags."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest

from ddpgx.cli import main

REPO = Path(__file__).resolve().parents[1]
TINY = [
    "--total-steps", "600", "--learning-starts", "100", "--eval-every", "300", "--eval-episodes", "2",
    "--actor-hidden", "16", "--critic-hidden", "16", "--batch-size", "16", "--checkpoint-every", "200",
    "--no-progress", "--no-tensorboard", "--no-plot",
]  # fmt: skip

MY_ENVS = '''
import gymnasium as gym
import numpy as np


class Drift(gym.Env):
    """1-D: the action moves the point; reward is minus its distance to `target`; `horizon` steps."""

    metadata = {"render_modes": ["rgb_array"]}

    def __init__(self, render_mode=None, target=0.5, horizon=20):
        self.observation_space = gym.spaces.Box(-2.0, 2.0, (1,), np.float32)
        self.action_space = gym.spaces.Box(-0.5, 0.5, (1,), np.float32)
        self.render_mode, self.target, self.horizon = render_mode, float(target), int(horizon)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.x, self.t = float(self.np_random.uniform(-1, 1)), 0
        return np.array([self.x], np.float32), {}

    def step(self, action):
        self.x = float(np.clip(self.x + float(action[0]), -2, 2))
        self.t += 1
        return np.array([self.x], np.float32), -abs(self.x - self.target), False, self.t >= self.horizon, {}

    def render(self):
        frame = np.zeros((32, 32, 3), np.uint8)
        frame[:, int((self.x + 2) / 4 * 31)] = 255
        return frame


gym.register("Drift-v0", entry_point=Drift)
'''


def lengths(run: Path) -> list[int]:
    with open(run / "episodes.csv", newline="") as f:
        return [int(r["length"]) for r in csv.DictReader(f)]


def saved_config(run: Path) -> dict:
    return json.loads((run / "config.json").read_text())["config"]


@pytest.mark.slow
def test_module_env_id_trains_evals_records_and_resumes_with_no_extra_flags(tmp_path):
    """The console script, run where the user's module lives (not installed, not on PYTHONPATH)."""
    (tmp_path / "my_envs.py").write_text(MY_ENVS)
    exe = str(Path(sys.executable).parent / "ddpgx")

    def ddpgx(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([exe, *args], cwd=tmp_path, capture_output=True, text=True, timeout=300)

    r = ddpgx("train", "--env", "my_envs:Drift-v0", "--env-kwargs", "target=-0.25", "horizon=30", *TINY,
              "--run-dir", "run")  # fmt: skip
    assert r.returncode == 0, r.stderr
    run = tmp_path / "run"
    cfg = saved_config(run)
    assert cfg["env"] == "my_envs:Drift-v0" and cfg["env_kwargs"] == ["target=-0.25", "horizon=30"]
    assert set(lengths(run)) == {30}  # horizon=30 reached the constructor
    r = ddpgx("eval", "run", "--episodes", "2")
    assert r.returncode == 0, r.stderr
    assert "my_envs:Drift-v0: mean return" in r.stdout and "(final.msgpack, step 600)" in r.stdout
    r = ddpgx("record", "run", "--out", "run/p.gif")
    assert r.returncode == 0, r.stderr
    assert "(31 frames rendered)" in r.stdout  # a reset frame and 30 steps: the env's own horizon
    r = ddpgx("train", "--resume", "run", "--total-steps", "900")
    assert r.returncode == 0, r.stderr
    assert max(int(r["step"]) for r in csv.DictReader(open(run / "eval.csv"))) == 900
    # from another directory: config.json's env_paths says where my_envs was found
    assert json.loads((run / "config.json").read_text())["env_paths"] == [str(tmp_path.resolve())]
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    for args in (
        ["eval", str(run), "--episodes", "1"],
        ["train", "--resume", str(run), "--total-steps", "1200"],
    ):
        r = subprocess.run([exe, *args], cwd=elsewhere, capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, r.stderr
    assert max(int(r["step"]) for r in csv.DictReader(open(run / "eval.csv"))) == 1200


@pytest.mark.slow
def test_module_env_class_entry_point(tmp_path, monkeypatch):
    monkeypatch.chdir(REPO)
    run = tmp_path / "run"
    args = ["--env", "examples.point_goal:PointGoal", "--env-kwargs", "episode_steps=25", "speed=0.2"]
    assert main(["train", *args, *TINY, "--run-dir", str(run)]) == 0
    assert set(lengths(run)) == {25}
    assert saved_config(run)["env_kwargs"] == ["episode_steps=25", "speed=0.2"]
    assert main(["eval", str(run), "--episodes", "1"]) == 0


@pytest.mark.slow
def test_env_kwargs_reach_a_registered_env_and_its_evaluations(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", "--env", "Pendulum-v1", "--env-kwargs", "max_episode_steps=50", "g=3.5", *TINY,
                 "--run-dir", str(run)]) == 0  # fmt: skip
    assert set(lengths(run)) == {50}
    from ddpgx import load_policy
    from ddpgx.envs import make_run_env

    env = make_run_env(load_policy(run).config)
    assert env.spec.max_episode_steps == 50 and env.unwrapped.g == 3.5


@pytest.mark.slow
def test_env_module_registers_the_id(tmp_path, monkeypatch):
    (tmp_path / "other_envs.py").write_text(MY_ENVS.replace("Drift-v0", "OtherDrift-v0"))
    monkeypatch.chdir(tmp_path)
    run = tmp_path / "run"
    assert (
        main(["train", "--env", "OtherDrift-v0", "--env-module", "other_envs", *TINY, "--run-dir", str(run)])
        == 0
    )
    assert saved_config(run)["env_module"] == "other_envs"
    assert main(["eval", str(run), "--episodes", "1"]) == 0


@pytest.mark.parametrize("pairs,expected", [
    (("a=1", "b=false", "c=text", "d=[1, 2]", "e=None", "f=2.5e-3"),
     {"a": 1, "b": False, "c": "text", "d": [1, 2], "e": None, "f": 2.5e-3}),
])  # fmt: skip
def test_env_kwargs_values_are_json_else_text(pairs, expected):
    from ddpgx.config import format_env_kwargs
    from ddpgx.envcheck import parse_env_kwargs

    assert parse_env_kwargs(pairs) == expected
    assert parse_env_kwargs(format_env_kwargs(expected)) == expected
