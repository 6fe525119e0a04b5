"""Bad input, round four: each case is one line on stderr, exit 2, no traceback, nothing created."""

from __future__ import annotations

import pytest

from ddpgx import load_policy, preset_config
from ddpgx.cli import main
from ddpgx.errors import UserError

CASES = [
    (["--seeds", "3-1"], "--seeds 3-1: the range 3-1 runs backwards; write it low-high, e.g. 1-3"),
    (["--seeds", ""], "--seeds '' names no seed"),
    (["--target-return", "nan"], "--target-return must be a finite number, got nan"),
    (["--target-success", "0.5", "--total-steps", "1000"], "--target-success needs a goal env"),
    (["--env", "gymnax:Pendulum-v1", "--chunk-steps", "1000000000000", "--total-steps", "2000"],
     "--chunk-steps 1000000000000's per-step outputs"),
]  # fmt: skip


@pytest.mark.parametrize("args,expected", CASES, ids=[" ".join(a) for a, _ in CASES])
def test_bad_train_input_is_one_line_and_exit_2_before_anything_is_written(tmp_path, capsys, args, expected):
    run = tmp_path / "run"
    code = main(["train", "--env", "Pendulum-v1", "--no-progress", *args, "--run-dir", str(run)])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err, err
    assert expected in err, err
    assert not run.exists()


def test_wrong_types_in_the_python_api_are_one_line():
    with pytest.raises(UserError, match="preset_config\\(name, env_id\\) takes two strings"):
        preset_config("", 5)
    with pytest.raises(UserError, match="load_policy takes a run directory or a policy file"):
        load_policy(123)


@pytest.mark.slow
def test_without_a_terminal_progress_is_plain_lines_at_the_set_interval_and_nothing_shows_nan(
    tmp_path, capsys, monkeypatch
):
    from ddpgx import logs
    from ddpgx.logs import RunLogger
    from ddpgx.train import train

    (tmp_path / "l").mkdir()
    lg = RunLogger(tmp_path / "l", 100, 0, False, False)
    assert lg.shown() == ("", "", "")  # before the first episode: nothing, not "return nan"
    lg.close()
    monkeypatch.setattr(logs, "PLAIN_EVERY_S", 0.0)
    cfg = preset_config("pendulum", "Pendulum-v1", total_steps=1500, eval_every=1000, eval_episodes=1,
                        run_dir=str(tmp_path / "run"), progress=True, tensorboard=False, plot=False)  # fmt: skip
    train(cfg)
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("ddpgx: step")]
    assert [line.split()[2] for line in lines] == [f"{s}/1500" for s in range(250, 1501, 250)]
    assert (
        "return" in lines[0] and "eval" not in lines[0] and "eval" in lines[3]
    )  # 1000: the first evaluation
    assert not any("nan" in line for line in lines)


# Section 1: every command's parse errors are ddpgx's one line, never tyro's boxes; (command, args, expected)
PARSE_CASES = [
    (["train", "--env", "Pendulum-v1"], ["--total-steps", "1e4.5"], "--total-steps '1e4.5': must be an int"),
    (["train", "--env", "Pendulum-v1"], ["--noise", "oo"], "--noise 'oo': must be one of 'ou', 'gaussian', 'param'"),
    (["train", "--env", "Pendulum-v1"], ["--critic-hidden", "256", "x"], "--critic-hidden 'x': must be an int"),
    (["train", "--env", "Pendulum-v1"], ["--total-steps"], "--total-steps needs a value"),
    (["train"], ["--resume"], "--resume needs the run directory: ddpgx train --resume RUN_DIR"),
    (["eval"], [], "ddpgx eval needs RUN_DIR: ddpgx eval RUN_DIR"),
    (["record"], [], "ddpgx record needs RUN_DIR"),
    (["export"], [], "ddpgx export needs RUN_DIR"),
    (["plot"], [], "ddpgx plot needs RUN_DIR...: ddpgx plot RUN_DIR..."),
    (["report"], [], "ddpgx report needs DIR..."),
    (["plot", "somewhere"], ["--smooth", "x"], "--smooth 'x': must be an int"),
    (["eval", "runs/nonexistent"], [], "runs/nonexistent does not exist"),
    (["tune", "--env", "Pendulum-v1", "--trials", "1"], [], "ddpgx tune needs --out: ddpgx tune --env ENV"),
    (["presets", "pendlum"], [], "unknown preset 'pendlum'; did you mean pendulum?"),
    (["presets", "modern", "paper"], [], "ddpgx presets takes one preset name, got 2"),
    (["train", "--env", "Pendulum-v1"], ["--env-kwargs", "gg=1"],
     "PendulumEnv (Pendulum-v1) takes no keyword 'gg' (it takes: render_mode, g)"),
]  # fmt: skip


@pytest.mark.parametrize("cmd,args,expected", PARSE_CASES, ids=[" ".join(c + a) for c, a, _ in PARSE_CASES])
def test_parse_errors_are_one_line_and_exit_2(tmp_path, capsys, monkeypatch, cmd, args, expected):
    monkeypatch.chdir(tmp_path)
    code = main([*cmd, *args])
    out, err = capsys.readouterr()
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err and "╭" not in err + out, err + out
    assert expected in err, err
    assert list(tmp_path.iterdir()) == []


def test_integer_fields_take_1e6_and_underscores_on_the_command_line():
    from ddpgx.cli import parse_train_args

    cfg = parse_train_args(["--env", "Pendulum-v1", "--total-steps", "1e4", "--eval-every", "2_500",
                            "--critic-hidden", "64", "6.4e1", "--target-return", "-150"])  # fmt: skip
    assert cfg.total_steps == 10_000 and cfg.eval_every == 2_500 and cfg.critic_hidden == (64, 64)
    assert cfg.target_return == -150.0


def test_tuned_values_keep_their_exponent():
    from ddpgx.cli import param_text

    assert param_text(1.262094e-05) == "1.262e-05" and param_text(0.25) == "0.25" and param_text(3) == "3"


@pytest.mark.slow
def test_a_run_stopped_by_its_target_continues_with_a_higher_target_or_none(tmp_path, capsys):
    run = str(tmp_path / "run")
    base = ["--no-progress", "--no-tensorboard", "--no-plot"]
    assert main(["train", "--env", "Pendulum-v1", "--preset", "pendulum", "--total-steps", "1500", "--eval-every",
                 "500", "--eval-episodes", "1", "--target-return", "-5000", "--run-dir", run, *base]) == 0  # fmt: skip
    assert "reached --target-return -5000" in capsys.readouterr().out
    assert main(["train", "--resume", run, *base]) == 2  # the same target: complete, and how to go on
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "stopped at step 500 on reaching its --target-return -5000.0" in err
    assert f"ddpgx train --resume {run} --target-return None" in err
    assert main(["train", "--resume", run, "--target-return", "None", *base]) == 0
    steps = [int(r.split(",")[0]) for r in open(f"{run}/eval.csv").read().split()[1:]]
    assert steps == [500, 1000, 1500]


def test_a_config_json_with_a_wrong_typed_field_is_one_line(tmp_path, capsys):
    import json

    from ddpgx.config import Config
    from ddpgx.runfiles import write_json

    run = tmp_path / "run"
    run.mkdir()
    for field, value, said in (("tau", "abc", "tau must be a number, got 'abc'"),
                               ("actor_hidden", ["a"], "actor_hidden must be a tuple of ints, got ('a',)"),
                               ("total_steps", 1.5, "total_steps must be an int, got 1.5")):  # fmt: skip
        cfg = json.loads(json.dumps(dataclasses_asdict(Config(env="Pendulum-v1"))))
        write_json(run / "config.json", {"config": {**cfg, field: value}})
        for cmd in (["eval", str(run)], ["export", str(run)], ["train", "--resume", str(run)]):
            assert main(cmd) == 2
            err = capsys.readouterr().err
            assert err.count("\n") == 1 and f"config.json: {said}" in err, (cmd, err)


def dataclasses_asdict(x):
    import dataclasses

    return dataclasses.asdict(x)
