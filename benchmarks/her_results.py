"""docs/RESULTS.md's hard Fetch tasks: FetchPush-v4 with `her8` (3 seeds), the two ablations, FetchPickAndPlace-v4
and FetchSlide-v4, from their sweeps' run directories (runs still going are shown where they stand).

    python benchmarks/her_results.py [--gifs]    # rewrites the "hard Fetch tasks" part of docs/RESULTS.md

Each run's config.json and eval.csv are copied to docs/data/her/<sweep>/<run>/ (a few KB), with its status and steps
in facts.json, so the table and the curves can be made again on a machine where the run directories are gone: a
run found in benchmarks/out/her is read there, else from its copy. A row already in RESULTS.md whose run is in
neither place (published before the copies were kept) stays as it was, and the plot says which runs it lacks.

The sweeps (each resumes exactly where it stopped):
    ddpgx sweep benchmarks/sweeps/her_push.toml            # her8, seeds 0-2, <= 2M steps, stop at success 0.95
    ddpgx sweep benchmarks/sweeps/her_push_ablation.toml   # 1 seed, 800k: old normalizer / one-worker schedule
    ddpgx sweep benchmarks/sweeps/her_hard.toml            # PickAndPlace and Slide, her8, 1 seed, <= 2M
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from archive import facts as archived  # noqa: E402
from archive import status, study_runs  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
OUT = ROOT / "benchmarks" / "out" / "her"
BEGIN, END = "<!-- her-hard:begin -->", "<!-- her-hard:end -->"
SWEEPS = {"push8": "her_push.toml", "push_ablation": "her_push_ablation.toml", "hard8": "her_hard.toml"}


def run_facts(run: Path) -> dict:
    """Steps, wall time, steps/s, final and best success, and whether it finished, from a run's own files."""
    ev = list(csv.DictReader(open(run / "eval.csv"))) if (run / "eval.csv").exists() else []
    ep = list(csv.DictReader(open(run / "episodes.csv"))) if (run / "episodes.csv").exists() else []
    step = max(([int(ev[-1]["step"])] if ev else []) + ([int(ep[-1]["step"])] if ep else []), default=0)
    kept = archived(run)
    wall = float(ev[-1]["wall_s"]) if ev else 0.0
    succ = [(int(r["step"]), float(r["success"])) for r in ev]
    hit = next((s for s, v in succ if v >= 0.9), None)
    return {
        "run": run, "step": kept.get("step", step), "wall_s": wall,
        "sps": kept.get("step", step) / wall if wall else float("nan"),
        "final": succ[-1][1] if succ else float("nan"), "best": max((v for _, v in succ), default=float("nan")),
        "first_09": hit, "status": status(run), "succ": succ,
    }  # fmt: skip


def sweep_runs(sweep: str) -> list[Path]:
    """The sweep's runs: live ones (archived on the way), and the archived copies of those not here."""
    from ddpgx.plots import find_runs

    d = OUT / sweep
    return study_runs(find_runs([d]) if d.is_dir() else [], f"her/{sweep}")


def published_rows(text: str) -> dict[str, str]:
    """The table rows RESULTS.md already has, by run name."""
    if BEGIN not in text:
        return {}
    part = text[text.index(BEGIN) : text.index(END)]
    return {
        ln.split("|")[2].strip(): ln for ln in part.splitlines() if ln.startswith("| ") and ln.count("|") > 8
    }


GIF_ENVS = (("FetchPush-v4", "fetchpush"), ("FetchPickAndPlace-v4", "fetchpickandplace"))
"""The envs whose policy GIF this section records and shows (from its `her8` runs); results.py leaves them alone."""


def section(gifs: bool, published: dict[str, str], gif_lines: list[str]) -> list[str]:
    from ddpgx.report import group_stats, plot_curves

    lines = [
        BEGIN,
        "### The hard tasks: FetchPush, FetchPickAndPlace, FetchSlide",
        "",
        "`her8` preset: the `her` algorithm with the cycle of baselines' HER on 8 MPI workers, run by one learner "
        "(16 episodes, then 40 gradient steps on batches of 2048, targets once per cycle) and the normalizer HER "
        "needs (std floor 0.01, desired-goal statistics of the relabelled goals). Noise-free evaluation of 50 "
        "episodes every 20k env steps (the ablation sweep's: every 10k); runs stop at the first evaluation with success >= 0.95. One core per run, "
        "two runs at a time on a 2-core machine. Reproduce: " + ", ".join(f"`ddpgx sweep benchmarks/sweeps/{f}`"
                                                                          for f in SWEEPS.values()) + ".",
        "",
        "| sweep | run | env steps | success: final / best | first eval >= 0.9 | wall | env steps/s | status |",
        "|---|---|---|---|---|---|---|---|",
    ]  # fmt: skip
    runs, missing = [], []
    for sweep in SWEEPS:
        found = sweep_runs(sweep)
        runs += found
        names = {r.name for r in found}
        for name, row in published.items():  # published before copies were kept: the row stays as it was
            if row.split("|")[1].strip() == sweep and name not in names:
                lines.append(row)
                missing.append(name)
        for r in found:
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
    for st in stats:  # the sweep's variant name (her8-old-norm), not only the preset the variant starts from
        st.label = st.scores[0].run.name.split("__")[1]
    if missing:  # the published plot has their curves: it stays, and these runs get a plot of their own
        lines += [""] + [ln for ln in gif_lines if ln.startswith("![success on the hard Fetch tasks]")]
        png = plot_curves(stats, DOCS / "fetch_hard_success_more.png", "success")
        lines += ["", f"![success of the runs with kept eval files]({png.name})", ""]
    else:
        png = plot_curves(stats, DOCS / "fetch_hard_success.png", "success")
        lines += ["", f"![success on the hard Fetch tasks]({png.name})", ""]
    if missing:
        lines += [f"(The curves lack {', '.join(missing)}: their runs were published before their eval.csv files "
                  "were kept in docs/data/her, and their run directories are gone; the first plot, published with them, has "
                  "their curves.)", ""]  # fmt: skip
    for env, slug in GIF_ENVS:
        # a GIF shows a solved task: recorded from a live run with final success >= 0.9, else the published one stays
        cands = [run_facts(r) for r in runs if r.name.startswith(env) and OUT in r.parents]
        best = max((f for f in cands if f["final"] >= 0.9), key=lambda f: f["final"], default=None)
        if gifs and best is not None:
            from ddpgx.record import record

            gif = DOCS / f"{slug}.gif"
            res = record(best["run"], gif, max_steps=50, every=1, size=(160, 160), fps=15)
            print(f"{gif}: {best['run'].name}, return {res.returns[0]:.1f}")
            lines += [f"![{env} policy]({slug}.gif) ({env}, {best['run'].name}, final success "
                      f"{best['final']:.2f}, noise-free)", ""]  # fmt: skip
        else:
            lines += [ln for ln in gif_lines if ln.startswith(f"![{env} policy]")] + [""] * any(
                ln.startswith(f"![{env} policy]") for ln in gif_lines
            )
    lines.append(END)
    return lines


def main() -> None:
    text = (DOCS / "RESULTS.md").read_text()
    old = text[text.index(BEGIN) : text.index(END)].splitlines() if BEGIN in text else []
    new = "\n".join(
        section("--gifs" in sys.argv[1:], published_rows(text), [ln for ln in old if ln.startswith("![")])
    )
    if BEGIN in text:
        a, b = text.index(BEGIN), text.index(END) + len(END)
        text = text[:a] + new + text[b:]
    else:
        text = text.rstrip() + "\n\n" + new + "\n"
    (DOCS / "RESULTS.md").write_text(text)
    print(new)


if __name__ == "__main__":
    main()
