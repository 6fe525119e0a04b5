"""What a user looks at: learning-curve plots and recorded policies (GIF/MP4), headless."""

from __future__ import annotations

import json

import imageio.v3 as iio
import numpy as np
import pytest

from ddpgx import preset_config, train
from ddpgx.cli import main
from ddpgx.errors import UserError
from ddpgx.plots import group_curves, plot_runs, smooth


def fake_run(path, seed, returns, env="Pendulum-v1", preset="pendulum", **fields):
    path.mkdir(parents=True)
    cfg = {"env": env, "preset": preset, "seed": seed, **fields}
    (path / "config.json").write_text(json.dumps({"config": cfg}))
    with open(path / "episodes.csv", "w") as f:
        f.write("step,episode,return,length,wall_s\n")
        for i, r in enumerate(returns):
            f.write(f"{(i + 1) * 200},{i + 1},{r},200,{i * 0.1}\n")
    with open(path / "eval.csv", "w") as f:
        f.write("step,mean_return,std_return,wall_s\n")
        for i, r in enumerate(returns[::2]):
            f.write(f"{(2 * i + 1) * 200},{r},1.0,{i}\n")
    return path


def test_two_seeds_grouped_into_one_curve_with_a_band(tmp_path):
    a = fake_run(tmp_path / "a", 0, [-1000.0, -500.0, -200.0, -150.0])
    b = fake_run(tmp_path / "b", 1, [-1200.0, -700.0, -300.0, -150.0])
    c = fake_run(tmp_path / "c", 0, [-1.0, -2.0, -3.0, -4.0], preset="paper")
    groups = {g["label"]: g for g in group_curves([a, b, c], "episode")}
    assert set(groups) == {"pendulum", "paper"}
    g = groups["pendulum"]
    assert g["n"] == 2
    np.testing.assert_allclose(g["steps"], [200, 400, 600, 800])
    np.testing.assert_allclose(g["mean"], [-1100, -600, -250, -150])
    np.testing.assert_allclose(g["std"], [100, 100, 50, 0])


def test_runs_are_grouped_by_their_whole_config_minus_the_seed(tmp_path):
    """Same env and preset but another tau: two groups, never '2 seeds'; labels name what differs."""
    from dataclasses import asdict

    from ddpgx import preset_config

    def real_cfg(seed, **over):
        return json.loads(json.dumps(asdict(preset_config("pendulum", "Pendulum-v1", seed=seed, **over))))

    def run(name, seed, returns, **over):
        c = real_cfg(seed, run_dir=name, **over)
        return fake_run(tmp_path / name, c.pop("seed"), returns, c.pop("env"), c.pop("preset"), **c)

    a = run("a", 0, [-900.0, -300.0])
    b = run("b", 1, [-700.0, -100.0], progress=False)  # a display option: still a seed of the same group
    c = run("c", 0, [-500.0, -500.0], tau=0.05)
    d = run("d", 1, [-300.0, -300.0], tau=0.05, actor_hidden=(64, 64))
    groups = {g["label"]: g for g in group_curves([a, b, c, d], "episode")}
    assert set(groups) == {
        "pendulum, actor_hidden=128 128, tau=0.01",
        "pendulum, actor_hidden=128 128, tau=0.05",
        "pendulum, actor_hidden=64 64, tau=0.05",
    }
    g = groups["pendulum, actor_hidden=128 128, tau=0.01"]
    assert g["n"] == 2
    np.testing.assert_allclose(g["mean"], [-800, -200])
    assert groups["pendulum, actor_hidden=128 128, tau=0.05"]["n"] == 1
    # a lone group is labelled by its preset alone
    assert [g["label"] for g in group_curves([c], "episode")] == ["pendulum"]


def test_a_half_written_last_csv_line_is_ignored(tmp_path):
    a = fake_run(tmp_path / "a", 0, [-1000.0, -500.0, -200.0])
    with open(a / "episodes.csv", "a") as f:
        f.write("800,4,-15")  # killed while writing: no newline, a truncated value
    (g,) = group_curves([a], "episode")
    np.testing.assert_allclose(g["steps"], [200, 400, 600])
    np.testing.assert_allclose(g["mean"], [-1000, -500, -200])


def test_plot_out_naming_a_directory_writes_inside_it(tmp_path, capsys):
    a = fake_run(tmp_path / "a", 0, [-1000.0, -500.0, -200.0])
    out_dir = tmp_path / "figures"
    out_dir.mkdir()
    assert main(["plot", str(a), "--out", str(out_dir)]) == 0
    assert capsys.readouterr().out == f"wrote {out_dir / 'returns.png'}\n"
    assert iio.imread(out_dir / "returns.png").shape[0] > 100
    assert main(["plot", str(a), "--out", str(tmp_path / "curves.txt")]) == 2
    assert "--out must end in .png, .svg, .pdf (or name a directory)" in capsys.readouterr().err
    assert not (tmp_path / "curves.txt").exists()


@pytest.mark.slow
def test_policy_refuses_an_observation_of_the_wrong_shape_in_one_line(tmp_path):
    from ddpgx import load_policy

    res = tiny_run(tmp_path, "Pendulum-v1")
    policy = load_policy(res.run_dir)
    obs = np.array([[0.1, 0.2, 0.3], [0.3, -0.2, 0.0]], np.float32)
    batch = policy(obs)
    assert batch.shape == (2, 1)
    np.testing.assert_array_equal(policy(obs[1]), batch[1])  # one observation = one row of a batch
    for bad in (np.zeros(4), np.zeros((2, 2)), np.zeros((1, 1, 3))):
        with pytest.raises(UserError) as e:
            policy(bad)
        assert str(e.value) == (
            f"the policy of Pendulum-v1 takes observations of shape (3,) or (batch, 3), got {bad.shape}"
        )


def test_smoothing_is_a_trailing_mean():
    np.testing.assert_allclose(smooth(np.array([1.0, 3.0, 5.0, 7.0]), 2), [1, 2, 4, 6])


def test_plot_png_has_requested_size_and_is_not_blank(tmp_path):
    runs = [fake_run(tmp_path / f"r{s}", s, list(np.linspace(-1500, -150, 30) + 50 * s)) for s in range(2)]
    out = plot_runs(runs, tmp_path / "p.png", metric="episode", size=(6.0, 3.0), dpi=100)
    img = iio.imread(out)
    assert img.shape[:2] == (300, 600)
    rgb = img[..., :3].reshape(-1, 3)
    assert len(np.unique(rgb, axis=0)) > 50  # lines, band, text: not an empty canvas
    assert (rgb.std(0) > 10).all()
    # CLI: several runs, eval metric, svg
    assert (
        main(["plot", str(runs[0]), str(runs[1]), "--out", str(tmp_path / "p.svg"), "--metric", "eval"]) == 0
    )
    assert (tmp_path / "p.svg").read_text().startswith("<?xml")


def test_corrupt_or_empty_csv_gives_a_clear_error(tmp_path, capsys):
    bad = fake_run(tmp_path / "bad", 0, [1.0, 2.0])
    (bad / "episodes.csv").write_text("step,episode,return\n100,1,abc\n")
    with pytest.raises(UserError, match="corrupt"):
        plot_runs([bad], tmp_path / "x.png")
    empty = fake_run(tmp_path / "empty", 0, [])
    with pytest.raises(UserError, match="has no rows yet"):
        plot_runs([empty], tmp_path / "x.png")
    assert main(["plot", str(tmp_path / "nothing-here")]) == 2
    assert "nothing-here does not exist" in capsys.readouterr().err


def tiny_run(tmp_path, env):
    cfg = preset_config(
        "modern",
        env,
        total_steps=300,
        learning_starts=200,
        batch_size=16,
        actor_hidden=(16,),
        critic_hidden=(16,),
        eval_every=300,
        eval_episodes=1,
        run_dir=str(tmp_path / env),
        progress=False,
        tensorboard=False,
    )
    return train(cfg)


@pytest.mark.slow
def test_train_writes_returns_png(tmp_path):
    res = tiny_run(tmp_path, "Pendulum-v1")
    img = iio.imread(res.run_dir / "returns.png")
    assert img.shape[0] > 100 and img[..., :3].std() > 10


def frames_of(path):
    return np.stack(list(iio.imiter(path)))


@pytest.mark.slow
def test_record_pendulum_gif(tmp_path, capsys):
    res = tiny_run(tmp_path, "Pendulum-v1")
    out = tmp_path / "pend.gif"
    assert (
        main(
            [
                "record",
                str(res.run_dir),
                "--out",
                str(out),
                "--max-steps",
                "30",
                "--width",
                "64",
                "--height",
                "48",
            ]
        )
        == 0
    )
    assert "episode return" in capsys.readouterr().out
    frames = frames_of(out)
    assert frames.shape[:3] == (31, 48, 48)  # first frame + one per step; Pendulum's square frame fits 64x48
    assert not all(np.array_equal(frames[0], f) for f in frames[1:])  # the pendulum moves


@pytest.mark.slow
def test_record_hopper_headless_gif_and_mp4(tmp_path):
    from ddpgx.record import record

    res = tiny_run(tmp_path, "Hopper-v5")
    rec = record(res.run_dir, tmp_path / "hopper.gif", max_steps=25, size=(80, 60))
    assert rec.frames == 1 + rec.lengths[0] and rec.lengths[0] <= 25
    frames = frames_of(rec.path)
    assert frames.shape[1:3] == (60, 80) and len(frames) == rec.frames
    assert frames.std() > 5 and not np.array_equal(frames[0], frames[-1])
    mp4 = record(res.run_dir, tmp_path / "hopper.mp4", max_steps=10, size=(80, 64))
    assert mp4.path.stat().st_size > 1000


@pytest.mark.slow
def test_record_refuses_bad_output_name(tmp_path, capsys):
    res = tiny_run(tmp_path, "Pendulum-v1")
    assert main(["record", str(res.run_dir), "--out", str(tmp_path / "x.avi")]) == 2
    assert "must end in .gif or .mp4" in capsys.readouterr().err


@pytest.mark.slow
def test_report_on_a_folder_with_an_unfinished_run_reports_the_others_and_says_which_it_skipped(
    tmp_path, capsys
):
    import shutil

    from ddpgx import preset_config, train
    from ddpgx.cli import main

    done = tmp_path / "runs" / "a"
    train(preset_config("pendulum", "Pendulum-v1", total_steps=600, learning_starts=200, eval_every=300,
                        eval_episodes=1, run_dir=str(done), progress=False, plot=False, tensorboard=False))  # fmt: skip
    started = tmp_path / "runs" / "b"
    started.mkdir()
    shutil.copy(done / "config.json", started / "config.json")  # a run that has not evaluated yet
    assert main(["report", str(tmp_path / "runs"), "--out", str(tmp_path / "r.md")]) == 0
    out = capsys.readouterr().out
    assert f"skipped: {started}/eval.csv has no evaluation yet" in out and (tmp_path / "r.md").exists()


def test_evaluation_reports_the_mean_episode_length(tmp_path):
    """eval.csv's mean_length tells a policy that falls at once from one that lasts: TestTerminating-v0 ends at the
    first positive action, else truncates after 4 steps (so a policy that always pushes positive lasts 1 step)."""
    import csv

    import envs_for_tests  # noqa: F401 - registers the test envs
    import gymnasium as gym

    from ddpgx.evaluate import Evaluator
    from ddpgx.logs import RunLogger

    ev = Evaluator(lambda: gym.make("TestTerminating-v0"), 3, seed=0)
    ev.run(lambda obs: np.ones((len(obs), 1), np.float32))  # +1 in [-1, 1] is the env's +1: terminates
    assert ev.lengths.tolist() == [1, 1, 1]
    ev.run(lambda obs: -np.ones((len(obs), 1), np.float32))  # -3: never terminates, truncated after 4
    assert ev.lengths.tolist() == [4, 4, 4]
    ev.close()
    # the column is written by name; a run resumed from before the column existed keeps its own columns
    for header in ("step,mean_return,std_return,wall_s,mean_length", "step,mean_return,std_return,wall_s"):
        d = tmp_path / str(len(header))
        d.mkdir()
        (d / "eval.csv").write_text(header + "\n" if "length" not in header else "")
        lg = RunLogger(d, 100, 0, False, False)
        lg.evaluation(100, -5.0, 1.0, length=4.0)
        lg.close()
        rows = list(csv.reader(open(d / "eval.csv")))
        assert rows[0] == header.split(",") and len(rows[1]) == len(rows[0])
        assert rows[1][:3] == ["100", "-5", "1"] and (rows[1][-1] == "4" if "length" in header else True)
        assert "(length 4)" in lg.shown()[1]
