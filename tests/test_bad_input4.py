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
