"""The training loop end to end: determinism, outputs, storage of terminations, and that Pendulum is learned."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from small import SMALL_BASE

from ddpgx import load_policy, preset_config, train
from ddpgx.config import Config

pytestmark = pytest.mark.slow  # every test trains

SMALL = dict(
    **SMALL_BASE,
    total_steps=1_200,
    learning_starts=300,
    batch_size=32,
    buffer_size=5_000,
    eval_every=600,
    eval_episodes=2,
    log_every=200,
)


def rows_without_wall(path):
    with open(path, newline="") as f:
        return [{k: v for k, v in r.items() if k != "wall_s"} for r in csv.DictReader(f)]


@pytest.mark.parametrize("preset,extra", [("pendulum", {"update_every": 4}), ("paper", {})])
def test_same_seed_gives_identical_episodes_and_bitwise_parameters(tmp_path, preset, extra):
    runs = []
    for i in range(2):
        cfg = preset_config(preset, "Pendulum-v1", seed=3, run_dir=str(tmp_path / f"r{i}"), **SMALL, **extra)
        runs.append(train(cfg))
    a, b = runs
    assert rows_without_wall(a.run_dir / "episodes.csv") == rows_without_wall(b.run_dir / "episodes.csv")
    assert len(rows_without_wall(a.run_dir / "episodes.csv")) == 6  # 1200 steps / 200-step episodes
    assert a.params_path.read_bytes() == b.params_path.read_bytes()
    assert rows_without_wall(a.run_dir / "eval.csv") == rows_without_wall(b.run_dir / "eval.csv")
    # a different seed gives different parameters
    c = train(preset_config(preset, "Pendulum-v1", seed=4, run_dir=str(tmp_path / "r2"), **SMALL, **extra))
    assert c.params_path.read_bytes() != a.params_path.read_bytes()


def test_run_directory_contents(tmp_path):
    cfg = preset_config(
        "pendulum", "Pendulum-v1", run_dir=str(tmp_path / "run"), **{**SMALL, "tensorboard": True}
    )
    res = train(cfg)
    d = res.run_dir
    meta = json.loads((d / "config.json").read_text())
    assert meta["config"]["preset"] == "pendulum" and meta["config"]["total_steps"] == 1_200
    assert meta["action_low"] == [-2.0] and meta["action_high"] == [2.0]
    for pkg in ("ddpgx", "jax", "flax", "gymnasium", "mujoco"):
        assert meta["versions"][pkg] != "not installed"
    evals = list(csv.DictReader(open(d / "eval.csv")))
    assert [int(r["step"]) for r in evals] == [600, 1200]
    assert float(evals[-1]["mean_return"]) == pytest.approx(res.final_eval_mean, abs=1e-2)
    train_rows = list(csv.DictReader(open(d / "train.csv")))
    assert [int(r["step"]) for r in train_rows] == [400, 600, 800, 1000, 1200]  # updates start at 300
    assert all(np.isfinite(float(r["critic_loss"])) for r in train_rows)
    assert list((d / "tb").iterdir())
    policy = load_policy(d)
    a = policy(np.array([1.0, 0.0, 0.0], np.float32))
    assert a.shape == (1,) and -2.0 <= a[0] <= 2.0
    batch = policy(np.zeros((5, 3), np.float32))
    assert batch.shape == (5, 1)


def test_existing_run_dir_is_refused(tmp_path):
    from ddpgx.errors import UserError

    cfg = preset_config("pendulum", "Pendulum-v1", run_dir=str(tmp_path / "run"), **SMALL)
    train(cfg)
    with pytest.raises(UserError, match="already exists"):
        train(cfg)


def test_terminations_and_truncations_stored_apart(tmp_path, monkeypatch):
    """In the loop: an env that terminates on positive actions and otherwise truncates after 4 steps."""
    import importlib

    train_mod = importlib.import_module("ddpgx.gymsetup")  # the Gymnasium engines make the replay here

    buffers = []
    real = train_mod.ReplayBuffer

    def spy(*a, **k):
        buffers.append(real(*a, **k))
        return buffers[-1]

    spy.need = real.need  # the engine asks the class for its memory before making any
    monkeypatch.setattr(train_mod, "ReplayBuffer", spy)
    cfg = Config(
        env="TestTerminating-v0",
        run_dir=str(tmp_path / "t"),
        **{**SMALL, "total_steps": 400, "learning_starts": 400},
    )
    train(cfg)
    buf = buffers[0]
    idx = np.flatnonzero(buf.valid)
    b = buf.gather(idx)
    env_action = -3.0 + (b.action[:, 0] + 1.0) * 2.0  # bounds [-3, 1]
    np.testing.assert_array_equal(b.terminated, (env_action > 0).astype(np.float32))
    truncated_ends = (b.next_obs[:, 0] == 4) & (b.terminated == 0)
    assert truncated_ends.sum() > 10 and b.terminated.sum() > 10


def test_pendulum_is_learned(tmp_path):
    """The pendulum preset with a fixed seed swings up and balances: mean eval return >= -250."""
    cfg = preset_config(
        "pendulum",
        "Pendulum-v1",
        seed=0,
        total_steps=10_000,
        eval_every=1_000,
        run_dir=str(tmp_path / "p"),
        progress=False,
        tensorboard=False,
        plot=False,
    )
    res = train(cfg)
    assert res.final_eval_mean >= -250, res
    evals = list(csv.DictReader(open(res.run_dir / "eval.csv")))
    assert (
        float(evals[0]["mean_return"]) < -500
    )  # it really started from a poor policy (step 1000: no update yet)


def test_target_return_stops_early_once_solved(tmp_path):
    cfg = preset_config(
        "pendulum", "Pendulum-v1", run_dir=str(tmp_path / "r"), **{**SMALL, "target_return": -1e9}
    )
    res = train(cfg)
    assert res.steps == 600  # the first evaluation already meets an unreachable-to-miss target
    assert [int(r["step"]) for r in rows_without_wall(res.run_dir / "eval.csv")] == [600]


CACHED_RUN = """
import json, sys
import jax
from ddpgx import preset_config, train
events = []
jax.monitoring.register_event_listener(lambda name, **kw: events.append(name))
cfg = preset_config("pendulum", "Pendulum-v1", seed=5, run_dir=sys.argv[1], compile_cache=sys.argv[2],
                    **json.loads(sys.argv[3]))
train(cfg)
print(json.dumps({"hits": events.count("/jax/compilation_cache/cache_hits")}))
"""


def test_compile_cache_is_filled_then_used_and_changes_no_result(tmp_path):
    import subprocess
    import sys

    small = {k: list(v) if isinstance(v, tuple) else v for k, v in SMALL.items()}
    cache = tmp_path / "xla"

    def cached(name):
        out = subprocess.run(
            [sys.executable, "-c", CACHED_RUN, str(tmp_path / name), str(cache), json.dumps(small)],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        return json.loads(out.stdout.strip().splitlines()[-1])["hits"]

    assert cached("first") == 0
    assert any(p.name.startswith("jit_update_and_act") for p in cache.iterdir())
    assert cached("second") >= 3  # update_and_act, act, act_greedy at least
    plain = train(preset_config("pendulum", "Pendulum-v1", seed=5, run_dir=str(tmp_path / "plain"), **SMALL))
    for name in ("first", "second"):
        assert (tmp_path / name / "final.msgpack").read_bytes() == plain.params_path.read_bytes()
