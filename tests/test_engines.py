"""Both engines run through the one host: the same config on Gymnasium's Pendulum-v1 (the Python engine) and on
gymnax's (the compiled engine) writes the same files with the same columns, and the same finished marker."""

from __future__ import annotations

import json

import pytest

from ddpgx import checkpoint as ckpt
from ddpgx.cli import main
from ddpgx.errors import TrainingDiverged
from ddpgx.logs import read_rows
from ddpgx.presets import preset_config
from ddpgx.train import train

pytestmark = pytest.mark.slow

FLAGS = ["--total-steps", "2000", "--learning-starts", "500", "--eval-every", "1000", "--log-every", "500",
         "--eval-episodes", "2", "--no-progress", "--no-tensorboard"]  # fmt: skip


def files(run) -> set[str]:
    return {p.name for p in run.iterdir()}


def finished(run) -> str:
    name = ckpt.latest_name(run)
    return json.loads((run / "checkpoints" / name / "manifest.json").read_text())["finished"]


def test_the_python_and_the_compiled_engine_write_the_same_files_columns_and_finished_marker(tmp_path):
    runs = {}
    for env in ("Pendulum-v1", "gymnax:Pendulum-v1"):
        for tag, extra in (("full", []), ("target", ["--target-return", "-100000"])):
            run = tmp_path / f"{env.replace(':', '_')}_{tag}"
            assert main(["train", "--env", env, *FLAGS, *extra, "--run-dir", str(run)]) == 0
            runs[env, tag] = run
    for tag, marker in (("full", "total_steps"), ("target", "target_return")):
        py, jx = runs["Pendulum-v1", tag], runs["gymnax:Pendulum-v1", tag]
        assert files(py) == files(jx)
        for csv in ("episodes.csv", "eval.csv", "train.csv"):
            assert (py / csv).read_text().splitlines()[0] == (jx / csv).read_text().splitlines()[0], csv
        assert finished(py) == finished(jx) == marker
    # the target (any return beats -100000) is met at the first evaluation by both
    for env in ("Pendulum-v1", "gymnax:Pendulum-v1"):
        assert [r["step"] for r in read_rows(runs[env, "target"] / "eval.csv")] == ["1000"]
        assert [r["step"] for r in read_rows(runs[env, "full"] / "eval.csv")] == ["1000", "2000"]
        assert [r["step"] for r in read_rows(runs[env, "full"] / "train.csv")] == ["1000", "1500", "2000"]


def test_a_diverging_run_stops_with_the_same_line_in_both_engines_naming_the_networks_not_the_env(tmp_path):
    """Learning rates of 1e30 blow the actor up: its actions go NaN. Both engines say so before the env is stepped
    with them (the env would return NaN and be blamed), with the same line, and do not offer a resume as the cure
    (it replays the same steps)."""
    lines = []
    for env in ("Pendulum-v1", "gymnax:Pendulum-v1"):
        run = tmp_path / env.replace(":", "_")
        cfg = preset_config("pendulum", env, total_steps=3000, learning_starts=200, log_every=200, eval_every=1000,
                            checkpoint_every=100, critic_lr=1e30, actor_lr=1e30, run_dir=str(run), progress=False,
                            tensorboard=False)  # fmt: skip
        with pytest.raises(TrainingDiverged) as e:
            train(cfg)
        assert not (run / "final.msgpack").exists()
        last = ckpt.latest_name(run)
        step = int(str(e.value).split(" at step ")[1].split(":")[0]) if " at step " in str(e.value) else None
        lines.append(
            str(e.value).replace(str(run), "RUN").replace(f"step {step}", "step S").replace(last, "LAST")
        )
    assert lines[0] == lines[1], lines
    assert lines[0] == (
        "the policy's actions became NaN or inf at step S: the networks diverged (lower --critic-lr or --actor-lr, "
        "or raise --batch-size, in a new run); the run stopped: its last checkpoint (LAST) is kept, but ddpgx train "
        "--resume RUN replays the same steps and stops here again unless its cause (the env's code) was changed"
    )


def test_a_run_killed_between_its_final_checkpoint_and_final_msgpack_resumes_to_the_same_file(
    tmp_path, capsys
):
    run = tmp_path / "run"
    assert main(["train", "--env", "Pendulum-v1", *FLAGS, "--run-dir", str(run)]) == 0
    final = (run / "final.msgpack").read_bytes()
    (run / "final.msgpack").unlink()  # as if killed after the final checkpoint, before final.msgpack
    capsys.readouterr()
    assert main(["train", "--resume", str(run)]) == 0
    out = capsys.readouterr().out
    assert "wrote it from the run's final checkpoint" in out and "done: 2000 steps" in out
    assert (run / "final.msgpack").read_bytes() == final


@pytest.mark.parametrize("env", ["Pendulum-v1", "gymnax:Pendulum-v1"])
def test_both_engines_warn_of_a_run_too_short_to_update_and_the_done_line_names_a_target(
    tmp_path, capsys, env
):
    short = ["--total-steps", "400", "--learning-starts", "500", "--eval-every", "200", "--no-progress",
             "--no-tensorboard", "--eval-episodes", "1"]  # fmt: skip
    assert main(["train", "--env", env, *short, "--run-dir", str(tmp_path / "a")]) == 0
    assert "no gradient update will run" in capsys.readouterr().out
    target = ["--target-return", "-100000", "--run-dir", str(tmp_path / "b")]
    assert main(["train", "--env", env, *short, *target]) == 0
    out = capsys.readouterr().out
    assert "done: 200 steps" in out and "(reached --target-return -100000.0)" in out
