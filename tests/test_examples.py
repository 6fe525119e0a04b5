"""The examples run: each script of examples/ at a small --steps into a temporary folder, and the tour notebook's
code cells in order, each checked by what it wrote (eval.csv, policy files that load and act, the sweep's report).

The step counts are the smallest that still update and evaluate: the pendulum preset (used by quickstart and
own_env) starts learning after 1000 random steps, the her preset after 100; the scripts evaluate every
``steps // 2`` when that is below the preset's period, and every run evaluates at its last step."""

from __future__ import annotations

import csv
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
STEPS = 1_200  # > the pendulum preset's 1000 random steps: a few hundred updates, evaluations at 600 and 1200


def run_example(name: str, out: Path, steps: int, env: dict[str, str] | None = None) -> str:
    """``python examples/NAME.py --steps STEPS --out OUT`` from the repository's root; its stdout."""
    proc = subprocess.run(
        [sys.executable, str(EXAMPLES / f"{name}.py"), "--steps", str(steps), "--out", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=300, env={**os.environ, **(env or {})},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    return proc.stdout


def eval_rows(run_dir: Path) -> list[dict[str, str]]:
    with open(run_dir / "eval.csv") as f:
        rows = list(csv.DictReader(f))
    assert rows and all(math.isfinite(float(r["mean_return"])) for r in rows), rows
    return rows


def assert_acts_within(action: np.ndarray, space: gym.spaces.Box) -> None:
    assert action.shape == space.shape and np.all(np.isfinite(action)), action
    assert np.all(action >= space.low) and np.all(action <= space.high), (action, space)


@pytest.mark.slow
def test_quickstart_learns_saves_loads_and_predicts(tmp_path):
    from ddpgx import DDPG

    out = run_example("quickstart", tmp_path, STEPS)
    rows = eval_rows(tmp_path / "run")
    assert [int(r["step"]) for r in rows] == [600, 1200]
    assert f"final evaluation at step 1200: mean return {float(rows[-1]['mean_return']):.1f}" in out, out
    model = DDPG.load(tmp_path / "pendulum.msgpack")
    assert model.config.env == "Pendulum-v1" and model.config.preset == "pendulum"
    env = gym.make("Pendulum-v1")
    obs, _ = env.reset(seed=0)
    assert_acts_within(model.predict(obs)[0], env.action_space)


@pytest.mark.slow
def test_own_env_trains_a_wrapped_factory_that_other_processes_rebuild(tmp_path):
    from ddpgx import load_policy

    out = run_example("own_env", tmp_path, STEPS)
    run = tmp_path / "run"
    eval_rows(run)
    assert json.loads((run / "config.json").read_text())["config"]["env"] == "examples.own_env:make_env"
    assert "learned policy" in out and "random forces" in out, out
    # another process rebuilds the env from what the run recorded (from the root, where `examples` imports)
    proc = subprocess.run(
        [sys.executable, "-m", "ddpgx.cli", "eval", str(run), "--episodes", "2"],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0 and "examples.own_env:make_env: mean return" in proc.stdout, proc
    sys.path.insert(0, str(ROOT))
    try:
        from examples.own_env import make_env
    finally:
        sys.path.remove(str(ROOT))
    env = make_env()
    obs, _ = env.reset(seed=0)
    assert obs.shape == (2,) and env.action_space.shape == (1,)
    assert_acts_within(load_policy(run)(obs), env.action_space)


@pytest.mark.slow
def test_her_goal_learns_from_dict_observations(tmp_path):
    from ddpgx import load_policy

    out = run_example("her_goal", tmp_path, 1_000)  # the her preset updates from step 100, evaluates at 500
    rows = eval_rows(tmp_path / "run")
    assert [int(r["step"]) for r in rows] == [500, 1000] or "stopped at step" in out, (rows, out)
    assert all(0.0 <= float(r["success"]) <= 1.0 for r in rows), rows
    assert "20 fresh goals:" in out, out
    policy = load_policy(tmp_path / "run")
    assert policy.config.her and policy.config.preset == "her"
    space = gym.spaces.Dict({k: gym.spaces.Box(-1.0, 1.0, (2,), np.float32)
                             for k in ("observation", "achieved_goal", "desired_goal")})  # fmt: skip
    assert_acts_within(policy(space.sample()), gym.spaces.Box(-1.0, 1.0, (2,), np.float32))


def core_locks(tmp_path: Path) -> dict[str, str]:
    """The sweep's runs take cores among themselves, whatever other ddpgx sweeps hold (as test_sweep's do)."""
    locks = tmp_path / "core-locks"
    locks.mkdir()
    return {"DDPGX_CORE_LOCKS": str(locks)}
