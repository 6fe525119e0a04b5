"""Learning curves: reward per episode and noise-free eval return against env steps, grouped across seeds."""

from __future__ import annotations

import csv
import json
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ddpgx.errors import UserError


def read_curve(run_dir: Path, metric: str) -> tuple[np.ndarray, np.ndarray]:
    """(steps, values) of ``metric`` ("episode": episodes.csv return, "eval": eval.csv mean_return)."""
    name, col = ("episodes.csv", "return") if metric == "episode" else ("eval.csv", "mean_return")
    path = run_dir / name
    if not path.is_file():
        raise UserError(f"{path} does not exist; is {run_dir} a ddpgx run directory?")
    try:
        with open(path, newline="") as f:
            rows = list(csv.DictReader(f))
        steps = np.array([float(r["step"]) for r in rows])
        values = np.array([float(r[col]) for r in rows])
    except (KeyError, ValueError, TypeError) as e:
        raise UserError(
            f"{path} is corrupt ({type(e).__name__}: {e}); it needs columns step and {col}"
        ) from None
    if len(steps) == 0:
        raise UserError(f"{path} has no rows yet; let the run finish an episode or an evaluation first")
    return steps, values


def run_label(run_dir: Path) -> tuple[str, str, int]:
    """(env, preset, seed) of a run, from its config.json."""
    try:
        cfg = json.loads((run_dir / "config.json").read_text())["config"]
        return cfg["env"], cfg["preset"], int(cfg["seed"])
    except (OSError, KeyError, ValueError) as e:
        raise UserError(
            f"{run_dir} has no readable config.json ({e}); is it a ddpgx run directory?"
        ) from None


def smooth(values: np.ndarray, window: int) -> np.ndarray:
    """Trailing moving average over ``window`` points (shorter at the start)."""
    if window <= 1:
        return values
    c = np.cumsum(np.insert(values, 0, 0.0))
    idx = np.arange(1, len(values) + 1)
    lo = np.maximum(idx - window, 0)
    return (c[idx] - c[lo]) / (idx - lo)


def group_curves(
    run_dirs: Sequence[Path], metric: str, smooth_window: int = 1, points: int = 200
) -> dict[tuple[str, str], dict[str, np.ndarray | int]]:
    """Runs with the same (env, preset) become one curve: the mean and std across seeds, at the runs' own steps
    when they share them (evaluations), else on a common grid of ``points`` steps by linear interpolation."""
    groups: dict[tuple[str, str], list[tuple[np.ndarray, np.ndarray]]] = defaultdict(list)
    for d in run_dirs:
        env, preset, _ = run_label(Path(d))
        s, v = read_curve(Path(d), metric)
        groups[(env, preset)].append((s, smooth(v, smooth_window)))
    out = {}
    for key, curves in groups.items():
        first = curves[0][0]
        if all(len(s) == len(first) and np.array_equal(s, first) for s, _ in curves):
            grid = first  # the same steps in every run (evaluations): keep them as they are
        else:
            lo = max(s[0] for s, _ in curves)
            hi = min(s[-1] for s, _ in curves)
            grid = np.linspace(lo, hi, points) if hi > lo else np.array([hi])
        ys = np.stack([np.interp(grid, s, v) for s, v in curves])
        out[key] = {"steps": grid, "mean": ys.mean(0), "std": ys.std(0), "n": len(curves)}
    return out


def plot_runs(
    run_dirs: Sequence[Path],
    out: Path,
    metric: str = "episode",
    smooth_window: int = 1,
    size: tuple[float, float] = (8.0, 4.5),
    dpi: int = 100,
) -> Path:
    """One subplot per env; a mean line and a +-1 std band per preset. ``metric``: episode, eval or both."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metrics = ["episode", "eval"] if metric == "both" else [metric]
    if metric not in ("episode", "eval", "both"):
        raise UserError(f"--metric must be episode, eval or both, got {metric}")
    curves = {m: group_curves(run_dirs, m, smooth_window if m == "episode" else 1) for m in metrics}
    envs = sorted({env for m in metrics for env, _ in curves[m]})
    fig, axes = plt.subplots(1, len(envs), figsize=size, dpi=dpi, squeeze=False)
    for ax, env in zip(axes[0], envs, strict=True):
        for m in metrics:
            for (e, preset), c in sorted(curves[m].items()):
                if e != env:
                    continue
                seeds = f"{c['n']} seed{'s' if c['n'] != 1 else ''}"
                what = "episode return" if m == "episode" else "eval return (no noise)"
                label = f"{preset}: {what}, {seeds}" if len(metrics) > 1 else f"{preset} ({seeds})"
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
            }.get(metric, "cumulative reward per episode")
        )
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    plt.close(fig)
    return out
