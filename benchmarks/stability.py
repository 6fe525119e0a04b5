"""docs/STABILITY.md: DDPG's known remedies on Hopper-v5, measured over seeds.

    ddpgx sweep benchmarks/sweeps/stability.toml    # 5 variants x 3 seeds x 200k steps (re-run to continue it)
    python benchmarks/stability.py [--gif]          # writes docs/STABILITY.md and docs/stability.png

Each variant is a [[variant]] of the sweep file. For every finished run: its final noise-free eval and the mean of
its last five; three stability figures: the worst drop between consecutive evaluations after the run first passes
1000, the share of evaluations from then on that stay at or above 1000, and the standard deviation of its last five
evaluations. Across seeds: the mean with its 95% bootstrap CI and the IQM (ddpgx
report's statistics). Runs still under way are listed with their step, not scored.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "out" / "stability"
SPEC = ROOT / "benchmarks" / "sweeps" / "stability.toml"
DOCS = ROOT / "docs"
PASS = 1000.0  # "hopping": the return from which drops count
KEEP = (
    "<!-- conclusions: written by hand from the numbers above; benchmarks/stability.py keeps what follows -->"
)


def worst_drop(values: np.ndarray, threshold: float = PASS) -> float:
    """Largest fall between consecutive evaluations after the run first reaches ``threshold`` (0: never fell;
    nan: never reached it)."""
    hit = np.flatnonzero(values >= threshold)
    if not len(hit):
        return float("nan")
    after = values[hit[0] :]
    return float(max(0.0, np.max(after[:-1] - after[1:]))) if len(after) > 1 else 0.0


def share_above(values: np.ndarray, threshold: float = PASS) -> float:
    """Fraction of the evaluations from the first one at or above ``threshold`` on that are at or above it (nan:
    never reached it): how much of the time a run that has learned to hop keeps hopping."""
    hit = np.flatnonzero(values >= threshold)
    return float(np.mean(values[hit[0] :] >= threshold)) if len(hit) else float("nan")


def last_std(values: np.ndarray, k: int = 5) -> float:
    return float(np.std(values[-k:]))


def main() -> None:
    from ddpgx.grid import load_toml
    from ddpgx.report import _mean, bootstrap_ci, iqm, plot_curves, score_run
    from ddpgx.run import load_run_config, run_status

    variants = [v["name"] for v in load_toml(SPEC).variant]
    runs = {v: sorted(OUT.glob(f"Hopper-v5__{v}__s*")) for v in variants}
    rows, stats, pending, best = [], [], [], None
    for v in variants:
        done = [r for r in runs[v] if run_status(r) == "finished"]
        pending += [r for r in runs[v] if r not in done]
        if not done:
            rows.append((v, []))
            continue
        scores = [score_run(r, load_run_config(r).seed, "eval") for r in done]
        for s in scores:
            if best is None or s.final > best.final:
                best = s
        rows.append((v, scores))
        stats.append(_Group(v, scores))
    lines = [
        "# Stability on Hopper-v5: DDPG's known remedies, over seeds",
        "",
        "<!-- written by benchmarks/stability.py -->",
        'The project ddpgx grew from found its Hopper policy "pretty unstable": short periods of good hopping, then '
        "updates that push it back to poor gaits. This study measures what the known remedies do about it: each is a "
        "switch of the one update (see the stability guide, docs/guides/stability.md), every other setting is `modern`'s.",
        "",
        "Hopper-v5, 200,000 env steps per run, noise-free evaluation of 10 episodes every 5,000 steps, seeds 0-2, "
        "all runs on the same kind of 2-core machine, two at a time, under MuJoCo 4.0.0 "
        "(`ddpgx sweep benchmarks/sweeps/stability.toml`, then `python benchmarks/stability.py`). `modern`'s three runs are the ones of docs/RESULTS.md (the same "
        "config and code path; every switch is off in it).",
        "",
        "| variant | what changes | seeds done | final eval: mean [95% CI] | IQM | mean of last 5 evals | worst drop "
        "after first 1000 (mean; max) | evals >= 1000 after first 1000 (mean) | std of last 5 evals (mean) | finals |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    what = {
        "modern": "DDPG as `modern` (256-256, Gaussian 0.1, lr 3e-4, batch 256, tau 0.005)",
        "big-ln": "400-300 actor and critic with LayerNorm (the suggestion of larger networks)",
        "obs-norm": "`--obs-norm` (running mean/std, clip 5)",
        "param-noise": "`--noise param` (adaptive parameter noise, delta 0.2, LayerNorm actor)",
        "td3": "`--preset td3` (twin critics, target smoothing 0.2/0.5, policy delay 2): TD3, not DDPG",
    }
    for v, scores in rows:
        if not scores:
            lines.append(f"| {v} | {what.get(v, '')} | 0 | - | - | - | - | - | - | - |")
            continue
        finals = np.array([s.final for s in scores])
        lo, hi = bootstrap_ci([finals], _mean) if len(finals) > 1 else (float("nan"), float("nan"))
        drops = np.array([worst_drop(s.values) for s in scores])
        stds = np.array([last_std(s.values) for s in scores])
        last5 = np.array([np.mean(s.values[-5:]) for s in scores])
        shares = np.array([share_above(s.values) for s in scores])
        share_txt = f"{np.nanmean(shares):.0%}" if (~np.isnan(shares)).any() else "-"
        reached = drops[~np.isnan(drops)]
        drop_txt = f"{reached.mean():.0f}; {reached.max():.0f}" if len(reached) else "never reached 1000"
        if 0 < len(reached) < len(drops):
            drop_txt += f" ({len(drops) - len(reached)} run(s) never reached 1000)"
        lines.append(
            f"| {v} | {what.get(v, '')} | {len(scores)} | {finals.mean():.0f} "
            + (f"[{lo:.0f}, {hi:.0f}]" if len(finals) > 1 else "[-, -]")
            + " | "
            f"{float(iqm(finals)):.0f} | {last5.mean():.0f} | {drop_txt} | {share_txt} | {stds.mean():.0f} | "
            + ", ".join(f"s{s.seed}: {s.final:.0f}" for s in scores)
            + " |"
        )
    started = [r for r in pending if (r / "eval.csv").exists() and score_ok(r)]
    if started:
        lines += [
            "",
            "Runs under way (not in the table above; the sweep's command continues them):",
            "",
            "| run | step | last eval | best eval | worst drop after first 1000, so far |",
            "|---|---|---|---|---|",
        ]
        for r in started:
            sc = score_run(r, load_run_config(r).seed, "eval")
            d = worst_drop(sc.values)
            lines.append(
                f"| {r.name} | {sc.step} | {sc.final:.0f} | {sc.best:.0f} | "
                f"{'not yet at 1000' if d != d else f'{d:.0f}'} |"
            )
    queued = [r.name for r in pending if r not in started]
    if queued:
        lines += ["", "Queued: " + ", ".join(queued) + "."]  # fmt: skip
    if stats:
        plot_curves(stats, DOCS / "stability.png", "eval")
        lines += ["", "![eval curves with 95% bootstrap bands](stability.png)", ""]
    if "--gif" in sys.argv[1:] and best is not None:
        from ddpgx.record import record

        res = record(best.run, DOCS / "hopper_best.gif", max_steps=400, every=5, size=(128, 128), fps=20)
        lines += [f"![best Hopper policy](hopper_best.gif) ({best.run.name}, return {res.returns[0]:.0f} over "
                  "the recorded 400 steps, noise-free)", ""]  # fmt: skip
    doc = DOCS / "STABILITY.md"
    kept = doc.read_text().partition(KEEP)[2] if doc.exists() and KEEP in doc.read_text() else "\n"
    doc.write_text("\n".join(lines) + "\n" + KEEP + kept)
    print((DOCS / "STABILITY.md").read_text())


class _Group:
    """What report.plot_curves reads of a group."""

    def __init__(self, label: str, scores) -> None:
        self.env, self.label, self.scores = "Hopper-v5", label, scores
        self.seeds = [s.seed for s in scores]


def score_ok(run: Path) -> bool:
    """The run has at least one evaluation."""
    from ddpgx.logs import read_rows

    return bool(read_rows(run / "eval.csv"))


if __name__ == "__main__":
    main()
