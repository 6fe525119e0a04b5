"""The compiled loop before and after it ran one seed unbatched: env steps/s of `td3` and `crossq` at S = 1, and the
bits of S = 2 runs, against the code of an earlier commit (run from a ``git worktree``; nothing is installed).

    python benchmarks/compiled_s1.py [--before d8ca75c] [--repeats 2] [--write]

Speed: gymnax:Pendulum-v1 with each preset's networks and update (policy delay 2 and 3; crossq with 256-256 critics, as
the MuJoCo studies run it), 6000 env steps, 1000 uniform
warm-up steps, the median of train.csv's rate after step 2000; before and now alternate, each in a fresh process.
Before, one seed was still vmapped, so policy delay's ``lax.cond`` became a ``select`` and the actor and target
updates ran on every critic step. Identity: `pendulum`, `td3` and `crossq` with --num-seeds 2 (still vmapped): final
.msgpack of each seed byte for byte, and the CSV logs (wall times and rates left out). ``--write`` puts the table in
docs/JAXLOOP.md.
"""

from __future__ import annotations

import argparse
import csv
import os
import platform
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "JAXLOOP.md"
ENV = "gymnax:Pendulum-v1"
SPEED = ["--total-steps", "6000", "--learning-starts", "1000", "--log-every", "500", "--eval-every", "1000000",
         "--checkpoint-every", "1000000", "--no-progress", "--no-tensorboard", "--no-plot"]  # fmt: skip
BITS = ["--total-steps", "3000", "--learning-starts", "500", "--eval-every", "1000", "--num-seeds", "2",
        "--no-progress", "--no-tensorboard", "--no-plot"]  # fmt: skip
HEADER = "## One seed, unbatched"
# crossq as the MuJoCo studies run it (256-256 critics; the preset's 2048-wide ones take minutes per 1000 steps here)
EXTRA = {"pendulum": [], "td3": [], "crossq": ["--critic-hidden", "256", "256"]}


def train(src: Path, preset: str, run: Path, flags: list[str]) -> None:
    cmd = [sys.executable, "-c", "import sys; from ddpgx.cli import main; sys.exit(main(sys.argv[1:]))", "train",
           "--env", ENV, "--preset", preset, *EXTRA[preset], *flags, "--run-dir", str(run)]  # fmt: skip
    r = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(src)})
    if r.returncode != 0:
        raise SystemExit(f"{src}: {preset} failed:\n{r.stderr[-2000:]}")


def median_sps(run: Path) -> float:
    rows = [r for r in csv.DictReader(open(run / "train.csv")) if int(r["step"]) > 2000]
    return statistics.median(float(r["sps"]) for r in rows)


def same_csv(a: Path, b: Path) -> bool:
    drop = {"wall_s", "sps"}
    rows = lambda p: [{k: v for k, v in r.items() if k not in drop} for r in csv.DictReader(open(p))]  # noqa: E731
    return rows(a) == rows(b)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--before", default="d8ca75c")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--write", action="store_true")
    a = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="ddpgx-s1-"))
    old = tmp / "before"
    subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(old), a.before], check=True,
                   capture_output=True)  # fmt: skip
    sides = {"before": old / "src", "now": ROOT / "src"}
    try:
        lines = []
        for preset in ("pendulum", "td3", "crossq"):
            runs = {}
            for side, src in sides.items():
                runs[side] = tmp / f"bits-{side}-{preset}"
                train(src, preset, runs[side], BITS)
            seeds = sorted(p.name for p in runs["now"].iterdir() if p.is_dir())
            same = all(
                (runs["before"] / s / "final.msgpack").read_bytes()
                == (runs["now"] / s / "final.msgpack").read_bytes()
                and all(
                    same_csv(runs["before"] / s / f, runs["now"] / s / f)
                    for f in ("episodes.csv", "eval.csv", "train.csv")
                )  # fmt: skip
                for s in seeds
            )
            lines.append(f"{preset}, S = 2: {'the same bits' if same else 'DIFFERENT'} ({len(seeds)} seeds)")
            print(lines[-1], flush=True)
        if a.repeats == 0:  # the bits only (no timing while something else runs)
            return
        sps: dict[tuple[str, str], list[float]] = {}
        for rep in range(a.repeats):
            for preset in ("td3", "crossq"):
                for side, src in sides.items():
                    run = tmp / f"speed-{side}-{preset}-{rep}"
                    train(src, preset, run, SPEED)
                    sps.setdefault((preset, side), []).append(median_sps(run))
                    print(f"{preset} {side} #{rep}: {sps[preset, side][-1]:.0f} env steps/s", flush=True)
        table = ["| preset, S = 1 | before (vmapped) | now (unbatched) | now / before |", "|---|---|---|---|"]
        for preset in ("td3", "crossq"):
            b, n = statistics.median(sps[preset, "before"]), statistics.median(sps[preset, "now"])
            table.append(f"| {preset} | {b:.0f} | {n:.0f} | {n / b:.2f}x |")
        print("\n".join(table))
        if a.write:
            import jax

            text = DOC.read_text()
            text = text.split(f"\n{HEADER}\n")[0].rstrip() + "\n"
            text += "\n".join([
                "", HEADER, "",
                f"Machine: {platform.machine()}, 2 cores, jax {jax.__version__} on cpu; written by "
                f"`python benchmarks/compiled_s1.py --before {a.before} --write` (medians of {a.repeats} fresh "
                "processes per side, before and now alternating, nothing else running).",
                "",
                "With one seed the compiled loop used to be vmapped all the same, so policy delay's `lax.cond` became "
                "a `select`: `td3` and `crossq` computed the actor and target updates on every critic step and threw "
                "them away on the off steps. One seed now runs unbatched, and the branch stays a branch. "
                "gymnax:Pendulum-v1, each preset's networks and update (crossq with 256-256 critics, as the MuJoCo studies "
                "run it), env steps/s after step 2000 of 6000:",
                "", *table, "",
                "Several seeds are still vmapped, and their results did not change by a bit: " + "; ".join(lines) + ".",
                "",
            ])  # fmt: skip
            DOC.write_text(text)
    finally:
        subprocess.run(
            ["git", "-C", str(ROOT), "worktree", "remove", "--force", str(old)], capture_output=True
        )


if __name__ == "__main__":
    main()
