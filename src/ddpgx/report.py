"""Runs compared across seeds, as Agarwal et al. 2021 ("Deep RL at the Edge of the Statistical Precipice") advise:
per env and group (runs whose configs differ only in the seed, ``groups.group_runs``) the final return's mean with
a 95% bootstrap CI, the interquartile mean (IQM) with its bootstrap CI, the mean best evaluation, steps and wall
time; curves with 95% CI bands, drawn as ``ddpgx plot`` draws them (``plots.ci_band``); across several envs, the
IQM of min-max-normalized scores with a stratified bootstrap CI (envs are the strata). The statistics are scipy's
(``scipy.stats.bootstrap``, ``trim_mean``)."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ddpgx.errors import UserError, describe, warn
from ddpgx.groups import group_runs
from ddpgx.plots import (
    BAND,
    IMAGE_SUFFIXES,
    add_legend,
    check_output,
    ci_band,
    common_grid,
    draw_curve,
    find_runs,
    read_log,
    smooth,
    style_axes,
)

if TYPE_CHECKING:
    from matplotlib.figure import Figure

CONFIDENCE = 0.95
RESAMPLES = 10_000
LAST_EPISODES = 10  # --metric episode: a run's final score is the mean of its last 10 training episodes


def iqm(x: np.ndarray, axis: int = -1) -> np.ndarray:
    """Interquartile mean: the mean of the middle 50% (scipy's trim_mean with 25% cut at each end)."""
    from scipy.stats import trim_mean

    return trim_mean(x, 0.25, axis=axis)


def bootstrap_ci(samples: Sequence[np.ndarray], statistic, seed: int = 0) -> tuple[float, float]:
    """95% percentile-bootstrap CI of ``statistic`` over one sample, or over several resampled independently
    (a stratified bootstrap: each stratum keeps its size). NaNs where a stratum has fewer than 2 values."""
    from scipy.stats import bootstrap

    samples = [np.asarray(s, np.float64) for s in samples]
    if any(len(s) < 2 for s in samples):
        return float("nan"), float("nan")
    res = bootstrap(
        tuple(samples),
        statistic,
        n_resamples=RESAMPLES,
        confidence_level=CONFIDENCE,
        method="percentile",
        paired=False,
        vectorized=True,
        rng=np.random.default_rng(seed),
    )
    return float(res.confidence_interval.low), float(res.confidence_interval.high)


def _mean(*xs: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.mean(np.concatenate(xs, axis=axis), axis=axis)


def _iqm(*xs: np.ndarray, axis: int = -1) -> np.ndarray:
    return iqm(np.concatenate(xs, axis=axis), axis=axis)


@dataclass
class RunScore:
    run: Path
    seed: int
    final: float
    best: float
    step: int
    wall_s: float
    steps: np.ndarray  # the curve
    values: np.ndarray


@dataclass
class GroupStats:
    env: str
    label: str
    seeds: list[int]
    final_mean: float
    final_ci: tuple[float, float]
    iqm: float
    iqm_ci: tuple[float, float]
    best_mean: float
    steps: float
    wall_s: float
    scores: list[RunScore] = field(default_factory=list)


def score_run(run: Path, seed: int, metric: str) -> RunScore:
    """A run's final and best score, last step and wall time from its CSV logs (``plots.read_log``: a log that is
    not one is a UserError naming the file)."""
    if metric in ("eval", "success"):
        col = "mean_return" if metric == "eval" else "success"
        ev = read_log(run / "eval.csv", ("step", col, "wall_s"))
        if not len(ev["step"]):
            raise UserError(f"{run}/eval.csv has no evaluation yet")
        ep = read_log(run / "episodes.csv", ("step",))
        steps, values = ev["step"], ev[col]
        final, best = values[-1], values.max()
        wall = ev["wall_s"][-1]
    else:
        ep = read_log(run / "episodes.csv", ("step", "return", "wall_s"))
        if not len(ep["step"]):
            raise UserError(f"{run}/episodes.csv has no episode yet")
        ev = read_log(run / "eval.csv", ("step", "wall_s")) if (run / "eval.csv").is_file() else {"step": []}
        steps, values = ep["step"], ep["return"]
        smoothed = smooth(values, LAST_EPISODES)
        final, best = smoothed[-1], smoothed.max()
        wall = ev["wall_s"][-1] if len(ev["step"]) else ep["wall_s"][-1]
    step = max(int(log["step"][-1]) for log in (ep, ev) if len(log["step"]))
    return RunScore(run, seed, float(final), float(best), step, float(wall), steps, values)


def group_stats(runs: Sequence[Path], metric: str = "eval") -> list[GroupStats]:
    """Per env and group of seeds: the numbers of the report."""
    if metric not in ("eval", "episode", "success"):
        raise UserError(f"--metric must be eval, episode or success, got {metric}")
    out = []
    usable, skipped = [], []
    for r in runs:  # a run with nothing to score yet (just started) is left out, and said so
        try:
            score_run(r, 0, metric)
            usable.append(r)
        except UserError as e:
            skipped.append(str(e))
    if skipped and usable:
        for reason in skipped:
            warn(f"skipped: {reason}")
    elif skipped:
        raise UserError(
            skipped[0]
            + (f" (and {len(skipped) - 1} more runs with nothing to report)" if len(skipped) > 1 else "")
        )
    for g in group_runs(usable):
        scores = [score_run(r, s, metric) for r, s in zip(g.runs, g.seeds, strict=True)]
        finals = np.array([s.final for s in scores])
        out.append(
            GroupStats(
                env=g.env,
                label=g.label,
                seeds=sorted(g.seeds),
                final_mean=float(finals.mean()),
                final_ci=bootstrap_ci([finals], _mean),
                iqm=float(iqm(finals)),
                iqm_ci=bootstrap_ci([finals], _iqm),
                best_mean=float(np.mean([s.best for s in scores])),
                steps=float(np.mean([s.step for s in scores])),
                wall_s=float(np.mean([s.wall_s for s in scores])),
                scores=scores,
            )
        )
    return out


def aggregate(stats: Sequence[GroupStats]) -> dict[str, tuple[float, tuple[float, float], int]]:
    """Per label across envs: IQM of each run's final score min-max-normalized within its env (over every run of
    that env in the report), with a stratified bootstrap CI (strata: envs). label -> (iqm, ci, envs)."""
    lo_hi: dict[str, tuple[float, float]] = {}
    for env in {s.env for s in stats}:
        finals = np.concatenate([[r.final for r in s.scores] for s in stats if s.env == env])
        lo_hi[env] = (float(finals.min()), float(finals.max()))
    out = {}
    for label in dict.fromkeys(s.label for s in stats):
        strata = []
        for s in stats:
            if s.label == label:
                lo, hi = lo_hi[s.env]
                strata.append((np.array([r.final for r in s.scores]) - lo) / (hi - lo if hi > lo else 1.0))
        value = float(iqm(np.concatenate(strata)))
        out[label] = (value, bootstrap_ci(strata, _iqm), len(strata))
    return out


CSV_FIELDS = (
    "env", "group", "n_seeds", "seeds", "final_mean", "final_ci_low", "final_ci_high", "iqm", "iqm_ci_low",
    "iqm_ci_high", "best_mean", "steps", "wall_s_per_run",
)  # fmt: skip


def _f(x: float, digits: int = 1) -> str:
    return "-" if x != x else f"{x:.{digits}f}"


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


def markdown(stats: Sequence[GroupStats], metric: str, images: Sequence[str] = ()) -> str:
    what = {
        "eval": "noise-free eval return (last evaluation)",
        "success": "noise-free eval success rate (last evaluation)",
    }.get(metric, f"mean of the last {LAST_EPISODES} training episodes' returns")
    lines = [
        "# ddpgx report",
        "",
        f"Final score: {what}, per group of runs whose configs differ only in the seed. 95% CIs by percentile "
        f"bootstrap over seeds ({RESAMPLES} resamples, scipy.stats.bootstrap); IQM: interquartile mean "
        "(scipy.stats.trim_mean 0.25). A CI needs 2 seeds or more.",
        "",
    ]
    for env in dict.fromkeys(s.env for s in stats):
        lines += [
            f"## {env}",
            "",
            "| group | seeds | final mean | 95% CI | IQM | IQM 95% CI | mean best | steps | wall per run |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        d = 2 if metric == "success" else 1  # a success rate of 0.95 must not print as 1.0
        for s in (s for s in stats if s.env == env):
            lines.append(
                f"| {s.label} | {len(s.seeds)} | {_f(s.final_mean, d)} "
                f"| [{_f(s.final_ci[0], d)}, {_f(s.final_ci[1], d)}] "
                f"| {_f(s.iqm, d)} | [{_f(s.iqm_ci[0], d)}, {_f(s.iqm_ci[1], d)}] | {_f(s.best_mean, d)} "
                f"| {s.steps:.0f} | {_duration(s.wall_s)} |"
            )
        lines.append("")
    if len({s.env for s in stats}) > 1:
        lines += [
            "## Across envs",
            "",
            "IQM of final scores min-max-normalized within each env (0 = the worst run of that env in this report, "
            "1 = the best), 95% CI by stratified bootstrap (envs as strata).",
            "",
            "| group | envs | normalized IQM | 95% CI |",
            "|---|---|---|---|",
        ]
        for label, (v, ci, n) in aggregate(stats).items():
            lines.append(f"| {label} | {n} | {_f(v, 3)} | [{_f(ci[0], 3)}, {_f(ci[1], 3)}] |")
        lines.append("")
    for img in images:
        lines += [f"![{Path(img).stem}]({img})", ""]
    return "\n".join(lines)


def csv_text(stats: Sequence[GroupStats]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(CSV_FIELDS)
    for s in stats:
        w.writerow([
            s.env, s.label, len(s.seeds), " ".join(map(str, s.seeds)), s.final_mean, *s.final_ci, s.iqm, *s.iqm_ci,
            s.best_mean, s.steps, s.wall_s,
        ])  # fmt: skip
    return buf.getvalue()


def write_csv(stats: Sequence[GroupStats], path: Path) -> None:
    path.write_text(csv_text(stats))


def curves_figure(stats: Sequence[GroupStats], metric: str) -> Figure:
    """One panel per env: each group's mean curve with its band, drawn as ``ddpgx plot`` draws it
    (``plots.ci_band``: a 95% bootstrap CI of the mean across seeds, clipped to the seeds' range; none for one
    seed), evaluations as points; the legend says what the band is and that training returns are smoothed."""
    from matplotlib.figure import Figure

    envs = list(dict.fromkeys(s.env for s in stats))
    fig = Figure(figsize=(5.5 * len(envs), 4.5), dpi=100, layout="constrained")
    axes = fig.subplots(1, len(envs), squeeze=False)
    sparse = metric != "episode"
    window = 1 if sparse else LAST_EPISODES
    entries: dict[str, tuple[Any, list[tuple[int, int]]]] = {}
    banded = single = False
    for ax, env in zip(axes[0], envs, strict=True):
        for s in (s for s in stats if s.env == env):
            grid, ys = common_grid(
                [(r.steps, smooth(r.values, window)) for r in s.scores], points=100, exact=sparse
            )
            band = ci_band(ys)
            color = f"C{list(entries).index(s.label) % 10}" if s.label in entries else f"C{len(entries) % 10}"
            handle = draw_curve(ax, grid, ys.mean(0), band, color, sparse, metric == "success")
            entries.setdefault(s.label, (handle, []))[1].append((len(ys), len({r.seed for r in s.scores})))
            banded |= band is not None
            single |= band is None
        style_axes(
            ax,
            env,
            {"eval": "eval return (no noise)", "success": "eval success rate (no noise)"}.get(
                metric, "training episode return"
            ),
            metric == "success",
        )
    notes = []
    if banded:
        notes.append(f"line: mean across seeds; {BAND}" + ("; 1 seed: no band" if single else ""))
    if not sparse:
        notes.append(f"smoothed: trailing mean of {LAST_EPISODES} episodes")
    add_legend(fig, entries, notes)
    return fig


def plot_curves(stats: Sequence[GroupStats], out: Path, metric: str) -> Path:
    curves_figure(stats, metric).savefig(out)
    return out


def aggregate_figure(stats: Sequence[GroupStats]) -> Figure:
    """Each label's normalized IQM across envs as a bar with its stratified bootstrap CI; the layout is constrained,
    so the axis label and long group labels are inside the figure."""
    from matplotlib.figure import Figure

    agg = aggregate(stats)
    labels = list(agg)
    # room for the group labels (about 0.07 inch a character) beside the bars
    width = max(6.0, 4.0 + 0.07 * max(map(len, labels)))
    fig = Figure(figsize=(width, 0.6 * len(labels) + 1.6), dpi=100, layout="constrained")
    ax = fig.subplots()
    for i, label in enumerate(labels):
        v, (lo, hi), n = agg[label]
        ax.barh(i, v, color=f"C{i}", alpha=0.7)
        if lo == lo:
            ax.errorbar(v, i, xerr=[[v - lo], [hi - v]], color="black", capsize=4)
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("IQM of min-max-normalized final score\n(95% stratified bootstrap CI)")
    ax.set_xlim(0, 1.05)
    ax.grid(alpha=0.3, axis="x")
    return fig


def plot_aggregate(stats: Sequence[GroupStats], out: Path) -> Path:
    aggregate_figure(stats).savefig(out)
    return out


def figure_bytes(fig: Figure, path: Path) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format=path.suffix.lstrip("."))
    return buf.getvalue()


def write_report(run_dirs: Sequence[Path | str], out: Path | str = "report.md", metric: str = "eval") -> Path:
    """report.md, report.csv and the curves (report.png; report_aggregate.png with several envs) beside it. Runs
    are found as ``plots.find_runs`` finds them (in sweeps, seed groups and tune studies too). Everything is
    checked and drawn before the first file is written; an output that cannot be written is one line, and the files
    this call made are removed again."""
    out = Path(out)
    if out.is_dir():
        out = out / "report.md"
    if out.suffix.lower() != ".md":
        raise UserError(f"--out must name a .md file (or a directory), got {out.name}")
    check_output(out)
    stats = group_stats(find_runs(run_dirs), metric)
    stem = out.with_suffix("")
    files: dict[Path, bytes] = {}
    curves = stem.with_name(stem.name + ".png")
    files[curves] = figure_bytes(curves_figure(stats, metric), curves)
    images = [curves]
    if len({s.env for s in stats}) > 1:
        agg = stem.with_name(stem.name + "_aggregate.png")
        files[agg] = figure_bytes(aggregate_figure(stats), agg)
        images.append(agg)
    files[out.with_suffix(".csv")] = csv_text(stats).encode()
    files[out] = markdown(stats, metric, [p.name for p in images]).encode()
    made: list[Path] = []
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        for path, data in files.items():
            if not path.exists():
                made.append(path)
            path.write_bytes(data)
    except OSError as e:
        for path in made:
            path.unlink(missing_ok=True)
        raise UserError(f"cannot write the report {out}: {describe(e)}") from None
    return out


__all__ = ["write_report", "group_stats", "aggregate", "bootstrap_ci", "iqm", "IMAGE_SUFFIXES"]
