"""Learning curves: reward per episode and noise-free eval return against env steps, grouped across seeds."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ddpgx.errors import UserError
from ddpgx.groups import group_runs
from ddpgx.logs import read_rows

IMAGE_SUFFIXES = (".png", ".svg", ".pdf")


METRIC_COLUMNS = {
    "episode": ("episodes.csv", "return"),
    "eval": ("eval.csv", "mean_return"),
    "success": ("eval.csv", "success"),
}


def read_curve(run_dir: Path, metric: str) -> tuple[np.ndarray, np.ndarray]:
    """(steps, values) of ``metric`` ("episode": episodes.csv return, "eval": eval.csv mean_return, "success":
    eval.csv success, the eval success rate of a goal env)."""
    name, col = METRIC_COLUMNS[metric]
    path = run_dir / name
    if not path.is_file():
        raise UserError(f"{path} does not exist; is {run_dir} a ddpgx run directory?")
    rows = read_rows(path)
    if rows and col not in rows[0]:
        why = (
            " (a success rate is logged for envs that report info['is_success'])" if col == "success" else ""
        )
        raise UserError(f"{path} has no {col} column; its columns are {', '.join(rows[0])}{why}")
    try:
        steps = np.array([float(r["step"]) for r in rows])
        values = np.array([float(r[col]) for r in rows])
    except (KeyError, ValueError, TypeError, csv.Error) as e:
        raise UserError(
            f"{path} is corrupt ({type(e).__name__}: {e}); it needs columns step and {col}"
        ) from None
    if len(steps) == 0:
        raise UserError(f"{path} has no rows yet; let the run finish an episode or an evaluation first")
    return steps, values


def smooth(values: np.ndarray, window: int) -> np.ndarray:
    """Trailing moving average over ``window`` points (shorter at the start)."""
    if window <= 1:
        return values
    c = np.cumsum(np.insert(values, 0, 0.0))
    idx = np.arange(1, len(values) + 1)
    lo = np.maximum(idx - window, 0)
    return (c[idx] - c[lo]) / (idx - lo)


def common_grid(
    curves: Sequence[tuple[np.ndarray, np.ndarray]], points: int = 200
) -> tuple[np.ndarray, np.ndarray]:
    """(steps, values of each curve there): the curves' own steps when they share them (evaluations), else
    ``points`` steps over the range they all cover, by linear interpolation."""
    first = curves[0][0]
    if all(len(s) == len(first) and np.array_equal(s, first) for s, _ in curves):
        return first, np.stack([v for _, v in curves])
    lo, hi = max(s[0] for s, _ in curves), min(s[-1] for s, _ in curves)
    grid = np.linspace(lo, hi, points) if hi > lo else np.array([hi])
    return grid, np.stack([np.interp(grid, s, v) for s, v in curves])


def group_curves(
    run_dirs: Sequence[Path], metric: str, smooth_window: int = 1, points: int = 200
) -> list[dict]:
    """Runs whose configs differ only in the seed (``groups.group_runs``) become one curve: the mean and std
    across seeds, at the runs' own steps when they share them (evaluations), else on a common grid of ``points``
    steps by linear interpolation. Each curve: env, label, n, steps, mean, std."""
    out = []
    for g in group_runs(run_dirs):
        curves = []
        for d in g.runs:
            s, v = read_curve(d, metric)
            curves.append((s, smooth(v, smooth_window)))
        grid, ys = common_grid(curves, points)
        out.append(
            {
                "env": g.env,
                "label": g.label,
                "steps": grid,
                "mean": ys.mean(0),
                "std": ys.std(0),
                "n": len(curves),
            }
        )
    return out


def plot_runs(
    run_dirs: Sequence[Path],
    out: Path,
    metric: str = "episode",
    smooth_window: int = 1,
    size: tuple[float, float] = (8.0, 4.5),
    dpi: int = 100,
) -> Path:
    """One subplot per env; a mean line and a +-1 std band per group of seeds. ``metric``: episode, eval or both.
    ``out`` naming an existing directory gets ``returns.png`` inside it. Returns the path written."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metrics = ["episode", "eval"] if metric == "both" else [metric]
    if metric not in ("episode", "eval", "success", "both"):
        raise UserError(f"--metric must be episode, eval, success or both, got {metric}")
    out = Path(out)
    if out.is_dir():
        out = out / "returns.png"
    if out.suffix.lower() not in IMAGE_SUFFIXES:
        raise UserError(
            f"--out must end in {', '.join(IMAGE_SUFFIXES)} (or name a directory), got {out.name}"
        )
    curves = {m: group_curves(run_dirs, m, smooth_window if m == "episode" else 1) for m in metrics}
    envs = sorted({c["env"] for m in metrics for c in curves[m]})
    fig, axes = plt.subplots(1, len(envs), figsize=size, dpi=dpi, squeeze=False)
    for ax, env in zip(axes[0], envs, strict=True):
        for m in metrics:
            for c in curves[m]:
                if c["env"] != env:
                    continue
                seeds = f"{c['n']} seed{'s' if c['n'] != 1 else ''}"
                what = {"episode": "episode return", "success": "eval success rate"}.get(
                    m, "eval return (no noise)"
                )
                name = c["label"]
                label = f"{name}: {what}, {seeds}" if len(metrics) > 1 else f"{name} ({seeds})"
                style = "-" if m == "episode" else "o-"
                (line,) = ax.plot(c["steps"], c["mean"], style, markersize=3, label=label, lw=1.5)
                if c["n"] > 1:
                    ax.fill_between(
                        c["steps"],
                        c["mean"] - c["std"],
                        c["mean"] + c["std"],
                        color=line.get_color(),
                        alpha=0.2,
                    )
        ax.set_title(env)
        ax.set_xlabel("environment steps")
        ax.set_ylabel(
            {
                "episode": "cumulative reward per episode (training)",
                "eval": "cumulative reward per episode (eval)",
                "success": "success rate (eval, no noise)",
            }.get(metric, "cumulative reward per episode")
        )
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    plt.close(fig)
    return out
