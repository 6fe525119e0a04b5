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
