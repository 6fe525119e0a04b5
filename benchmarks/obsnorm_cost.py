"""What `--obs-norm` costs per env step: the same `modern` Hopper-v5 run with the switch off and on, alternated.

    python benchmarks/obsnorm_cost.py [--reps 3] [--steps 6000]

With `--obs-norm`, every observation goes into a float64 running mean/variance on the host, every 100 env steps
(and before each evaluation) the loop writes the float32 mean/std into the four networks' `obs_stats` collections,
and every forward pass normalizes its input. This measures the env steps/s once learning has started (the log windows after
the first one past `learning_starts`, so the compile is excluded) in one process per run, off and on alternating,
and prints the median of each and their ratio (which of the pair goes first alternates). Run it on an otherwise idle
machine, or pinned to a free core (`taskset -c 1 python benchmarks/obsnorm_cost.py`).
"""

from __future__ import annotations

import argparse
import csv
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

CHILD = """
import sys
from ddpgx.presets import preset_config
from ddpgx.train import train
cfg = preset_config("modern", "Hopper-v5", seed=0, total_steps=int(sys.argv[1]), learning_starts=1000,
                    log_every=500, eval_every=10**9, eval_episodes=1, checkpoint_every=10**9, progress=False,
                    obs_norm=sys.argv[2] == "on", run_dir=sys.argv[3])
train(cfg)
"""


def sps(run_dir: Path) -> float:
    with open(run_dir / "train.csv", newline="") as f:
        rows = [r for r in csv.DictReader(f) if int(r["step"]) > 2000]  # the first window after 1000 compiles
    return statistics.median(float(r["sps"]) for r in rows)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--steps", type=int, default=6000)
    a = ap.parse_args()
    got: dict[str, list[float]] = {"off": [], "on": []}
    with tempfile.TemporaryDirectory() as tmp:
        for rep in range(a.reps):
            for mode in ("off", "on") if rep % 2 == 0 else ("on", "off"):  # alternate which goes first
                run = Path(tmp) / f"{mode}{rep}"
                subprocess.run([sys.executable, "-c", CHILD, str(a.steps), mode, str(run)], check=True)
                got[mode].append(sps(run))
                print(f"rep {rep} obs_norm {mode}: {got[mode][-1]:.1f} steps/s", flush=True)
    off, on = statistics.median(got["off"]), statistics.median(got["on"])
    print(f"median steps/s: off {off:.1f}, on {on:.1f}; on/off = {on / off:.3f}")


if __name__ == "__main__":
    main()
