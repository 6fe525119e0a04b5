"""Error messages name the actual problem, not a guessed cause."""

from __future__ import annotations

import json

import pytest

from ddpgx.errors import UserError
from ddpgx.grid import SweepSpec, build_grid
from ddpgx.plots import read_curve
from ddpgx.report import score_run


def _run(tmp_path, header: str):
    run = tmp_path / "r"
    run.mkdir()
    (run / "config.json").write_text(json.dumps({"config": {"env": "Pendulum-v1"}}))
    (run / "eval.csv").write_text(f"{header}\n1000,-500.0,10.0,3.0\n")
    (run / "episodes.csv").write_text("step,episode,return,length,wall_s\n200,1,-900,200,1.0\n")
    return run


def test_a_missing_column_is_named_with_the_columns_the_file_has(tmp_path):
    run = _run(
        tmp_path, "step,mean_ret,std_return,wall_s"
    )  # a corrupt or foreign header: mean_return is missing
    with pytest.raises(
        UserError, match=r"no mean_return column; its columns are step, mean_ret, std_return, wall_s"
    ):
        score_run(run, 0, "eval")
    with pytest.raises(UserError, match=r"no success column; .*info\['is_success'\]"):
        score_run(run, 0, "success")
    with pytest.raises(UserError, match=r"no success column; its columns are step, mean_ret"):
        read_curve(run, "success")


def test_duplicate_variant_names_are_named():
    spec = SweepSpec(
        out="/tmp/x", env=["Pendulum-v1"], seeds=[0], variant=[{"name": "a"}, {"name": "a", "tau": 0.01}]
    )
    with pytest.raises(UserError, match="two variants are named 'a'"):
        build_grid(spec)
