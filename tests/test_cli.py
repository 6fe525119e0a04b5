"""Every bad input a user can make gives exit code 2 and one line that says what and how to fix it."""

from __future__ import annotations

import subprocess
import sys

import pytest

from ddpgx.cli import main

FAST = [
    "--total-steps",
    "400",
    "--learning-starts",
    "100",
    "--eval-every",
    "400",
    "--eval-episodes",
    "1",
    "--actor-hidden",
    "8",
    "--critic-hidden",
    "8",
    "--batch-size",
    "16",
    "--no-progress",
    "--no-tensorboard",
    "--no-plot",
]

CASES = [
    (["--env", "CartPole-v1"], "Discrete action space; DDPG needs a continuous Box"),
    (["--env", "TestMultiDiscrete-v0"], "MultiDiscrete action space"),
    (["--env", "TestDictAction-v0"], "Dict action space"),
    (["--env", "Pendulum-v2"], "unknown environment 'Pendulum-v2'; did you mean Pendulum-v1"),
    (["--env", "HalfCheeta-v5"], "did you mean HalfCheetah-v5"),
    (["--env", "TestInfiniteBox-v0"], "infinite bounds"),
    (["--actor-lr", "0"], "--actor-lr must be a positive number"),
    (["--critic-lr", "-1e-3"], "--critic-lr must be a positive number"),
    (["--batch-size", "0"], "--batch-size must be a positive integer"),
    (["--total-steps", "-5"], "--total-steps must be a positive integer"),
    (["--tau", "0"], "--tau must be in (0, 1]"),
    (["--tau", "1.5"], "--tau must be in (0, 1]"),
    (["--gamma", "1.01"], "--gamma must be in [0, 1]"),
    (["--batch-size", "512", "--buffer-size", "100"], "--batch-size 512 is larger than --buffer-size 100"),
    (["--preset", "fast"], "unknown preset 'fast'; choose one of: paper, modern, pendulum"),
    (["--learning-rate", "1e-3"], "unknown flag --learning-rate"),
    (["--critic-action-layer", "2"], "--critic-action-layer must be in [0, 0] for --critic-hidden 8"),
]


@pytest.mark.parametrize("args,message", CASES, ids=[" ".join(c[0]) for c in CASES])
def test_bad_input_exits_2_with_one_line(args, message, capsys, tmp_path):
    code = main(["train", *FAST, "--run-dir", str(tmp_path / "run"), *args])
    err = capsys.readouterr().err
    assert code == 2
    assert message in err
    assert err.startswith("ddpgx: error: ") and err.count("\n") == 1
    assert not (tmp_path / "run").exists()  # refused before anything was written


@pytest.mark.parametrize(
    "env,message",
    [
        ("TestNanObs-v0", "NaN or inf observation/reward at step 30"),
        ("TestHugeReward-v0", "critic loss became"),
    ],
)
def test_nan_or_inf_stops_the_run_naming_the_step(env, message, capsys, tmp_path):
    args = [
        "train",
        "--env",
        env,
        "--run-dir",
        str(tmp_path / "run"),
        *FAST,
        "--log-every",
        "100",
        "--learning-starts",
        "20",
    ]
    code = main(args)
    err = capsys.readouterr().err
    assert code == 2, err
    assert message in err and err.count("\n") == 1


def test_eval_on_a_directory_that_is_not_a_run(capsys, tmp_path):
    assert main(["eval", str(tmp_path)]) == 2
    assert "is not a ddpgx run directory" in capsys.readouterr().err


def test_unknown_command_suggests(capsys):
    assert main(["trian"]) == 2
    assert "did you mean `ddpgx train`" in capsys.readouterr().err


def test_presets_lists_every_preset(capsys):
    assert main(["presets"]) == 0
    out = capsys.readouterr().out
    for word in ("paper", "modern", "pendulum", "--critic-weight-decay", "--noise-theta"):
        assert word in out


def test_train_then_eval_through_the_console_script(tmp_path):
    """The installed `ddpgx` entry point, in a subprocess, as a user runs it."""
    exe = [sys.executable, "-m", "ddpgx.cli"]
    run = tmp_path / "run"
    r = subprocess.run(
        [*exe, "train", "--env", "Pendulum-v1", "--run-dir", str(run), *FAST],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr
    assert "final eval return" in r.stdout
    r = subprocess.run(
        [*exe, "eval", str(run), "--episodes", "2"], capture_output=True, text=True, timeout=300
    )
    assert r.returncode == 0, r.stderr
    assert "Pendulum-v1: mean return" in r.stdout and "over 2 episodes" in r.stdout
    r = subprocess.run([*exe, "train", "--env", "Pendulum-v1", "--tau", "2"], capture_output=True, text=True)
    assert r.returncode == 2 and "Traceback" not in r.stderr and "--tau must be in (0, 1]" in r.stderr
