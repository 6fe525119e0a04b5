"""Every picture right: numbers read back from the figure objects (limits, bands, tick labels, legends), the presets
table as it prints at 80 columns, and recorded frames' shapes. Nothing here trains: run directories are CSVs
written by hand (``test_outputs.fake_run``)."""

from __future__ import annotations

import dataclasses
import io
import re
import types

import gymnasium as gym
import imageio.v3 as iio
import numpy as np
import pytest
from matplotlib.collections import PolyCollection
from rich.console import Console
from test_outputs import fake_run

from ddpgx.cli import main, parse_train_args, preset_value, presets_tables
from ddpgx.config import Config
from ddpgx.errors import UserError
from ddpgx.plots import BAND, ci_band, curves_figure, find_runs, format_steps, plot_runs
from ddpgx.presets import PRESETS
from ddpgx.record import (
    FETCH_CAMERA,
    _make_render_env,
    draw_overlay,
    fit_size,
    record_frames,
    successful_seeds,
    write_video,
)
from ddpgx.report import aggregate_figure, group_stats
from ddpgx.report import curves_figure as report_figure


def rewrite_steps(run, factor: int) -> None:
    """Multiply a fake run's steps (200, 400, ...) by ``factor``: a long run without writing long CSVs."""
    for name in ("episodes.csv", "eval.csv"):
        lines = (run / name).read_text().splitlines()
        rows = [line.split(",") for line in lines[1:]]
        (run / name).write_text(
            "\n".join([lines[0], *(",".join([str(int(r[0]) * factor), *r[1:]]) for r in rows)]) + "\n"
        )


def success_run(path, seed, rates):
    run = fake_run(path, seed, [-1.0] * len(rates), env="FetchReach-v4", preset="her")
    with open(run / "eval.csv", "w") as f:
        f.write("step,mean_return,std_return,success,wall_s\n")
        for i, r in enumerate(rates):
            f.write(f"{(i + 1) * 2000},-1.0,0.0,{r},{i}\n")
    return run


def bands(ax) -> list[PolyCollection]:
    return [c for c in ax.collections if isinstance(c, PolyCollection)]


def band_edges(poly: PolyCollection) -> tuple[np.ndarray, np.ndarray]:
    """(x, y) of a fill_between's outline: its lower edge, then its upper edge backwards."""
    v = poly.get_paths()[0].vertices
    return v[:, 0], v[:, 1]


def legend_text(fig) -> str:
    (leg,) = fig.legends
    return leg.get_title().get_text() + "\n" + "\n".join(t.get_text() for t in leg.get_texts())


# --- success rates --------------------------------------------------------------------------------------------------


def test_a_success_rate_is_drawn_on_0_to_1_even_when_it_is_a_constant_1(tmp_path):
    runs = [success_run(tmp_path / f"s{s}", s, [1.0] * 8) for s in range(2)]
    fig = curves_figure(runs, "success")
    (ax,) = fig.axes
    assert ax.get_ylim() == (0.0, 1.0)  # not 0.96-1.04 around the constant
    (line,) = ax.get_lines()
    np.testing.assert_allclose(line.get_ydata(), 1.0)
    assert not line.get_clip_on()  # the line on the top edge is drawn whole
    report = report_figure(group_stats(runs, "success"), "success")
    assert report.axes[0].get_ylim() == (0.0, 1.0)


# --- the band: the same 95% bootstrap CI of the mean in plot and report, labelled, clipped -------------------------


def near_best_runs(tmp_path):
    """Pendulum returns near its best (0): mean + 1 std goes above 0 at every episode."""
    seeds = [[-200.0, -2.0, -1.0, -1.5], [-1.0, -250.0, -2.0, -3.0], [-2.0, -1.0, -300.0, -190.0]]
    return [fake_run(tmp_path / f"r{s}", s, r) for s, r in enumerate(seeds)], np.array(seeds)


def test_plot_draws_a_labelled_95_percent_bootstrap_ci_clipped_to_the_seeds_range(tmp_path):
    runs, ys = near_best_runs(tmp_path)
    assert (ys.mean(0) + ys.std(0) > 0).all()  # the old +-1 std band claimed returns above Pendulum's best
    fig = curves_figure(runs, "episode")
    (ax,) = fig.axes
    (poly,) = bands(ax)
    assert poly.get_label() == "95% bootstrap CI of the mean across seeds"
    assert BAND in legend_text(fig) and "pendulum (3 seeds)" in legend_text(fig)
    x, y = band_edges(poly)
    n = len(ys[0])
    lo, hi = y[1 : n + 1], y[n + 2 : 2 * n + 2][::-1]  # fill_between: start, lower edge, end, upper edge back
    np.testing.assert_allclose(x[1 : n + 1], [200, 400, 600, 800])
    assert (hi <= ys.max(0) + 1e-9).all() and (lo >= ys.min(0) - 1e-9).all() and (hi <= 0).all()
    assert (lo < ys.mean(0)).all() and (ys.mean(0) < hi).all()
    expected = ci_band(ys)  # the CI scipy's percentile bootstrap gives, clipped
    np.testing.assert_allclose(lo, expected[0])
    np.testing.assert_allclose(hi, expected[1])
    # report draws the very same band at the evaluations (the fake runs evaluate at episodes 1 and 3)
    rep = report_figure(group_stats(runs, "eval"), "eval")
    (rpoly,) = bands(rep.axes[0])
    assert rpoly.get_label() == poly.get_label() and BAND in legend_text(rep)
    _, ry = band_edges(rpoly)
    evals = ys[:, ::2]
    np.testing.assert_allclose(ry[1:3], ci_band(evals)[0])
    np.testing.assert_allclose(ry[4:6][::-1], ci_band(evals)[1])


def test_a_seed_run_twice_is_counted_as_runs_of_one_seed_not_as_two_seeds(tmp_path):
    returns = [-300.0, -200.0, -100.0, -50.0]
    twice = [fake_run(tmp_path / f"again{i}", 0, returns) for i in range(2)]  # seed 0 in two run directories
    assert "pendulum (2 runs of 1 seed)" in legend_text(curves_figure(twice, "episode"))
    assert "pendulum (2 runs of 1 seed)" in legend_text(report_figure(group_stats(twice, "eval"), "eval"))
    three = twice + [fake_run(tmp_path / "other", 1, returns)]
    assert "pendulum (3 runs of 2 seeds)" in legend_text(curves_figure(three, "episode"))
    distinct = [fake_run(tmp_path / f"s{s}", s, returns) for s in range(2)]
    assert "pendulum (2 seeds)" in legend_text(curves_figure(distinct, "episode"))


def test_one_seed_draws_no_band_and_the_band_is_clipped_where_the_bootstrap_could_stray():
    assert ci_band(np.array([[1.0, 2.0, 3.0]])) is None
    ys = np.array([[0.0, 5.0, 1.0], [0.0, 5.0, 3.0]])  # a flat column: no spread, no NaN
    lo, hi = ci_band(ys)
    np.testing.assert_array_equal(lo, [0.0, 5.0, 1.0])
    np.testing.assert_array_equal(hi, [0.0, 5.0, 3.0])  # 2 seeds: the CI of the mean is the seeds' range


def test_with_one_seed_the_plot_has_no_band_and_does_not_claim_one(tmp_path):
    run = fake_run(tmp_path / "a", 0, [-1000.0, -500.0, -200.0])
    fig = curves_figure([run], "both")
    assert bands(fig.axes[0]) == []
    assert "bootstrap" not in legend_text(fig) and "(1 seed)" in legend_text(fig)


# --- axes, legend, markers, layout ----------------------------------------------------------------------------------


def test_step_ticks_read_50k_and_1M_and_never_run_together(tmp_path):
    assert [format_steps(x, 300_000) for x in (0, 50_000, 175_000, 300_000)] == ["0", "50k", "175k", "300k"]
    assert [format_steps(x, 2e6) for x in (0, 250_000, 1e6, 1.25e6, 2e6)] == [
        "0",
        "0.25M",
        "1M",
        "1.25M",
        "2M",
    ]
    assert [format_steps(x, 5000) for x in (0, 500, 2500)] == ["0", "500", "2500"]
    for factor, last in ((75, "300k"), (500, "2M")):  # runs of 300k and 2M steps (20 episodes of 200 steps)
        run = fake_run(tmp_path / f"r{factor}", 0, list(np.linspace(-1500, -150, 20)))
        rewrite_steps(run, factor)
        fig = curves_figure([run], "episode")
        fig.draw_without_rendering()
        (ax,) = fig.axes
        lo, hi = ax.get_xlim()
        labels = [t for t in ax.get_xticklabels() if t.get_text() and lo <= t.get_position()[0] <= hi]
        texts = [t.get_text() for t in labels]
        assert all(re.fullmatch(r"0|\d+(\.\d+)?[kM]", s) for s in texts), texts
        assert texts[0] == "0" and last in texts, texts
        boxes = [t.get_window_extent() for t in labels]
        for a, b in zip(boxes, boxes[1:], strict=False):
            assert a.x1 < b.x0, f"tick labels overlap: {texts}"


def test_legend_is_outside_the_data_and_evaluations_are_points(tmp_path):
    runs = [fake_run(tmp_path / f"r{s}", s, list(np.linspace(-1500, -150, 30) + 50 * s)) for s in range(2)]
    fig = curves_figure(runs, "both", smooth_window=5)
    fig.draw_without_rendering()
    (ax,) = fig.axes
    (leg,) = fig.legends
    box, axbox = leg.get_window_extent(), ax.get_window_extent()
    assert not box.overlaps(axbox) and box.y0 >= 0 and box.y1 <= fig.bbox.y1
    episode, evals = ax.get_lines()
    assert episode.get_marker() in ("None", None, "") and evals.get_marker() == "o"
    assert "smoothed: trailing mean of 5 episodes" in legend_text(fig)
    assert "smoothed" not in legend_text(curves_figure(runs, "both"))


def test_report_curves_say_they_are_smoothed_and_the_aggregate_label_fits(tmp_path):
    runs = []
    for env in ("Pendulum-v1", "Hopper-v5"):
        for preset in ("modern", "td3, a long variant label=0.005"):
            for s in range(2):
                name = f"{env}_{preset[:3]}_{s}"
                runs.append(
                    fake_run(tmp_path / name, s, list(np.linspace(-900, -100, 12) + 30 * s), env, preset)
                )
    stats = group_stats(runs, "episode")
    assert "smoothed: trailing mean of 10 episodes" in legend_text(report_figure(stats, "episode"))
    fig = aggregate_figure(stats)
    fig.draw_without_rendering()
    (ax,) = fig.axes
    for text in (ax.xaxis.label, *ax.get_yticklabels()):
        box = text.get_window_extent()
        assert box.x0 >= 0 and box.y0 >= 0 and box.x1 <= fig.bbox.x1 and box.y1 <= fig.bbox.y1, (
            text.get_text()
        )


def test_plot_writes_the_figure_at_the_requested_size(tmp_path):
    runs = [fake_run(tmp_path / f"r{s}", s, list(np.linspace(-1500, -150, 30) + 50 * s)) for s in range(3)]
    out = plot_runs(runs, tmp_path / "p.png", metric="eval", size=(6.0, 3.0), dpi=100)
    assert iio.imread(out).shape[:2] == (300, 600)


# --- tune's plots ---------------------------------------------------------------------------------------------------


def study_of(n: int):
    optuna = pytest.importorskip("optuna")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.RandomSampler(seed=0))
    dist = {
        "tau": optuna.distributions.FloatDistribution(0.001, 0.05, log=True),
        "batch_size": optuna.distributions.CategoricalDistribution([64, 128]),
    }
    rng = np.random.default_rng(0)
    for i in range(n):
        params = {"tau": float(rng.uniform(0.001, 0.05)), "batch_size": int(rng.choice([64, 128]))}
        study.add_trial(optuna.trial.create_trial(params=params, distributions=dist, value=-1000.0 + 40 * i))
    return study


def test_tune_history_has_integer_trial_ticks_and_names_the_objective(capsys):
    from ddpgx.tune import history_figure

    fig = history_figure(study_of(7))
    fig.draw_without_rendering()
    (ax,) = fig.axes
    ticks = [t for t in ax.get_xticks() if ax.get_xlim()[0] <= t <= ax.get_xlim()[1]]
    assert ticks and all(float(t).is_integer() for t in ticks)
    assert ax.get_xlabel() == "trial number" and "objective" in ax.get_ylabel()
    assert "objective: a trial's mean noise-free eval return" in ax.get_title().replace("\n", " ")


def test_tune_importances_from_fewer_than_10_trials_carry_a_warning(capsys):
    from ddpgx.tune import importance_figure

    fig = importance_figure(study_of(6))
    title = fig.axes[0].get_title()
    assert "6 complete trials" in title and "warning: fewer than 10" in title
    assert "ddpgx: warning: from only 6 complete trials (fewer than 10)" in capsys.readouterr().out
    fig = importance_figure(study_of(12))
    assert "warning" not in fig.axes[0].get_title() and capsys.readouterr().out == ""


# --- ddpgx presets --------------------------------------------------------------------------------------------------


def presets_output(monkeypatch, capsys, columns: int) -> str:
    monkeypatch.setenv("COLUMNS", str(columns))
    assert main(["presets"]) == 0
    return capsys.readouterr().out


@pytest.mark.parametrize("columns", [80, 100, 130, 200])
def test_presets_at_any_width_split_no_value_and_no_name(monkeypatch, capsys, columns):
    out = presets_output(monkeypatch, capsys, columns)
    lines = out.splitlines()
    assert all(len(line) <= columns for line in lines)
    assert "…" not in out  # nothing cut short either
    shown: dict[tuple[str, str], str] = {}  # (preset, flag) -> its cell, from every table printed
    header: list[str] = []
    for line in lines:
        if line.startswith("┃"):  # a header: each preset's name whole in one cell, on one line
            header = [c.strip() for c in line.strip("┃").split("┃")]
        elif line.startswith("│"):
            cells = [c.strip() for c in line.strip("│").split("│")]
            if not cells[0]:  # a row's second line: only the meaning column may wrap (a value never does)
                assert header[-1] == "meaning" and not any(cells[:-1]), f"a value wrapped: {line}"
                continue
            for name, cell in zip(header, cells, strict=True):
                if name in PRESETS:
                    shown[(name, cells[0])] = cell
            for k in range(0, len(header), 2):  # the table of shared values: flag, value, flag, value
                if header[k : k + 2] == ["flag", "value"] and cells[k]:
                    shown.update({(name, cells[k]): cells[k + 1] for name in PRESETS})
    assert {name for name, _ in shown} == set(PRESETS)
    fields = [f.name for f in dataclasses.fields(Config) if f.name not in ("env", "preset", "run_dir")]
    for name, p in PRESETS.items():  # every value of every preset, printed whole and as its flag takes it
        for f in fields:
            assert shown[(name, "--" + f.replace("_", "-"))] == preset_value(getattr(p, f)), (name, f)
    assert shown[("paper", "--total-steps")] == "1_000_000" and shown[("paper", "--actor-lr")] == "0.0001"
    if columns == 80:
        assert "Each field's meaning and each preset's sources: ddpgx presets NAME" in out


def test_presets_tables_fit_their_width():
    for width in range(60, 200, 7):
        for table in presets_tables(width):
            console = Console(width=width, record=True, file=io.StringIO())
            console.print(table)
            text = console.export_text()
            assert "…" not in text and all(len(line) <= width for line in text.splitlines())
            for line in text.splitlines():  # a row's second line: only in the meaning column
                cells = line.strip("│").split("│")
                if line.startswith("│") and not cells[0].strip():
                    assert len(cells) == len(PRESETS) + 2 and not "".join(cells[:-1]).strip(), line


def test_every_printed_preset_value_is_what_its_train_flag_takes():
    """From another preset, the flags with the printed values give the preset back (1_000_000 is printed; the
    flags take 1e6 too)."""
    assert parse_train_args(["--env", "Pendulum-v1", "--total-steps", "1e6"]).total_steps == 1_000_000
    for name, p in PRESETS.items():
        base = "her" if name != "her" else "paper"
        args = ["--env", "Pendulum-v1", "--preset", base]
        for f in dataclasses.fields(Config):
            v = getattr(p, f.name)
            if f.name in ("env", "preset", "run_dir"):
                continue
            flag = "--" + f.name.replace("_", "-")
            if isinstance(v, bool):
                args.append(flag if v else "--no-" + flag[2:])
            elif preset_value(v):
                args += [flag, *preset_value(v).split()]
            elif v == ():  # printed blank: the flag with no value
                args.append(flag)
        cfg = parse_train_args(args)
        for f in dataclasses.fields(Config):
            if f.name not in ("env", "preset", "run_dir"):
                assert getattr(cfg, f.name) == getattr(p, f.name), (name, f.name)
    assert (
        preset_value(1_000_000) == "1_000_000" and preset_value(1e-4) == "0.0001" and preset_value(64) == "64"
    )


# --- ddpgx record ---------------------------------------------------------------------------------------------------


class WideFrames(gym.Env):
    """Renders 128x64 (width x height) frames whose colour follows the step."""

    metadata = {"render_modes": ["rgb_array"]}
    observation_space = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)
    action_space = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)

    def __init__(self, render_mode=None):
        self.render_mode = render_mode
        self.t = 0

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return np.zeros(2, np.float32), {}

    def step(self, action):
        self.t += 1
        return np.zeros(2, np.float32), -1.0, False, self.t >= 6, {}

    def render(self):
        frame = np.zeros((64, 128, 3), np.uint8)
        frame[:, : 64 + 8 * self.t] = (40 * self.t, 200, 100)
        return frame


if "TestWideFrames-v0" not in gym.registry:
    gym.register("TestWideFrames-v0", entry_point=WideFrames)


def wide_env():
    cfg = types.SimpleNamespace(env="TestWideFrames-v0", env_kwargs=(), env_module="")
    return _make_render_env(cfg, (240, 240))


def policy(obs):
    return np.zeros(1, np.float32)


def test_record_keeps_the_envs_aspect_ratio(tmp_path):
    assert fit_size((128, 64), (240, 240)) == (240, 120)
    assert fit_size((500, 500), (64, 48)) == (48, 48)
    assert fit_size((600, 400), (241, 241), even=True) == (240, 160)
    env = wide_env()
    frames, returns, lengths = record_frames(env, policy, size=(240, 240))
    env.close()
    assert returns == [-6.0] and lengths == [6] and len(frames) == 7
    assert {f.shape for f in frames} == {(120, 240, 3)}  # 2:1 like the env's 128x64, not stretched to 240x240
    write_video(tmp_path / "wide.gif", frames, fps=10)
    assert iio.imread(tmp_path / "wide.gif").shape[1:3] == (120, 240)


def test_record_overlay_writes_step_and_return_in_the_corner(tmp_path):
    env = wide_env()
    plain, _, _ = record_frames(env, policy, size=(240, 240), max_steps=3)
    shown, _, _ = record_frames(env, policy, size=(240, 240), max_steps=3, overlay=True)
    env.close()
    for a, b in zip(plain, shown, strict=True):
        assert a.shape == b.shape
        corner = np.abs(a[:30, :110].astype(int) - b[:30, :110]).sum(-1) > 0
        assert corner.mean() > 0.2  # text on a dark box
        np.testing.assert_array_equal(a[60:], b[60:])  # the rest of the frame untouched
    assert not np.array_equal(shown[1][:30, :110], shown[2][:30, :110])  # the step and return change
    same = draw_overlay(plain[1], ["step 1", "return -1.0"])
    np.testing.assert_array_equal(same, shown[1])


def test_successful_records_only_episodes_that_end_in_success_and_says_when_none_do():
    import goal_envs  # noqa: F401 - registers PointGoal-v0

    cfg = types.SimpleNamespace(env="PointGoal-v0", env_kwargs=(), env_module="")
    env = _make_render_env(cfg, (64, 64))
    u = env.unwrapped

    def right_half(obs):  # reaches the goal only where it lies in the right half of the plane
        return np.clip(10 * (u.goal - u.pos), -1, 1) if u.goal[0] > 0 else np.zeros(2, np.float32)

    seeds = successful_seeds(env, right_half, episodes=3, seed=5, max_steps=50)
    goals_x = {}
    for s in range(5, seeds[-1] + 1):
        env.reset(seed=s)
        goals_x[s] = float(u.goal[0])
    # the first three seeds from 5 on whose goal is in the right half (none here starts within reach of a left goal)
    assert seeds == [s for s in goals_x if goals_x[s] > 0][:3] and len(goals_x) > 3
    frames, returns, lengths = record_frames(
        env, right_half, episodes=3, max_steps=50, size=(64, 64), seeds=seeds
    )
    assert len(returns) == 3 and all(-50 < r <= 0 for r in returns) and all(n == 50 for n in lengths)
    with pytest.raises(UserError, match=r"--successful: 0 of seeds 0-9 ended in success, fewer than the 1"):
        successful_seeds(
            env, lambda obs: -np.sign(u.goal - u.pos), episodes=1, seed=0, max_steps=50, tries=10
        )
    env.close()
    wide = wide_env()
    with pytest.raises(
        UserError, match=r"--successful needs an env that reports info\['is_success'\] at every step"
    ):
        successful_seeds(wide, policy, episodes=1, seed=0, max_steps=10)
    wide.close()


def test_record_flags_reach_record(monkeypatch, capsys):
    seen = {}

    def fake_record(run_dir, **kw):
        seen.update(kw)
        raise SystemExit(0)

    monkeypatch.setattr("ddpgx.record.record", fake_record)
    monkeypatch.setattr("ddpgx.cli.params_for", lambda *a: None)
    with pytest.raises(SystemExit):
        main(["record", "somewhere", "--overlay", "--camera", "env", "--width", "320", "--successful"])
    assert seen["overlay"] is True and seen["camera"] == "env" and seen["size"] == (320, 240)
    assert seen["successful"] is True


@pytest.mark.slow
def test_fetch_is_recorded_from_closer_so_its_goal_is_more_than_a_few_pixels():
    pytest.importorskip("gymnasium_robotics")
    cfg = types.SimpleNamespace(env="FetchReach-v4", env_kwargs=(), env_module="")
    red = {}
    for camera in ("env", "auto"):
        env = _make_render_env(cfg, (240, 240), camera)
        env.reset(seed=0)
        frame = env.render()
        env.close()
        red[camera] = int(((frame[..., 0] > 150) & (frame[..., 1] < 60) & (frame[..., 2] < 60)).sum())
    assert FETCH_CAMERA["distance"] < 2.5
    assert red["env"] < 20 and red["auto"] > 2 * red["env"]


def test_plot_takes_a_seed_groups_folder_and_its_glob_and_a_run_named_twice_is_one_seed(tmp_path):
    group = tmp_path / "gx"
    runs = [fake_run(group / f"s{s}", s, [-300.0, -200.0 + s, -150.0]) for s in range(2)]
    (group / "group.json").write_text("{}")  # what `runs/gx/*` also matches
    for args in ([str(group)], [str(p) for p in sorted(group.iterdir())]):
        assert main(["plot", *args, "--out", str(tmp_path / "a.png")]) == 0
    assert [g.seeds for g in group_stats(find_runs([runs[0], runs[0], runs[1]]), "episode")] == [[0, 1]]
    assert [g.seeds for g in group_stats(find_runs([runs[0], str(runs[0]) + "/"]), "episode")] == [[0]]


@pytest.mark.parametrize("env", ["Hopper-v5", "Pendulum-v1"])
def test_train_help_shows_the_defaults_that_presets_and_config_json_give(env, capsys, monkeypatch):
    """`ddpgx train --env ENV --help` shows the values the run would get: the env's default preset (crossq256 for
    MuJoCo, pendulum for Pendulum), the same values `ddpgx presets` prints and config.json records."""
    import json

    from ddpgx.cli import preset_value
    from ddpgx.presets import default_preset, preset_config

    monkeypatch.setenv("COLUMNS", "250")
    with pytest.raises(SystemExit) as e:
        parse_train_args(["--env", env, "--help"])
    assert e.value.code == 0
    text = capsys.readouterr().out
    cfg = preset_config("", env)
    saved = json.loads(json.dumps(dataclasses.asdict(cfg)))  # as config.json holds it
    checked = 0
    for f in (
        "total_steps",
        "learning_starts",
        "tau",
        "batch_size",
        "actor_lr",
        "critic_lr",
        "gamma",
        "policy_delay",
    ):
        # the description may start on the next line (a long flag); never past the next flag's line
        m = re.search(rf"--{f.replace('_', '-')} \w+ (?:(?!\n\W*--).)*?\(default: ([^)]*)\)", text, re.DOTALL)
        assert m, f
        shown = m.group(1)
        want = getattr(PRESETS[default_preset(env)], f)
        assert float(shown) == want == saved[f] == getattr(cfg, f), (env, f, shown, want)
        assert float(preset_value(want).replace("_", "")) == want  # what `ddpgx presets` prints
        checked += 1
    assert checked == 8


def test_sweep_table_status_wraps_at_the_terminal_and_plain_lines_without_one(tmp_path, capsys, monkeypatch):
    """The sweep/tune table's status line is its own line above the table (at 200 columns a long status stays
    one line though the table is narrow); without a terminal the status and the running runs come as plain lines
    at logs.PLAIN_EVERY_S."""
    import time as _time
    from dataclasses import dataclass as dc

    from rich.console import Console

    from ddpgx import livetable, logs

    @dc
    class E:
        name: str
        status: str
        run_dir: types.SimpleNamespace
        total_steps: int = 1000
        error: str = ""
        started: float = 0.0

    run = tmp_path / "r"
    run.mkdir()
    (run / "eval.csv").write_text("step,mean_return,std_return,wall_s\n500,-321.5,1.0,2.0\n")
    entries = [E("Pendulum-v1__pendulum__s0", "running", run, started=_time.time() - 10),
               E("Pendulum-v1__pendulum__s1", "queued", tmp_path / "q"),
               E("Pendulum-v1__pendulum__s2", "failed", tmp_path / "f", error="boom")]  # fmt: skip
    table = livetable.LiveTable(lambda: entries, live=False, label="sweep", note=lambda: "x" * 60)
    out = io.StringIO()
    Console(file=out, width=200).print(table.render())
    first = out.getvalue().splitlines()[0]
    assert first.startswith("sweep: 0 done, 1 running, 1 queued, 1 failed") and first.endswith("x" * 60)
    monkeypatch.setattr(logs, "PLAIN_EVERY_S", 0.0)
    monkeypatch.setattr(livetable.sys.stderr, "isatty", lambda: False, raising=False)
    plain = livetable.LiveTable(lambda: entries, live=True, label="sweep")
    with plain:
        plain.update()
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 4  # update and exit: a status line each, and the failed run's error each
    assert err[0].startswith("ddpgx: sweep: 0 done, 1 running, 1 queued, 1 failed")
    assert "running: Pendulum-v1__pendulum__s0 500/1000 eval -321.5" in err[0]
    assert err[1] == "ddpgx: sweep run Pendulum-v1__pendulum__s2 failed: boom"
