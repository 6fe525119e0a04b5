"""ddpgx export: the ONNX model equals load_policy to 1e-5 (modern, paper's batch norm, --obs-norm, HER on a goal
env; batch sizes 1 and 7), eval --onnx gives eval's return, and every bad input is one line."""

from __future__ import annotations

import json
import re
from pathlib import Path

import goal_envs
import numpy as np
import onnxruntime as ort
import pytest
from small import SMALL_BASE

from ddpgx import load_policy, preset_config, train
from ddpgx.cli import main

pytestmark = pytest.mark.slow  # every test reads runs the module trains

SMALL = dict(**SMALL_BASE, total_steps=600, learning_starts=200, eval_every=600, eval_episodes=2)
CASES = {
    "modern": ("modern", "Pendulum-v1", {}),
    "paper-bn": ("paper", "Pendulum-v1", {}),
    "obs-norm": ("modern", "Pendulum-v1", {"obs_norm": True}),
    "her": ("her", "goal_envs:PointGoal-v0", {"buffer_size": 5_000}),
}


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("export")
    out = {}
    for name, (preset, env, over) in CASES.items():
        cfg = preset_config(preset, env, run_dir=str(root / name), **{**SMALL, **over})
        out[name] = train(cfg).run_dir
    return out


@pytest.mark.parametrize("name", list(CASES))
def test_the_onnx_model_is_the_jax_policy_at_batch_1_and_7(runs, name, capsys):
    run = runs[name]
    assert main(["export", str(run)]) == 0
    assert "matches the JAX policy" in capsys.readouterr().out
    sess = ort.InferenceSession(str(run / "policy.onnx"), providers=["CPUExecutionProvider"])
    policy = load_policy(run)
    rng = np.random.default_rng(0)
    for batch in (1, 7):
        obs = rng.normal(size=(batch, policy.obs_dim)).astype(np.float32) * 3
        want = policy(obs)
        if name == "her":  # three named inputs, the Dict's flattening inside the graph
            feeds = {"observation": obs[:, :2], "achieved_goal": obs[:, 2:4], "desired_goal": obs[:, 4:]}
        else:
            feeds = {"observation": obs}
        got = sess.run(None, feeds)[0]
        assert got.shape == want.shape == (batch, policy.action_dim)
        np.testing.assert_allclose(got, want, atol=1e-5, rtol=0)
    assert [i.shape[0] for i in sess.get_inputs()] == ["B"] * len(sess.get_inputs())  # dynamic batch
    meta = sess.get_modelmeta().custom_metadata_map
    assert meta["env_id"] == policy.config.env and int(meta["step"]) == 600
    assert json.loads(meta["action_space"])["shape"] == [policy.action_dim]
    assert "ddpgx_version" in meta


def test_paper_preset_batch_norm_runs_in_inference_mode(runs, tmp_path):
    """Batch norm in inference mode: the exported net must use the running statistics, not the batch's; a batch of
    one identical row would then give the same action as the row inside a varied batch."""
    policy = load_policy(runs["paper-bn"])
    obs = np.random.default_rng(1).normal(size=(7, policy.obs_dim)).astype(np.float32)
    assert main(["export", str(runs["paper-bn"]), "--out", str(tmp_path / "bn.onnx")]) == 0
    sess = ort.InferenceSession(str(tmp_path / "bn.onnx"), providers=["CPUExecutionProvider"])
    one = sess.run(None, {"observation": obs[:1]})[0]
    many = sess.run(None, {"observation": obs})[0]
    np.testing.assert_allclose(one[0], many[0], atol=1e-6)
    assert np.ptp(many) > 1e-4  # the policy does depend on the observation


def test_eval_onnx_gives_the_same_return_as_eval(runs, capsys, tmp_path):
    run = runs["modern"]
    assert main(["export", str(run), "--out", str(tmp_path / "p.onnx")]) == 0
    capsys.readouterr()
    assert main(["eval", str(run), "--episodes", "3"]) == 0
    jax_line = capsys.readouterr().out
    assert main(["eval", str(run), "--episodes", "3", "--onnx", str(tmp_path / "p.onnx")]) == 0
    onnx_line = capsys.readouterr().out
    ret = lambda s: float(re.search(r"mean return (-?[\d.]+)", s).group(1))  # noqa: E731
    assert ret(jax_line) == ret(onnx_line) and "ONNX model" in onnx_line


def test_eval_onnx_on_a_goal_env_reports_success(runs, capsys):
    run = runs["her"]
    assert main(["export", str(run)]) == 0
    capsys.readouterr()
    assert main(["eval", str(run), "--episodes", "4"]) == 0
    a = capsys.readouterr().out
    assert main(["eval", str(run), "--episodes", "4", "--onnx", str(run / "policy.onnx")]) == 0
    b = capsys.readouterr().out
    assert a.split(" over ")[0] == b.split(" over ")[0] and "success rate" in b


def one_line_error(capsys, code: int, argv: list[str]) -> str:
    assert main(argv) == code
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("ddpgx: error: "), err
    return err


def test_bad_inputs_are_one_line(runs, capsys, tmp_path, monkeypatch):
    err = one_line_error(capsys, 2, ["export", str(tmp_path)])
    assert "not a ddpgx run directory" in err
    err = one_line_error(capsys, 2, ["export", str(runs["modern"]), "--out", str(tmp_path / "no" / "p.onnx")])
    assert "does not exist" in err and not (tmp_path / "no").exists()
    err = one_line_error(capsys, 2, ["export", str(runs["modern"]), "--out", str(tmp_path)])
    assert "is a directory" in err
    err = one_line_error(capsys, 2, ["eval", str(runs["modern"]), "--onnx", str(tmp_path / "missing.onnx")])
    assert "no such file" in err
    (tmp_path / "junk.onnx").write_bytes(b"not a model")
    err = one_line_error(capsys, 2, ["eval", str(runs["modern"]), "--onnx", str(tmp_path / "junk.onnx")])
    assert "not an ONNX model" in err
    monkeypatch.setitem(__import__("sys").modules, "jax2onnx", None)  # the extra not installed
    err = one_line_error(capsys, 2, ["export", str(runs["modern"]), "--out", str(tmp_path / "x.onnx")])
    assert "pip install 'ddpgx[export]'" in err and not (tmp_path / "x.onnx").exists()


def test_a_model_that_does_not_match_is_not_written(runs, capsys, tmp_path, monkeypatch):
    import ddpgx.export

    monkeypatch.setattr(ddpgx.export, "TOLERANCE", -1.0)  # any difference, even 0, is too large
    err = one_line_error(capsys, 1, ["export", str(runs["modern"]), "--out", str(tmp_path / "m.onnx")])
    assert "differ from the JAX policy's by up to" in err and not (tmp_path / "m.onnx").exists()


def test_load_policy_refuses_nan_inf_and_non_numeric_observations(runs):
    from ddpgx.errors import UserError

    for name in ("modern", "obs-norm"):
        policy = load_policy(runs[name])
        for bad in ([np.nan, 0.0, 0.0], [np.inf, 0.0, 0.0]):
            with pytest.raises(UserError, match="NaN or inf"):
                policy(np.array(bad, np.float32))
        with pytest.raises(UserError, match="numeric observations"):
            policy("abc")
    env = goal_envs.PointGoal()
    obs, _ = env.reset(seed=0)
    obs["desired_goal"][0] = np.nan
    with pytest.raises(UserError, match="NaN or inf"):
        load_policy(runs["her"])(obs)
