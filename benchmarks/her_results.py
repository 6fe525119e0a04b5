"""docs/RESULTS.md's hard Fetch tasks: FetchPush-v4 with `her8` (3 seeds), the two ablations, FetchPickAndPlace-v4
and FetchSlide-v4, from their sweeps' run directories (runs still going are shown where they stand).

    python benchmarks/her_results.py [--gifs]    # rewrites the "hard Fetch tasks" part of docs/RESULTS.md

The sweeps (each resumes exactly where it stopped):
    ddpgx sweep benchmarks/sweeps/her_push.toml            # her8, seeds 0-2, <= 2M steps, stop at success 0.95
    ddpgx sweep benchmarks/sweeps/her_push_ablation.toml   # 1 seed, 500k: old normalizer / one-worker schedule
    ddpgx sweep benchmarks/sweeps/her_hard.toml            # PickAndPlace and Slide, her8, 1 seed, <= 2M
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
OUT = ROOT / "benchmarks" / "out" / "her"
BEGIN, END = "<!-- her-hard:begin -->", "<!-- her-hard:end -->"
SWEEPS = {"push8": "her_push.toml", "push_ablation": "her_push_ablation.toml", "hard8": "her_hard.toml"}


def run_facts(run: Path) -> dict:
    """Steps, wall time, steps/s, final and best success, and whether it finished, from a run's own files."""
    from ddpgx.sweep import run_status

    ev = list(csv.DictReader(open(run / "eval.csv"))) if (run / "eval.csv").exists() else []
    ep = list(csv.DictReader(open(run / "episodes.csv"))) if (run / "episodes.csv").exists() else []
    step = max(([int(ev[-1]["step"])] if ev else []) + ([int(ep[-1]["step"])] if ep else []), default=0)
    wall = float(ev[-1]["wall_s"]) if ev else 0.0
    succ = [(int(r["step"]), float(r["success"])) for r in ev]
    hit = next((s for s, v in succ if v >= 0.9), None)
    return {
        "run": run, "step": step, "wall_s": wall, "sps": step / wall if wall else float("nan"),
        "final": succ[-1][1] if succ else float("nan"), "best": max((v for _, v in succ), default=float("nan")),
        "first_09": hit, "status": run_status(run), "succ": succ,
    }  # fmt: skip


def section(gifs: bool) -> list[str]:
    from ddpgx.report import expand_runs, group_stats, plot_curves

    lines = [
        BEGIN,
        "### The hard tasks: FetchPush, FetchPickAndPlace, FetchSlide",
        "",
        "`her8` preset: the `her` algorithm with the cycle of baselines' HER on 8 MPI workers, run by one learner "
        "(16 episodes, then 40 gradient steps on batches of 2048, targets once per cycle) and the normalizer HER "
        "needs (std floor 0.01, desired-goal statistics of the relabelled goals). Noise-free evaluation of 50 "
        "episodes every 20k env steps; runs stop at the first evaluation with success >= 0.95. One core per run, "
        "two runs at a time on a 2-core machine. Reproduce: " + ", ".join(f"`ddpgx sweep benchmarks/sweeps/{f}`"
                                                                          for f in SWEEPS.values()) + ".",
        "",
        "| sweep | run | env steps | success: final / best | first eval >= 0.9 | wall | env steps/s | status |",
        "|---|---|---|---|---|---|---|---|",
    ]  # fmt: skip
    runs = []
    for sweep in SWEEPS:
        d = OUT / sweep
        found = [r for r in expand_runs([d]) if (r / "eval.csv").exists()] if d.is_dir() else []
        runs += found
        for r in sorted(found):
            f = run_facts(r)
            status = {"finished": "finished", "started": "stopped, resumable"}.get(f["status"], f["status"])
            lines.append(
                f"| {sweep} | {r.name} | {f['step']:,} | {f['final']:.2f} / {f['best']:.2f} | "
                f"{f['first_09'] if f['first_09'] is not None else '-'} | {f['wall_s'] / 3600:.2f} h | "
                f"{f['sps']:.0f} | {status} |"
            )
    if not runs:
        return [*lines, "(no runs yet)", END]
    stats = group_stats(runs, "success")
    png = plot_curves(stats, DOCS / "fetch_hard_success.png", "success")
    lines += ["", f"![success on the hard Fetch tasks]({png.name})", ""]
    if gifs:
        from ddpgx.record import record

        for env, slug in (("FetchPush-v4", "fetchpush"), ("FetchPickAndPlace-v4", "fetchpickandplace")):
            cands = [run_facts(r) for r in runs if r.name.startswith(env)]
            if cands:
                best = max(cands, key=lambda f: f["final"])
                gif = DOCS / f"{slug}.gif"
                res = record(best["run"], gif, max_steps=50, every=1, size=(160, 160), fps=15)
                print(f"{gif}: {best['run'].name}, return {res.returns[0]:.1f}")
                lines += [f"![{env} policy]({slug}.gif) ({env}, {best['run'].name}, final success "
                          f"{best['final']:.2f}, noise-free)", ""]  # fmt: skip
    lines.append(END)
    return lines


def main() -> None:
    text = (DOCS / "RESULTS.md").read_text()
    new = "\n".join(section("--gifs" in sys.argv[1:]))
    if BEGIN in text:
        a, b = text.index(BEGIN), text.index(END) + len(END)
        text = text[:a] + new + text[b:]
    else:
        text = text.rstrip() + "\n\n" + new + "\n"
    (DOCS / "RESULTS.md").write_text(text)
    print(new)


if __name__ == "__main__":
    main()
