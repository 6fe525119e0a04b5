"""docs/ACTORS.md's hard Fetch tasks trained with collection on Ray actors: FetchPickAndPlace-v4 (2 seeds, <= 3M env
steps) and FetchSlide-v4 (1 seed, <= 4M), their table, their success curves (the mean with its band, and each seed)
beside the published points, and GIFs.

    PYTHONPATH=~/ddpgx-runner/src MUJOCO_GL=egl .venv/bin/ddpgx sweep benchmarks/sweeps/fetch_pickplace_actors.toml \
        --out ~/ddpgx-studies/fetch_pickplace_actors --max-parallel 1 --no-live    # and fetch_slide_actors.toml
    python benchmarks/actors_hard.py            # prints the section (read only)
    python benchmarks/actors_hard.py --write [--gifs]   # archives the live runs, writes the section and the plot

Runs live under ~/ddpgx-studies/<sweep>/ while they go; each one's config.json and eval.csv are copied to
docs/data/<sweep>/<run>/ on --write (benchmarks/archive.py), so the table and the curves survive the machine. A run
still going is shown where it stands. Per run: env steps, success at the last evaluation and the best, the first
evaluation with success >= 0.9, wall time (eval.csv's wall_s at its last row: the run's own clock across resumes,
start-up and compiles included) and env steps/s over it. GIFs (--gifs): three successful episodes of the best
checkpoint of each task's best live run (`ddpgx record --successful`: the first seeds whose episode succeeds).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from archive import facts, status, study_runs, write_block  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
DOC = DOCS / "ACTORS.md"
BEGIN, END = "<!-- actors-hard:begin (benchmarks/actors_hard.py --write) -->", "<!-- actors-hard:end -->"
STUDIES = Path.home() / "ddpgx-studies"
SWEEPS = {"fetch_pickplace_actors": "FetchPickAndPlace-v4", "fetch_slide_actors": "FetchSlide-v4"}
PLOT = DOCS / "actors_hard_success.png"
PUBLISHED = {  # REFERENCES.md: (label, [(env steps, success)], marker); read off the sources' plots
    "FetchPickAndPlace-v4": [
        ("DDPG + HER, 16 workers (PyTorch port of baselines)", [(0.96e6, 0.5), (1.8e6, 0.8), (2.8e6, 0.92),
                                                               (3.9e6, 0.92)], "s"),
        ("TQC + HER (SB3 zoo)", [(1.0e6, 1.0)], "^"),
    ],
    "FetchSlide-v4": [
        ("DDPG + HER, 8 workers (PyTorch port): about 0.5-0.7", [(4.6e6, 0.5), (8.0e6, 0.7)], "s"),
        ("TQC + HER (SB3 zoo)", [(2.5e6, 0.8)], "^"),
    ],
}  # fmt: skip


def run_facts(run: Path) -> dict:
    """Steps, wall time, env steps/s, last and best success, the first step at >= 0.9, from eval.csv (and the
    archived facts.json for the step of a run whose directory is gone)."""
    from ddpgx.logs import read_rows

    ev = read_rows(run / "eval.csv")  # a run still going may have a half-written last line
    succ = [(int(r["step"]), float(r["success"])) for r in ev]
    step = facts(run).get("step", succ[-1][0] if succ else 0)
    rows = read_rows(run / "episodes.csv")
    step = max(step, int(rows[-1]["step"]) if rows else 0)
    wall = float(ev[-1]["wall_s"]) if ev else 0.0
    return {
        "step": step,
        "wall_s": wall,
        "sps": succ[-1][0] / wall if wall else float("nan"),
        "last": succ[-1][1] if succ else float("nan"),
        "best": max((v for _, v in succ), default=float("nan")),
        "first_09": next((s for s, v in succ if v >= 0.9), None),
        "status": status(run),
    }


def runs(write: bool) -> list[Path]:
    """Every run of the two sweeps: the live ones (archived on the way when ``write``) and the archived copies."""
    from ddpgx.plots import find_runs

    out = []
    for sweep in SWEEPS:
        live = find_runs([STUDIES / sweep]) if (STUDIES / sweep).is_dir() else []
        out += study_runs(live, sweep, write)
    return out


def plot(found: list[Path]) -> Path:
    """The success curves (ddpgx report's figure) with the published points on each env's panel."""
    from ddpgx.logs import read_rows
    from ddpgx.report import curves_figure, group_stats

    stats = group_stats(found, "success")
    fig = curves_figure(stats, "success")
    for ax in fig.axes:
        # each seed's own curve, thin: the mean and its band stop where the shortest seed stops
        mine = [r for r in found if r.name.split("__")[0] == ax.get_title()]
        for i, run in enumerate(sorted(mine, key=lambda r: r.name)):
            ev = read_rows(run / "eval.csv")
            ax.plot([int(r["step"]) for r in ev], [float(r["success"]) for r in ev], linewidth=0.8, alpha=0.6,
                    color=f"C{i + 1}", label=f"seed {run.name.rsplit('__s', 1)[1]}")  # fmt: skip
        for label, points, marker in PUBLISHED.get(ax.get_title(), []):
            xs, ys = zip(*points, strict=True)
            ax.plot(xs, ys, marker=marker, linestyle=":", color="black", alpha=0.7, label=label)
        if ax.get_title() in PUBLISHED:
            right = max(x for _, points, _ in PUBLISHED[ax.get_title()] for x, _ in points)
            ax.set_xlim(0, max(ax.get_xlim()[1], right * 1.03))  # the curve's axis may stop short of them
            ax.set_ylim(0, 1.04)  # a point at 1.0 whole
            ax.legend(loc="lower right", fontsize=7)
    fig.savefig(PLOT)
    return PLOT


def section(found: list[Path], write: bool, gifs: bool) -> str:
    lines = [
        BEGIN,
        "| run | env steps | success: last / best | first eval >= 0.9 | wall | env steps/s | status |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in found:
        f = run_facts(r)
        state = {"finished": "finished", "started": "running or resumable"}.get(f["status"], f["status"])
        first = "-" if f["first_09"] is None else f"{f['first_09']:,}"
        lines.append(
            f"| {r.name} | {f['step']:,} | {f['last']:.2f} / {f['best']:.2f} | {first} | "
            f"{f['wall_s'] / 3600:.2f} h | {f['sps']:.0f} | {state} |"
        )
    if found:
        png = plot(found) if write else PLOT
        lines += [
            "",
            f"![success of the hard Fetch tasks with actors, beside the published points]({png.name})",
        ]
    for env in SWEEPS.values():
        live = [r for r in found if r.name.startswith(env) and STUDIES in r.parents]
        best = max(live, key=lambda r: run_facts(r)["best"], default=None)
        slug = env.split("-")[0].lower()
        gif = DOCS / f"actors_{slug}.gif"
        if write and gifs and best is not None and (best / "best.msgpack").is_file():
            from ddpgx.errors import UserError
            from ddpgx.record import record

            try:
                rec = record(best, gif, episodes=3, max_steps=50, size=(160, 160), fps=15,
                             params_file=best / "best.msgpack", successful=True)  # fmt: skip
                print(f"{gif}: {best.name}, seeds {rec.seeds}, returns {rec.returns}", file=sys.stderr)
            except UserError as e:  # too few successes yet: no GIF this time (an older one stays)
                print(f"{gif}: not recorded: {e}", file=sys.stderr)
        if gif.is_file():
            lines += ["", f"![{env} policy]({gif.name}) ({env}: three successful noise-free episodes of the best "
                      "checkpoint, `ddpgx record RUN --which best --successful --episodes 3`)"]  # fmt: skip
    lines.append(END)
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--write", action="store_true", help="archive the live runs, write the plot and docs/ACTORS.md"
    )
    ap.add_argument(
        "--gifs",
        action="store_true",
        help="record 3 successful episodes of each task's best live run (ddpgx record --successful)",
    )
    args = ap.parse_args()
    found = runs(args.write)
    text = section(found, args.write, args.gifs)
    if args.write:
        write_block(DOC, BEGIN, END, text)
    print(text)


if __name__ == "__main__":
    main()
