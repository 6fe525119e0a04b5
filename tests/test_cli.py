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
    (["--preset", "moden"], "unknown preset 'moden'; did you mean modern? choose one of: paper, modern"),
    (["--learning-rate", "1e-3"], "unknown flag --learning-rate"),
    (["--critic-action-layer", "2"], "--critic-action-layer must be in [0, 0] for --critic-hidden 8"),
    (["--seed", "-1"], "--seed must be >= 0, got -1"),
    (
        ["--actor-hidden", "1000000", "1000000"],
        "this run needs about 18626.6 GiB of host memory (networks --actor-hidden 1000000 1000000",
    ),
    (["--env", "TestNanReset-v0"], "TestNanReset-v0's reset() returned a NaN or inf observation"),
    (
        ["--env", "no_such_module_xyz:Thing-v0"],
        "cannot import env module 'no_such_module_xyz' (No module named 'no_such_module_xyz')",
    ),
    (["--env-module", "no_such_module_xyz"], "cannot import env module 'no_such_module_xyz'"),
    (
        ["--env", "my_env_file.py:Dot"],
        "name the module, not its file: my_env_file:ENV (from the file's directory",
    ),
    (
        ["--env", "examples.point_goal:NoSuchEnv"],
        "module 'examples.point_goal' has no env class named NoSuchEnv",
    ),
    (["--env-kwargs", "g"], "--env-kwargs takes key=value pairs, got 'g'"),
    (
        ["--env-kwargs", "no_such_arg=1"],
        "PendulumEnv (Pendulum-v1) takes no keyword 'no_such_arg' (it takes: render_mode, g)",
    ),
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
        # rewards of 1e38 blow the networks up: their NaN actions are caught before the env is stepped with them
        ("TestHugeReward-v0", "the networks diverged (lower --critic-lr or --actor-lr"),
        ("TestNanInEval-v0", "the noise-free evaluation at step 400 returned nan"),  # was a finished run
        # a reset's NaN after the first is the run's data gone bad, not an env broken before anything was learned
        ("TestNanLaterReset-v0", "reset() returned a NaN or inf observation"),
    ],
)
@pytest.mark.slow
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
    assert "nothing was learned yet" not in err and "no checkpoint was taken yet" in err, err
    assert not (tmp_path / "run" / "final.msgpack").exists()


def test_run_dir_that_is_a_file_is_refused(capsys, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    assert main(["train", *FAST, "--run-dir", str(blocker)]) == 2
    err = capsys.readouterr().err
    assert (
        "--run-dir " + str(blocker) + " is an existing file, not a directory" in err and err.count("\n") == 1
    )
    assert blocker.read_text() == "x"


def test_env_module_that_fails_on_import_is_named_with_its_error(capsys, tmp_path, monkeypatch):
    (tmp_path / "broken_envs.py").write_text("raise RuntimeError('needs a licence key')\n")
    monkeypatch.chdir(tmp_path)
    assert main(["train", *FAST, "--env", "broken_envs:Thing-v0", "--run-dir", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert "cannot import env module 'broken_envs' (RuntimeError: needs a licence key)" in err
    assert err.count("\n") == 1 and not (tmp_path / "run").exists()


@pytest.mark.slow
def test_too_few_steps_to_learn_warns_in_one_line(capsys, tmp_path):
    args = [
        "train",
        *FAST,
        "--total-steps",
        "100",
        "--learning-starts",
        "200",
        "--run-dir",
        str(tmp_path / "r"),
    ]
    assert main(args) == 0
    out = capsys.readouterr().out
    # pendulum preset: 4 updates fused per call, so the first update is at step 200 + 4 - 1
    assert "ddpgx: warning: --total-steps 100 is below the 203 steps before the first update" in out
    assert "no gradient update will run" in out
    assert not (tmp_path / "r" / "train.csv").read_text().strip().count("\n")  # header only: no update ran
    # the warning is exact: at 203 steps one (fused) update runs, and nothing is said
    args = [
        "train",
        *FAST,
        "--total-steps",
        "203",
        "--learning-starts",
        "200",
        "--run-dir",
        str(tmp_path / "r2"),
    ]
    assert main([*args, "--log-every", "203"]) == 0
    assert "warning" not in capsys.readouterr().out
    assert (tmp_path / "r2" / "train.csv").read_text().strip().count("\n") == 1  # one row of losses


def test_wrong_config_types_from_python_name_the_field(tmp_path):
    from ddpgx import UserError, preset_config, train

    cases = [
        (dict(total_steps=300.0), "total_steps must be an int, got 300.0"),
        (dict(tau="0.01"), "tau must be a number, got '0.01'"),
        (dict(batch_norm=1), "batch_norm must be a bool (True or False), got 1"),
        (dict(actor_hidden=(64.0, 64)), "actor_hidden must be a tuple of ints, got (64.0, 64)"),
        (dict(noise="pink"), "noise must be one of 'ou', 'gaussian', 'param', got 'pink'"),
    ]
    for over, message in cases:
        with pytest.raises(UserError) as e:  # refused where the Config is made
            preset_config("pendulum", "Pendulum-v1", run_dir=str(tmp_path / "run"), **over)
        assert str(e.value) == message
        cfg = preset_config("pendulum", "Pendulum-v1", run_dir=str(tmp_path / "run")).replace(**over)
        with pytest.raises(UserError) as e:  # and by train(), for a Config changed after it was made
            train(cfg)
        assert str(e.value) == message
        assert not (tmp_path / "run").exists()
    # friendly forms are accepted: a list for a tuple, numpy integers, a dict of env kwargs
    import numpy as np

    from ddpgx.presets import resolve

    cfg = resolve(preset_config("pendulum", seed=np.int64(3), actor_hidden=[8, 8], env_kwargs={"g": 9.0}))
    assert (cfg.seed, cfg.actor_hidden, cfg.env_kwargs) == (3, (8, 8), ("g=9.0",))


def test_eval_on_a_directory_that_is_not_a_run(capsys, tmp_path):
    assert main(["eval", str(tmp_path)]) == 2
    assert "is not a ddpgx run directory" in capsys.readouterr().err


def test_unknown_command_suggests(capsys):
    assert main(["trian"]) == 2
    assert "did you mean `ddpgx train`" in capsys.readouterr().err


def test_presets_lists_every_preset(capsys):
    assert main(["presets"]) == 0
    out = capsys.readouterr().out
    for word in (
        "paper",
        "modern",
        "pendulum",
        "td3",
        "her",
        "her8",
        "--critic-weight-decay",
        "--noise-theta",
    ):
        assert word in out


def test_presets_at_80_columns_and_one_preset_with_its_sources(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    assert main(["presets"]) == 0
    out = capsys.readouterr().out
    assert max(len(line) for line in out.splitlines()) <= 80
    assert "Seeds everything" not in out and "ddpgx presets NAME" in out  # no meaning column when narrow
    assert main(["presets", "her8"]) == 0
    out = capsys.readouterr().out
    assert max(len(line) for line in out.splitlines()) <= 80
    assert "norm_eps" in out and "mpirun -np 8" in out  # the sources of its values
    assert "--obs-std-floor" in out and "0.01" in out
    assert main(["presets", "nope"]) == 2
    assert "choose one of: paper, modern, pendulum, td3, td3-paper, her, her8" in capsys.readouterr().err


@pytest.mark.slow
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


@pytest.mark.slow
def test_an_env_without_a_time_limit_gets_the_default_one_and_says_so(tmp_path, capsys, monkeypatch):
    import csv

    from ddpgx.envs import DefaultTimeLimit

    monkeypatch.setattr(DefaultTimeLimit, "warned", False)  # once per process: as if this were the first run
    run = tmp_path / "r"
    argv = ["train", "--env", "gymnasium.envs.classic_control:PendulumEnv", "--run-dir", str(run),
            "--total-steps", "2500", "--learning-starts", "2500", "--eval-every", "2500", "--eval-episodes", "1",
            "--no-progress", "--no-plot", "--no-tensorboard"]  # fmt: skip
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "warning: PendulumEnv declares no time limit and ran an episode to 1000 steps" in out
    assert "max_episode_steps=N" in out and out.count("declares no time limit") == 1
    rows = list(csv.DictReader(open(run / "episodes.csv")))
    assert [int(r["length"]) for r in rows] == [1000, 1000]  # not one endless episode


def test_an_env_that_ends_its_own_episodes_gets_no_time_limit_warning(capsys, monkeypatch):
    """examples/point_goal.py declares no time limit but ends its episodes itself: the default limit is there,
    never reached, and nothing is said; an env whose episodes never end is told once, when the limit cuts one."""
    from ddpgx.envs import DEFAULT_MAX_EPISODE_STEPS, DefaultTimeLimit, make_env

    monkeypatch.setattr(DefaultTimeLimit, "warned", False)
    for env_id, warned in (
        ("examples.point_goal:PointGoal", False),
        ("gymnasium.envs.classic_control:PendulumEnv", True),
    ):
        env = make_env(env_id)
        assert isinstance(env, DefaultTimeLimit)
        env.reset(seed=0)
        steps = 0
        for _ in range(2 * DEFAULT_MAX_EPISODE_STEPS):
            _, _, terminated, truncated, _ = env.step(env.action_space.sample() * 0)
            steps += 1
            if terminated or truncated:
                break
        out = capsys.readouterr().out
        assert ("declares no time limit" in out) == warned, (env_id, steps, out)
        assert steps == DEFAULT_MAX_EPISODE_STEPS if warned else steps < DEFAULT_MAX_EPISODE_STEPS
        env.close()


def test_train_given_a_string_says_what_it_takes():
    import pytest

    from ddpgx import UserError, train

    with pytest.raises(UserError, match=r"train\(\) takes a Config \(preset_config\(...\)\), got str"):
        train("Pendulum-v1")


@pytest.mark.slow
def test_a_bad_env_kwargs_value_read_at_the_first_step_is_one_line_and_leaves_nothing(tmp_path, capsys):
    run = tmp_path / "r"
    assert main(["train", "--env", "Pendulum-v1", "--env-kwargs", 'g="ten"', "--run-dir", str(run)]) == 2
    err = capsys.readouterr().err
    assert (
        err.count("\n") == 1 and "failed on its first step" in err and 'g="ten"' in err and not run.exists()
    )
    # the corrected command then runs in the same place
    assert main(["train", "--env", "Pendulum-v1", "--env-kwargs", "g=9.81", "--run-dir", str(run), "--total-steps",
                 "300", "--learning-starts", "100", "--eval-every", "300", "--eval-episodes", "1", "--no-progress",
                 "--no-plot", "--no-tensorboard"]) == 0  # fmt: skip


@pytest.mark.slow
def test_record_on_an_env_without_render_names_what_it_lacks(tmp_path, capsys):
    from ddpgx import preset_config, train

    run = tmp_path / "r"
    train(preset_config("pendulum", "envs_for_tests:TestTerminating-v0", total_steps=300, learning_starts=100,
                        eval_every=300, eval_episodes=1, run_dir=str(run), progress=False, plot=False,
                        tensorboard=False))  # fmt: skip
    capsys.readouterr()
    assert main(["record", str(run), "--out", str(tmp_path / "x.gif")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "cannot render" in err and "render_mode='rgb_array'" in err, err


def test_filming_an_env_without_render_mode_says_how_to_make_it_renderable():
    from ddpgx.envs import make_env
    from ddpgx.errors import UserError

    make_env("TestNoRenderMode-v0").close()  # it trains
    with pytest.raises(UserError) as e:
        make_env("TestNoRenderMode-v0", render_mode="rgb_array")
    msg = str(
        e.value
    )  # was: "refused the keyword arguments  (...); check --env-kwargs", with no kwargs given
    assert "takes no render_mode, so it cannot be filmed: accept render_mode='rgb_array'" in msg
    assert "--env-kwargs" not in msg


def test_a_mistyped_env_is_the_only_line_no_warning_about_the_default_preset_before_it(capsys, tmp_path):
    code = main(["train", "--env", "Pendulm-v1", "--total-steps", "100", "--run-dir", str(tmp_path / "r")])
    captured = capsys.readouterr()
    assert code == 2 and "Pendulum-v1" in captured.err  # the close name
    assert "warning" not in captured.out + captured.err  # was: modern's 10000 steps before the first update
