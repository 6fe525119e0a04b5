"""The best policy: best.msgpack is the policy of the best noise-free evaluation, its step recorded; --which best
loads it in eval, record and export; a run without one says so in one line."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from ddpgx import load_policy, preset_config, train
from ddpgx.cli import main
from ddpgx.runfiles import load_params

pytestmark = pytest.mark.slow  # every test trains


def test_best_msgpack_holds_the_best_evaluation_and_which_best_loads_it(tmp_path, capsys):
    run = tmp_path / "r"
    train(preset_config("pendulum", "Pendulum-v1", total_steps=4000, eval_every=500, eval_episodes=3,
                        run_dir=str(run), progress=False, plot=False, tensorboard=False))  # fmt: skip
    rows = list(csv.DictReader(open(run / "eval.csv")))
    means = [float(r["mean_return"]) for r in rows]
    best_step = int(
        rows[int(np.argmax(means))]["step"]
    )  # the first of equal bests: a later tie does not replace it
    assert load_params(run / "best.msgpack")["step"] == best_step
    best, final = load_policy(run, which="best"), load_policy(run)
    assert best.step == best_step and final.step == 4000
    obs = np.random.default_rng(0).normal(size=(5, 3)).astype(np.float32)
    if best_step != 4000:
        assert not np.array_equal(best(obs), final(obs))
    capsys.readouterr()
    assert main(["eval", str(run), "--which", "best", "--episodes", "3", "--seed", "1000003"]) == 0
    out = capsys.readouterr().out
    assert f"best.msgpack, step {best_step}" in out
    assert "unfinished" not in out  # a finished run's best policy is not its latest checkpoint


def test_which_best_on_a_run_without_one_is_one_line(tmp_path, capsys):
    run = tmp_path / "r"
    train(preset_config("pendulum", "Pendulum-v1", total_steps=300, learning_starts=100, eval_every=300,
                        eval_episodes=1, run_dir=str(run), progress=False, plot=False, tensorboard=False))  # fmt: skip
    (run / "best.msgpack").unlink()  # as a run made before ddpgx kept one
    for cmd in (["eval", str(run), "--which", "best"], ["export", str(run), "--which", "best"],
                ["record", str(run), "--which", "best"]):  # fmt: skip
        assert main(cmd) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "has no best.msgpack" in err and "--which final" in err, err
