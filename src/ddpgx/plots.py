"""Learning curves: reward per episode and noise-free eval return against env steps, grouped across seeds.

What every curve figure of ddpgx (``ddpgx plot``, a run's returns.png, ``ddpgx report``) shares is here, so the
figures agree: the line is the mean across a group's seeds; the band is a 95% bootstrap CI of that mean, clipped to
the range the seeds span (``ci_band``), and drawn only with 2 seeds or more; the legend (outside the axes) says so
and says when a curve is smoothed; sparse curves (evaluations) have a marker at each point; success rates are drawn
on [0, 1]; step axes read 50k, 1.5M (``format_steps``)."""

from __future__ import annotations

import csv
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ddpgx.errors import UserError, describe, warn
from ddpgx.groups import group_runs
from ddpgx.logs import read_rows

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

IMAGE_SUFFIXES = (".png", ".svg", ".pdf")

CONFIDENCE = 0.95
BAND_RESAMPLES = 2_000
BAND = "band: 95% bootstrap CI of the mean across seeds"

METRIC_COLUMNS = {
    "episode": ("episodes.csv", "return"),
    "eval": ("eval.csv", "mean_return"),
    "success": ("eval.csv", "success"),
}
WHAT = {
    "episode": "episode return",
    "eval": "eval return (no noise)",
    "success": "eval success rate (no noise)",
}
YLABEL = {
    "episode": "cumulative reward per episode (training)",
    "eval": "cumulative reward per episode (eval)",
    "success": "success rate (eval, no noise)",
    "both": "cumulative reward per episode",
}


NOTES = {"success": " (a success rate is logged for envs that report info['is_success'])"}


def read_log(path: Path, columns: Sequence[str]) -> dict[str, np.ndarray]:
    """The ``columns`` of a ddpgx CSV log as float arrays, one value per complete row (no file or no row yet: empty
    arrays). A file that is not such a log (binary junk, another header, a value that is not a number, a short row)
    is one UserError naming the file and what is wrong with it."""
    if not path.is_file():
        return {c: np.zeros(0) for c in columns}
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise UserError(f"cannot read {path}: {describe(e)}") from None
    first, newline, _ = raw.partition(b"\n")
    try:
        header = first.decode("utf-8").rstrip("\r")
    except UnicodeDecodeError:
        header = None
    if raw and (header is None or not header.isprintable()):
        raise UserError(
            f"{path} is not a ddpgx CSV log (its first line is not a header of column names: binary or corrupt "
            "data); restore it, or leave this run out"
        )
    if not newline:  # not even a whole header yet
        return {c: np.zeros(0) for c in columns}
    names = next(csv.reader([header]), [])
    missing = [c for c in columns if c not in names]
    if missing:
        raise UserError(
            f"{path} has no {missing[0]} column; its columns are {', '.join(names)}{NOTES.get(missing[0], '')}"
        )
    try:
        rows = read_rows(path)
    except (OSError, csv.Error) as e:
        raise UserError(f"{path} is corrupt ({describe(e)}); it needs columns {', '.join(columns)}") from None
    out = {c: np.empty(len(rows)) for c in columns}
    for i, row in enumerate(rows):
        for c in columns:
            v = row.get(c)
            if v is None:
                raise UserError(f"{path} is corrupt: line {i + 2} has fewer values than its header")
            try:
                out[c][i] = float(v)
            except ValueError:
                raise UserError(
                    f"{path} is corrupt: line {i + 2} has {c} = {v[:40]!r}, not a number"
                ) from None
    return out


def read_curve(run_dir: Path, metric: str) -> tuple[np.ndarray, np.ndarray]:
    """(steps, values) of ``metric`` ("episode": episodes.csv return, "eval": eval.csv mean_return, "success":
    eval.csv success, the eval success rate of a goal env)."""
    name, col = METRIC_COLUMNS[metric]
    path = run_dir / name
    if not path.is_file():
        raise UserError(f"{path} does not exist; is {run_dir} a ddpgx run directory?")
    log = read_log(path, ("step", col))
    if len(log["step"]) == 0:
        raise UserError(f"{path} has no rows yet; let the run finish an episode or an evaluation first")
    return log["step"], log[col]


def smooth(values: np.ndarray, window: int) -> np.ndarray:
    """Trailing moving average over ``window`` points (shorter at the start)."""
    if window <= 1:
        return values
    c = np.cumsum(np.insert(values, 0, 0.0))
    idx = np.arange(1, len(values) + 1)
    lo = np.maximum(idx - window, 0)
    return (c[idx] - c[lo]) / (idx - lo)


def common_grid(
    curves: Sequence[tuple[np.ndarray, np.ndarray]], points: int = 200, exact: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """(steps, values of each curve there): the curves' own steps when they share them, else ``points`` steps over
    the range they all cover, by linear interpolation. ``exact`` (sparse curves: evaluations): the steps every curve
    has (a run that stopped early limits the others to its evaluations), interpolating only when there are none."""
    first = curves[0][0]
    if all(len(s) == len(first) and np.array_equal(s, first) for s, _ in curves):
        return first, np.stack([v for _, v in curves])
    if exact:
        shared = first
        for s, _ in curves[1:]:
            shared = np.intersect1d(shared, s)
        if len(shared):
            return shared, np.stack([v[np.searchsorted(s, shared)] for s, v in curves])
    lo, hi = max(s[0] for s, _ in curves), min(s[-1] for s, _ in curves)
    grid = np.linspace(lo, hi, points) if hi > lo else np.array([hi])
    return grid, np.stack([np.interp(grid, s, v) for s, v in curves])


def ci_band(ys: np.ndarray, seed: int = 0) -> tuple[np.ndarray, np.ndarray] | None:
    """The band every curve figure draws: a 95% percentile-bootstrap CI of the mean across seeds (``ys``: one row
    per seed) at each point, ``scipy.stats.bootstrap`` vectorized over the curve; None with fewer than 2 seeds (one
    seed has no spread to show).

    It is clipped to the range the seeds span at that point (their lowest and highest value). Why that bound and
    not a known one: each resample's mean lies between the seeds' extremes, so a percentile CI of the mean already
    does in exact arithmetic; the clip makes it hold exactly in floating point, and then the band never shows a
    return no seed reached. Any true bound of the return (Pendulum's 0, a success rate's [0, 1]) holds for every
    seed's value, so it holds for the band too, without ddpgx having to know each env's bounds. A +-1 std band has
    no such property: near Pendulum's best return, mean + std went above 0, a return no policy can get."""
    ys = np.asarray(ys, np.float64)
    if ys.ndim != 2 or len(ys) < 2:
        return None
    lowest, highest = ys.min(0), ys.max(0)
    flat = highest == lowest
    if flat.all():
        return lowest.copy(), highest.copy()
    from scipy.stats import bootstrap

    res = bootstrap(
        (ys,), np.mean, axis=0, n_resamples=BAND_RESAMPLES, confidence_level=CONFIDENCE, method="percentile",
        vectorized=True, rng=np.random.default_rng(seed),
    )  # fmt: skip
    lo = np.clip(np.asarray(res.confidence_interval.low, np.float64), lowest, highest)
    hi = np.clip(np.asarray(res.confidence_interval.high, np.float64), lowest, highest)
    lo[flat], hi[flat] = lowest[flat], highest[flat]  # no spread: scipy's interval of a constant may be NaN
    return lo, hi


def group_curves(
    run_dirs: Sequence[Path], metric: str, smooth_window: int = 1, points: int = 200
) -> list[dict]:
    """Runs whose configs differ only in the seed (``groups.group_runs``) become one curve: the mean across seeds
    with its band (``ci_band``: None for one seed) and std, at the runs' own steps when they share them
    (evaluations: the steps all of them have), else on a common grid of ``points`` steps by linear interpolation.
    Each curve: env, label, n, steps, mean, std, band."""
    out = []
    for g in group_runs(run_dirs):
        curves = []
        for d in g.runs:
            s, v = read_curve(d, metric)
            curves.append((s, smooth(v, smooth_window)))
        grid, ys = common_grid(curves, points, exact=metric != "episode")
        out.append(
            {
                "env": g.env,
                "label": g.label,
                "steps": grid,
                "mean": ys.mean(0),
                "std": ys.std(0),
                "band": ci_band(ys),
                "n": len(curves),
                "seeds": len(set(g.seeds)),  # a seed run twice (two run directories) is one seed, two runs
            }
        )
    return out


def format_steps(x: float, top: float) -> str:
    """A step count as a tick label: 0, 500, 50k, 175k, 0.5M, 1.25M. One unit per axis, chosen by ``top`` (the
    axis' largest value): k from 10k, M from 1M. Five characters at most for the usual ticks, so they never run
    together as 175000200000 did."""
    a = abs(top)
    if x == 0:
        return "0"
    if a >= 1e6:
        return f"{x / 1e6:.4g}M"
    if a >= 1e4:
        return f"{x / 1e3:.4g}k"
    return f"{x:.4g}"


def style_step_axis(ax: Axes) -> None:
    """x axis: env steps from 0, at round numbers, labelled by ``format_steps``."""
    from matplotlib.ticker import FuncFormatter, MaxNLocator

    ax.set_xlim(left=0)
    ax.xaxis.set_major_locator(MaxNLocator(nbins="auto", steps=[1, 2, 2.5, 5, 10], integer=True))
    ax.xaxis.set_major_formatter(
        FuncFormatter(lambda x, _pos: format_steps(x, max(abs(v) for v in ax.get_xlim())))
    )
    ax.set_xlabel("environment steps")


def draw_curve(
    ax: Axes,
    steps: np.ndarray,
    mean: np.ndarray,
    band: tuple[np.ndarray, np.ndarray] | None,
    color: str,
    sparse: bool,
    success: bool = False,
) -> Any:
    """One group's mean line (a marker at each point when ``sparse``: evaluations are points, not a trace) and its
    band (``ci_band``) when there is one. A success rate's line is not clipped at the axes' 0 and 1, so a constant
    1.0 shows. Returns the legend handle: the line, over its band."""
    (line,) = ax.plot(
        steps, mean, "o-" if sparse else "-", markersize=3, lw=1.5, color=color, clip_on=not success
    )
    if band is None:
        return line
    poly = ax.fill_between(
        steps,
        band[0],
        band[1],
        color=color,
        alpha=0.2,
        lw=0,
        label="95% bootstrap CI of the mean across seeds",
    )
    return (poly, line)


def style_axes(ax: Axes, title: str, ylabel: str, success: bool) -> None:
    ax.set_title(title)
    style_step_axis(ax)
    ax.set_ylabel(ylabel)
    if success:
        ax.set_ylim(0, 1)  # a rate: never autoscaled to 0.96-1.04 around a constant 1.0
    ax.grid(alpha=0.3)


def count_text(ns: Sequence[int], noun: str) -> str:
    lo, hi = min(ns), max(ns)
    return f"{lo} {noun}{'s' * (lo != 1)}" if lo == hi else f"{lo}-{hi} {noun}s"


def seeds_text(counts: Sequence[tuple[int, int]]) -> str:
    """How many seeds a legend entry averages, per panel ``(runs, distinct seeds)``: '3 seeds', '2-3 seeds'; runs
    that repeat a seed are counted as what they are: '2 runs of 1 seed'."""
    runs, seeds = [r for r, _ in counts], [s for _, s in counts]
    if runs == seeds:
        return count_text(seeds, "seed")
    return f"{count_text(runs, 'run')} of {count_text(seeds, 'seed')}"


def add_legend(
    fig: Figure, entries: dict[str, tuple[Any, list[tuple[int, int]]]], notes: Sequence[str]
) -> None:
    """One legend for the figure, below the panels (never on the data): each entry ``label -> (handle, (runs,
    distinct seeds) per panel)``, titled by ``notes`` (what the band is, what is smoothed)."""
    labels = [f"{label} ({seeds_text(ns)})" for label, (_, ns) in entries.items()]
    width_chars = fig.get_figwidth() * 72 / (8 * 0.6)  # 8 pt text, about 0.6 em a character
    ncols = max(1, min(len(labels), int(width_chars // (max(map(len, labels)) + 6))))
    fig.legend(
        [h for h, _ in entries.values()], labels, loc="outside lower center", ncols=ncols, fontsize=8,
        title="\n".join(notes) or None, title_fontsize=8, frameon=False,
    )  # fmt: skip


def curves_figure(
    run_dirs: Sequence[Path],
    metric: str = "episode",
    smooth_window: int = 1,
    size: tuple[float, float] = (8.0, 4.5),
    dpi: int = 100,
) -> Figure:
    """The figure ``plot_runs`` writes: one panel per env; per group of seeds a mean line and its band."""
    from matplotlib.figure import Figure

    if metric not in ("episode", "eval", "success", "both"):
        raise UserError(f"--metric must be episode, eval, success or both, got {metric}")
    metrics = ["episode", "eval"] if metric == "both" else [metric]
    curves = {m: group_curves(run_dirs, m, smooth_window if m == "episode" else 1) for m in metrics}
    envs = sorted({c["env"] for m in metrics for c in curves[m]})
    fig = Figure(figsize=size, dpi=dpi, layout="constrained")
    axes = fig.subplots(1, len(envs), squeeze=False)
    entries: dict[str, tuple[Any, list[tuple[int, int]]]] = {}
    banded = single = False
    for ax, env in zip(axes[0], envs, strict=True):
        for m in metrics:
            for c in (c for c in curves[m] if c["env"] == env):
                key = f"{c['label']}: {WHAT[m]}" if len(metrics) > 1 else c["label"]
                color = f"C{list(entries).index(key) % 10}" if key in entries else f"C{len(entries) % 10}"
                handle = draw_curve(
                    ax, c["steps"], c["mean"], c["band"], color, m != "episode", m == "success"
                )
                if key in entries:
                    entries[key][1].append((c["n"], c["seeds"]))
                else:
                    entries[key] = (handle, [(c["n"], c["seeds"])])
                banded |= c["band"] is not None
                single |= c["band"] is None
        style_axes(ax, env, YLABEL[metric], metric == "success")
    notes = []
    if banded:
        notes.append(f"line: mean across seeds; {BAND}" + ("; 1 seed: no band" if single else ""))
    if smooth_window > 1 and "episode" in metrics:
        notes.append(f"episode returns smoothed: trailing mean of {smooth_window} episodes")
    add_legend(fig, entries, notes)
    return fig


def check_output(out: Path) -> None:
    """Refuse, before anything is read, drawn or written, an output whose directory cannot be made or written: one
    line naming the path in the way (a file where a directory should be, a directory this user may not write)."""
    p = out.parent
    while not p.exists() and p != p.parent:  # the nearest part of the path that exists
        p = p.parent
    if not p.is_dir():
        raise UserError(
            f"cannot write {out}: {p} is a file, not a directory; give --out a path in a directory"
        )
    if not os.access(p, os.W_OK | os.X_OK):
        raise UserError(f"cannot write {out}: {p} is not writable; give --out a directory you can write to")


def save_figure(fig: Figure, out: Path) -> None:
    """Write the figure (its format from the suffix), making the directory; an OS error is one line."""
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(out)
    except OSError as e:
        raise UserError(f"cannot write {out}: {describe(e)}") from None


# how far below a folder named on the command line runs are looked for: OUT/run, OUT/group/seed-run (a seed group,
# a tune study, a sweep), OUT/sweep/group/seed-run
SEARCH_DEPTH = 3


def find_runs(dirs: Sequence[Path | str]) -> list[Path]:
    """Run directories named directly, or found in the folders named: a sweep's --out, a seed group (group.json and
    its seeds' runs), a tune study (its trial_* runs), and folders of those, down to ``SEARCH_DEPTH`` levels; each
    run once, in order. A folder found on the way that holds no run is left out with a warning naming it; a file is
    passed over."""
    runs: list[Path] = []
    empty: list[Path] = []
    for d in map(Path, dirs):
        if (d / "config.json").is_file():
            runs.append(d)
        elif d.is_dir():
            found = _runs_below(d, SEARCH_DEPTH, empty)
            if not found:
                raise UserError(f"{d} is neither a ddpgx run directory nor a folder of runs (no config.json)")
            runs += found
        elif not d.exists():
            raise UserError(f"{d} does not exist")
    if not runs:
        raise UserError(f"no ddpgx run directory among {', '.join(map(str, dirs)) or 'the arguments'}")
    for e in empty:
        warn(f"skipped {e}: it holds no ddpgx run directory (no config.json in it or below)")
    unique = {p.resolve(): p for p in reversed(runs)}  # a run named twice is one run, not two seeds
    return [unique[k] for k in dict.fromkeys(p.resolve() for p in runs)]


def _runs_below(folder: Path, depth: int, empty: list[Path]) -> list[Path]:
    runs: list[Path] = []
    try:
        children = sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    except OSError as e:
        raise UserError(f"cannot read {folder}: {describe(e)}") from None
    for child in children:
        if (child / "config.json").is_file():
            runs.append(child)
        else:
            below = _runs_below(child, depth - 1, []) if depth > 1 else []
            if below:
                runs += below
            else:
                empty.append(child)
    return runs


def plot_runs(
    run_dirs: Sequence[Path],
    out: Path,
    metric: str = "episode",
    smooth_window: int = 1,
    size: tuple[float, float] = (8.0, 4.5),
    dpi: int = 100,
) -> Path:
    """One subplot per env; a mean line and a 95% bootstrap CI band per group of seeds (``curves_figure``).
    ``metric``: episode, eval, success or both. ``out`` naming an existing directory gets ``returns.png`` inside
    it. Returns the path written."""
    if metric not in ("episode", "eval", "success", "both"):
        raise UserError(f"--metric must be episode, eval, success or both, got {metric}")
    out = Path(out)
    if out.is_dir():
        out = out / "returns.png"
    if out.suffix.lower() not in IMAGE_SUFFIXES:
        raise UserError(
            f"--out must end in {', '.join(IMAGE_SUFFIXES)} (or name a directory), got {out.name}"
        )
    check_output(out)
    fig = curves_figure(find_runs(run_dirs), metric, smooth_window, size, dpi)
    save_figure(fig, out)
    return out
