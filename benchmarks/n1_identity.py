"""One env is the loop as it was: train the same short runs with the code of an earlier commit and with this
checkout's, and compare final.msgpack byte for byte and the CSV logs (wall times and speeds left out).

    python benchmarks/n1_identity.py [--before 5808e2d]
    python benchmarks/n1_identity.py --speed    # env steps/s at N = 1, before and now, alternating (HalfCheetah-v5)

``--before`` defaults to the last commit before ``--num-envs`` split the loop (5808e2d). The earlier code runs from a
``git worktree`` in a temporary directory; nothing is installed.
"""

from __future__ import annotations

import argparse
import csv
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TESTS = ROOT / "tests"
CASES = {
    "pendulum": ["--env", "Pendulum-v1", "--total-steps", "3000", "--eval-every", "1000"],
    "modern": ["--env", "Pendulum-v1", "--preset", "modern", "--total-steps", "2500", "--learning-starts", "500",
               "--eval-every", "1000"],
    "paper (batch norm, OU)": ["--env", "Pendulum-v1", "--preset", "paper", "--total-steps", "1200",
                               "--eval-every", "600"],
    "td3 + n-step 3 + obs-norm": ["--env", "Pendulum-v1", "--preset", "td3", "--n-step", "3", "--obs-norm",
                                  "--total-steps", "2500", "--learning-starts", "500", "--update-every", "2",
                                  "--eval-every", "1000"],
    "parameter noise": ["--env", "Pendulum-v1", "--noise", "param", "--total-steps", "1500",
                        "--learning-starts", "500", "--eval-every", "1000"],
    "her (goal env)": ["--env", "goal_envs:PointGoal-v0", "--preset", "her", "--actor-hidden", "32", "32",
                       "--critic-hidden", "32", "32", "--total-steps", "2000", "--eval-every", "1000",
                       "--eval-episodes", "3"],
}  # fmt: skip
DROP = {"wall_s", "sps", "update_frac"}


def table(path: Path) -> list[dict]:
    return [{k: v for k, v in r.items() if k not in DROP} for r in csv.DictReader(open(path))]


def train(src: Path, args: list[str], run: Path) -> None:
    env = {
        **os.environ,
        "PYTHONPATH": f"{src}{os.pathsep}{TESTS}",
        "MUJOCO_GL": os.environ.get("MUJOCO_GL", "egl"),
    }
    cmd = [sys.executable, "-m", "ddpgx.cli", "train", *args, "--log-every", "500", "--run-dir", str(run),
           "--no-progress", "--no-tensorboard", "--no-plot"]  # fmt: skip
    r = subprocess.run(cmd, env=env, cwd=TESTS, capture_output=True, text=True)
    if r.returncode:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{r.stderr[-2000:]}")


def sps(run: Path, after: int) -> float:
    rows = [r for r in csv.DictReader(open(run / "train.csv")) if int(r["step"]) > after]
    return len(rows) / sum(1 / float(r["sps"]) for r in rows)


def speed(old: Path, tmp: str, rounds: int = 6) -> None:
    args = ["--env", "HalfCheetah-v5", "--preset", "modern", "--total-steps", "5000", "--learning-starts", "1000",
            "--eval-every", "100000", "--eval-episodes", "1"]  # fmt: skip
    got: dict[str, list[float]] = {"before": [], "now": []}
    for i in range(rounds):  # alternate which side goes first: the machine's speed drifts
        order = ("before", "now") if i % 2 == 0 else ("now", "before")
        for side in order:
            run = Path(tmp) / f"speed-{side}-{i}"
            train(old / "src" if side == "before" else ROOT / "src", args, run)
            got[side].append(sps(run, 1500))
    import statistics

    b, n = statistics.median(got["before"]), statistics.median(got["now"])
    print(f"HalfCheetah-v5 modern, N = 1, env steps/s after learning starts (median of {rounds}): before {b:.0f} "
          f"{[round(x) for x in got['before']]}, now {n:.0f} {[round(x) for x in got['now']]}: now/before {n / b:.3f}")  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--before", default="5808e2d")
    ap.add_argument("--speed", action="store_true")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        old = Path(tmp) / "old"
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(old), a.before], check=True,
                       capture_output=True)  # fmt: skip
        if a.speed:
            try:
                speed(old, tmp)
            finally:
                subprocess.run(
                    ["git", "-C", str(ROOT), "worktree", "remove", "--force", str(old)], capture_output=True
                )
            return
        try:
            ok = True
            for name, args in CASES.items():
                runs = {side: Path(tmp) / f"{side}-{len(name)}" for side in ("before", "now")}
                train(old / "src", args, runs["before"])
                train(ROOT / "src", args, runs["now"])
                same = (runs["before"] / "final.msgpack").read_bytes() == (
                    runs["now"] / "final.msgpack"
                ).read_bytes()
                logs = all(table(runs["before"] / f) == table(runs["now"] / f)
                           for f in ("episodes.csv", "eval.csv"))  # fmt: skip
                ok &= same and logs
                print(f"{name}: final.msgpack {'identical' if same else 'DIFFERS'}, "
                      f"episodes.csv and eval.csv {'identical' if logs else 'DIFFER'}")  # fmt: skip
        finally:
            subprocess.run(
                ["git", "-C", str(ROOT), "worktree", "remove", "--force", str(old)], capture_output=True
            )
    print("N = 1 is bitwise the earlier code" if ok else "N = 1 differs from the earlier code")
    raise SystemExit(0 if ok else 1)


if __name__ == "__main__":
    main()
