"""docs/VECTOR.md's wall time to a score: HalfCheetah-v5 `modern` at N = 1 against N = 8 envs with half the updates.

    ddpgx sweep benchmarks/sweeps/halfcheetah300.toml    # 2 variants x 3 seeds x 300k env steps
    python benchmarks/wall_to_score.py [--write]         # prints the table; --write puts it into docs/VECTOR.md

For each run: the first noise-free evaluation (10 episodes, every 5000 env steps) at or above 5000, its env step
and its wall time since the run started (eval.csv's wall_s, the run's own clock, compile included); the final eval
at 300k; the whole run's wall time and env steps/s. Across seeds: mean [95% bootstrap CI]. A run that never reached
5000 counts as not reached, not as its total time.
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from archive import mean_ci as ci  # noqa: E402
from archive import status, study_runs, write_block  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "out" / "halfcheetah300"
DOC = ROOT / "docs" / "VECTOR.md"
TARGET = 5000.0
BEGIN, END = (
    "<!-- wall-to-score:begin (benchmarks/wall_to_score.py --write) -->",
    "<!-- wall-to-score:end -->",
)
WHAT = {
    "n1": "N = 1, 1 gradient step per env step (`modern`)",
    "n8-half": "N = 8 sync, 4 gradient steps per 8 env steps (0.5 per env step)",
}


def rows_of(run: Path) -> list[dict[str, float]]:
    return [{k: float(v) for k, v in r.items()} for r in csv.DictReader(open(run / "eval.csv"))]


def first_at(rows: list[dict[str, float]], target: float) -> tuple[float, float]:
    """(env step, wall s) of the first evaluation at or above ``target``; (nan, nan) if none."""
    for r in rows:
        if r["mean_return"] >= target:
            return r["step"], r["wall_s"]
    return float("nan"), float("nan")


def plot_wall(runs: list[Path]) -> Path:
    """Each run's eval return against its wall time: what a user waits for, which the table's step counts hide."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    for (name, what), color in zip(WHAT.items(), ("tab:blue", "tab:orange"), strict=True):
        for i, r in enumerate(r for r in runs if r.name.split("__")[1] == name):
            rows = rows_of(r)
            ax.plot([x["wall_s"] / 60 for x in rows], [x["mean_return"] for x in rows], color=color, alpha=0.8,
                    label=what if i == 0 else None)  # fmt: skip
    ax.axhline(TARGET, color="gray", ls="--", lw=1)
    ax.set_xlabel("wall time of the run, min (2-core VM, two runs at a time)")
    ax.set_ylabel("noise-free eval return")
    ax.set_title("HalfCheetah-v5 modern, 300k env steps, seeds 0-2")
    ax.legend(fontsize=8)
    fig.tight_layout()
    out = DOC.parent / "halfcheetah_wall.png"
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out


def main() -> None:
    every = study_runs(OUT.glob("HalfCheetah-v5__*__s*"), "halfcheetah300")  # live runs, and the kept copies
    lines = [
        BEGIN,
        f"| variant | seeds done | reached {TARGET:.0f} | env steps to {TARGET:.0f}: mean [95% CI] | wall time to "
        f"{TARGET:.0f}, min | final eval at 300k | whole run, min | env steps/s | per seed: steps to {TARGET:.0f} / "
        "min / final |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    pending = []
    for name, what in WHAT.items():
        runs = [r for r in every if r.name.split("__")[1] == name]
        done = [r for r in runs if status(r) == "finished"]
        pending += [r for r in runs if r not in done and (r / "eval.csv").is_file()]
        if not done:
            continue
        per = []
        for r in done:
            rows = rows_of(r)
            step, wall = first_at(rows, TARGET)
            per.append((step, wall / 60, rows[-1]["mean_return"], rows[-1]["wall_s"] / 60, rows[-1]["step"]))
        a = np.array(per)
        reached = int((~np.isnan(a[:, 0])).sum())
        rate = np.mean(a[:, 4] / (a[:, 3] * 60))
        lines.append(
            f"| {what} | {len(done)} | {reached} of {len(done)} | {ci(a[:, 0])} | {ci(a[:, 1], 1)} | {ci(a[:, 2])} | "
            f"{ci(a[:, 3], 1)} | {rate:.0f} | "
            + ", ".join(
                f"{'-' if s != s else f'{s / 1000:.0f}k'} / {'-' if w != w else f'{w:.1f}'} / {f:.0f}"
                for s, w, f, _, _ in per
            )
            + " |"
        )
    png = plot_wall(every)
    lines += ["", f"![eval return against wall time, each run]({png.name})"]
    if pending:
        lines += ["", "Under way: " + ", ".join(f"{r.name} at {int(rows_of(r)[-1]['step']) // 1000}k" for r in pending if rows_of(r)) + "."]  # fmt: skip
    lines.append(END)
    text = "\n".join(lines)
    print(text)
    if "--write" in sys.argv[1:]:
        write_block(DOC, BEGIN, END, text)


if __name__ == "__main__":
    main()
