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


def fake_run(path, seed, returns, env="Pendulum-v1", preset="pendulum"):
    path.mkdir(parents=True)
    (path / "config.json").write_text(json.dumps({"config": {"env": env, "preset": preset, "seed": seed}}))
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
    assert "ddpgx run directory" in capsys.readouterr().err


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


def test_train_writes_returns_png(tmp_path):
    res = tiny_run(tmp_path, "Pendulum-v1")
    img = iio.imread(res.run_dir / "returns.png")
    assert img.shape[0] > 100 and img[..., :3].std() > 10


def frames_of(path):
    return np.stack(list(iio.imiter(path)))


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
    assert frames.shape[:3] == (31, 48, 64)  # first frame + one per step
    assert not all(np.array_equal(frames[0], f) for f in frames[1:])  # the pendulum moves


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


def test_record_refuses_bad_output_name(tmp_path, capsys):
    res = tiny_run(tmp_path, "Pendulum-v1")
    assert main(["record", str(res.run_dir), "--out", str(tmp_path / "x.avi")]) == 2
    assert "must end in .gif or .mp4" in capsys.readouterr().err
