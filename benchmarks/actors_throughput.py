"""Env steps per second with collection in the learner's process and on Ray actors (--actors, pipelined and async),
one configuration after another in one script, on this machine. Run it on an idle machine (no study running):

    MUJOCO_GL=egl .venv/bin/python benchmarks/actors_throughput.py [--write] [--quick]

Each run trains from scratch; its rate is measured from the first episode that ends after a few cycles of learning
to the run's end (so Ray's and jax's start-up and the first compiles are not counted; the final evaluation of 2
episodes is).
``--write`` puts the table into docs/ACTORS.md (between its ``<!-- throughput:begin -->`` markers) and the rows
into docs/data/actors_throughput.json.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from archive import write_block  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "ACTORS.md"
DATA = ROOT / "docs" / "data" / "actors_throughput.json"

FETCH = ["--env", "FetchPush-v4", "--preset", "her8"]
CHEETAH = ["--env", "HalfCheetah-v5", "--preset", "modern", "--learning-starts", "1000"]
CASES = [  # (label, flags, total steps, skip steps before measuring)
    ("FetchPush her8, in-process", FETCH, 8000, 2400),
    ("FetchPush her8, --actors 1 pipelined", [*FETCH, "--actors", "1"], 8000, 2400),
    ("FetchPush her8, --actors 2 pipelined", [*FETCH, "--actors", "2"], 8000, 2400),
    ("FetchPush her8, --actors 1 async", [*FETCH, "--actors", "1", "--collect", "async"], 8000, 2400),
    ("FetchPush her8, --actors 2 async", [*FETCH, "--actors", "2", "--collect", "async"], 8000, 2400),
    ("HalfCheetah modern, in-process", CHEETAH, 5000, 2000),
    ("HalfCheetah modern, --actors 1 pipelined", [*CHEETAH, "--actors", "1"], 5000, 2000),
    ("HalfCheetah modern, --actors 2 async", [*CHEETAH, "--actors", "2", "--collect", "async"], 5000, 2000),
]


def rate(run: Path, skip: int) -> float:
    """Env steps/s from the first episode that ended after ``skip`` steps to the final evaluation (whose wall time
    is the run's end: async actors deliver episodes in chunks, so two episodes can share one wall time)."""
    with open(run / "episodes.csv", newline="") as f:
        s0, w0 = next(
            (int(r["step"]), float(r["wall_s"])) for r in csv.DictReader(f) if int(r["step"]) > skip
        )
    with open(run / "eval.csv", newline="") as f:
        last = list(csv.DictReader(f))[-1]
    return (int(last["step"]) - s0) / max(float(last["wall_s"]) - w0, 1e-9)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--write", action="store_true")
    ap.add_argument(
        "--quick", action="store_true", help="a quarter of the steps: checks the script, not the rates"
    )
    a = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for i, (label, flags, total, skip) in enumerate(CASES):
            if a.quick:
                total, skip = total // 4, skip // 4
            run = Path(tmp) / f"run{i}"
            cmd = [sys.executable, "-m", "ddpgx.cli", "train", *flags, "--total-steps", str(total), "--eval-every",
                   str(total), "--eval-episodes", "2", "--no-progress", "--no-tensorboard", "--no-plot",
                   "--checkpoint-every", str(10 * total), "--run-dir", str(run)]  # fmt: skip
            t0 = time.perf_counter()
            r = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "MUJOCO_GL": "egl"})
            wall = time.perf_counter() - t0
            if r.returncode != 0:
                sys.exit(f"{label} failed: {r.stderr[-2000:]}")
            sps = rate(run, skip)
            rows.append({"case": label, "env_steps_per_s": round(sps, 1), "process_wall_s": round(wall, 1),
                         "total_steps": total})  # fmt: skip
            print(f"{label:45s} {sps:8.1f} env steps/s   (process {wall:.0f} s)", flush=True)
    base = {r["case"].split(",")[0]: r["env_steps_per_s"] for r in rows if r["case"].endswith("in-process")}
    lines = [
        f"Measured {time.strftime('%Y-%m-%d')} on {os.cpu_count()} cores ({platform.processor() or platform.machine()}), "
        "idle; `MUJOCO_GL=egl .venv/bin/python benchmarks/actors_throughput.py --write`.",
        "",
        "| configuration | env steps/s | vs in-process |",
        "|---|---|---|",
    ]
    for r in rows:
        b = base[r["case"].split(",")[0]]
        lines.append(f"| {r['case']} | {r['env_steps_per_s']:.0f} | {r['env_steps_per_s'] / b:.2f}x |")
    table = "\n".join(lines)
    print(table)
    if a.write and not a.quick:
        DATA.parent.mkdir(parents=True, exist_ok=True)
        DATA.write_text(json.dumps({"rows": rows, "cores": os.cpu_count()}, indent=1) + "\n")
        write_block(
            DOC,
            "<!-- throughput:begin -->",
            "<!-- throughput:end -->",
            f"<!-- throughput:begin -->\n{table}\n<!-- throughput:end -->",
        )


if __name__ == "__main__":
    main()
