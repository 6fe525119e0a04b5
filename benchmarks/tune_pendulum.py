"""docs/TUNING.md: a `ddpgx tune` study on Pendulum-v1, then its best config against the `pendulum` preset on 10
fresh seeds.

    python benchmarks/tune_pendulum.py     # the study resumes where it stopped; then the comparison sweep

Study: >= 40 trials of 5k env steps, 2 at a time (one core each), the default (rl-zoo TD3/DDPG) space, TPE
sampler, median pruner, seed 0, 5 evaluation episodes every 500 steps. Comparison: seeds 100-109 (not used in
tuning), 5k env steps, the tuned config and the preset each, `ddpgx report` CIs.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "benchmarks" / "out" / "tune" / "pendulum"
CMP = ROOT / "benchmarks" / "out" / "tune" / "pendulum-vs-preset"
TRIALS = 40


def ddpgx(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "ddpgx.cli", *args], check=True)


def main() -> None:
    ddpgx("tune", "--env", "Pendulum-v1", "--preset", "pendulum", "--trials", str(TRIALS), "--total-steps", "5000",
          "--eval-every", "500", "--set", "eval_episodes=5", "--max-parallel", "2", "--out", str(OUT))  # fmt: skip
    ddpgx("tune", str(OUT), "--best")
    best = (OUT / "best.toml").read_text()
    # the comparison: the tuned variant beside the preset as it is, on fresh seeds
    body = best.split("[[variant]]", 1)[1]
    toml = (
        f'env = "Pendulum-v1"\npreset = "pendulum"\nseeds = "100-109"\ntotal_steps = 5000\nout = "{CMP}"\n'
        'max_parallel = 2\n\n[[variant]]\nname = "pendulum-preset"\neval_every = 500\neval_episodes = 5\n\n'
        f"[[variant]]{body}"
    )
    (OUT / "compare.toml").write_text(toml)
    ddpgx("sweep", str(OUT / "compare.toml"), "--no-live")
    ddpgx("report", str(CMP), "--out", str(ROOT / "docs" / "tuning_report.md"))
    print("wrote docs/tuning_report.md; docs/TUNING.md is written by hand from it")


if __name__ == "__main__":
    main()
