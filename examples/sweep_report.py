"""A sweep and its report: two seeds of Pendulum-v1 as Ray tasks, then a table and a plot across the seeds.

Writes a sweep file (TOML, the form that can live in git), runs it with ``ddpgx sweep`` on an embedded local Ray
(one worker per core, stopped at the end; ``--address HOST:PORT`` would join a cluster instead), then
``ddpgx report``: the final eval return's mean with a 95% bootstrap CI, the IQM, and the curves with a CI band.
Needs the cluster extra (``pip install 'ddpgx[cluster]'``). From the repository's root:

    python examples/sweep_report.py                   # 2 seeds x 20k env steps
    python examples/sweep_report.py --steps 2000 --out /tmp/sweep_report

Every run is an ordinary run directory under ``--out`` (``ddpgx eval``, ``plot``, ``record`` and
``train --resume`` read it), and running the script again on the same ``--out`` skips the finished runs.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

SWEEP = """\
# 2 seeds of the pendulum preset on Pendulum-v1: ddpgx sweep {file} --out {out}
env = ["Pendulum-v1"]
preset = ["pendulum"]
seeds = [0, 1]
total_steps = {steps}

[set]                  # every Config field; each list is one axis of the grid (one value: no extra axis)
eval_every = [{eval_every}]
"""


def ddpgx(*args: str) -> None:
    """Run the ddpgx command line with this Python (the same virtualenv), failing loudly on a non-zero exit."""
    cmd = [sys.executable, "-m", "ddpgx.cli", *args]
    print("$ ddpgx " + " ".join(args), flush=True)
    subprocess.run(cmd, check=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20_000, help="env steps of each run")
    parser.add_argument("--out", type=Path, default=Path("runs/examples/sweep_report"), help="output folder")
    args = parser.parse_args(argv)

    # 1. The sweep file. A sweep may grow (more seeds, envs, presets) on the same --out, but a different spec
    #    there is refused; a new --steps therefore starts a new sweep folder.
    args.out.mkdir(parents=True, exist_ok=True)
    sweep_file = args.out / "pendulum.toml"
    runs = args.out / "runs"
    text = SWEEP.format(
        file=sweep_file, out=runs, steps=args.steps, eval_every=min(2_000, max(args.steps // 2, 1))
    )
    if runs.exists() and (not sweep_file.exists() or sweep_file.read_text() != text):
        shutil.rmtree(runs)
    sweep_file.write_text(text)

    # 2. Run it: each seed is one Ray task, pinned to its own core; --no-live prints a line per event instead of
    #    the live table (for logs and tests). Ctrl-C checkpoints the runs, and the same command continues them.
    ddpgx("sweep", str(sweep_file), "--out", str(runs), "--no-live")

    # 3. The report across seeds (the sweep also wrote one at its end, as runs/report.md).
    report = args.out / "report.md"
    ddpgx("report", str(runs), "--out", str(report))
    print(report.read_text())
    print(f"report: {report}, {report.with_suffix('.csv')} and {report.with_suffix('.png')}")
    print(f"runs: {', '.join(sorted(p.name for p in runs.iterdir() if p.is_dir()))} in {runs}")


if __name__ == "__main__":
    main()
