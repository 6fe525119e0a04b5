"""Learning benchmark: trains the presets, then writes docs/RESULTS.md with plots and GIFs.

    python benchmarks/learning.py                   # everything (hours on 2 cores)
    python benchmarks/learning.py --suite pendulum  # Pendulum-v1: paper, modern, pendulum x 5 seeds x 20k steps
    python benchmarks/learning.py --suite mujoco --mujoco-steps 200000
    python benchmarks/learning.py --report          # only rebuild docs/ from the runs already there

Runs go to benchmarks/out/<env>__<preset>__s<seed>; a finished run (final.msgpack present) is not run again.
"""

from __future__ import annotations

import argparse
import csv
import json
import shutil
import statistics
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "benchmarks" / "out"
DOCS = ROOT / "docs"

PENDULUM = [("Pendulum-v1", p, s, 20_000) for p in ("paper", "modern", "pendulum") for s in range(5)]


def mujoco_runs(steps: int, presets: list[str]) -> list[tuple[str, str, int, int]]:
    return [(env, p, 0, steps) for p in presets for env in ("HalfCheetah-v5", "Hopper-v5")]


def run_one(env: str, preset: str, seed: int, steps: int) -> Path:
    from ddpgx import preset_config, train

    d = OUT / f"{env}__{preset}__s{seed}"
    if (d / "final.msgpack").exists():
        return d
    if d.exists():
        shutil.rmtree(d)
    mujoco = not env.startswith("Pendulum")
    cfg = preset_config(
        preset,
        env,
        seed=seed,
        total_steps=steps,
        run_dir=str(d),
        eval_every=10_000 if mujoco else 1_000,
        eval_episodes=10,
        progress=False,
        tensorboard=False,
    )
    t = time.perf_counter()
    res = train(cfg)
    print(
        f"{env} {preset} seed {seed}: final eval {res.final_eval_mean:.1f} +- {res.final_eval_std:.1f} "
        f"in {time.perf_counter() - t:.0f} s",
        flush=True,
    )
    return d


def summary(run: Path) -> dict:
    cfg = json.loads((run / "config.json").read_text())["config"]
    evals = list(csv.DictReader(open(run / "eval.csv")))
    episodes = list(csv.DictReader(open(run / "episodes.csv")))
    last = evals[-1]
    return {
        "env": cfg["env"],
        "preset": cfg["preset"],
        "seed": cfg["seed"],
        "steps": int(last["step"]),
        "final": float(last["mean_return"]),
        "best": max(float(r["mean_return"]) for r in evals),
        "wall": float(episodes[-1]["wall_s"]) if episodes else float("nan"),
        "last10": statistics.fmean(float(r["return"]) for r in episodes[-10:]),
    }


PUBLISHED = {
    "Pendulum-v1": "SB3 rl-zoo DDPG: -152 +- 94 after 20k steps (noise-free eval of one agent)",
    "HalfCheetah-v5": 'TD3 paper Table 1 "OurDDPG": 8577 (best eval, 1M steps, 10 seeds, gym v1); '
    "CleanRL DDPG: 10374 +- 157 (v4, 1M, last-100 train episodes)",
    "Hopper-v5": 'TD3 paper Table 1 "OurDDPG": 1860 (best eval, 1M steps, 10 seeds); CleanRL DDPG: 1577 +- 819 (v4)',
}


def report() -> None:
    from ddpgx.plots import plot_runs

    runs = sorted(p for p in OUT.glob("*__*__s*") if (p / "final.msgpack").exists())
    if not runs:
        print("no finished runs under", OUT)
        return
    rows = [summary(r) for r in runs]
    groups: dict[tuple[str, str, int], list[dict]] = {}
    for r in rows:
        groups.setdefault((r["env"], r["preset"], r["steps"]), []).append(r)
    DOCS.mkdir(exist_ok=True)
    lines = [
        "# ddpgx learning results",
        "",
        "Produced by `python benchmarks/learning.py` on the project's 2-core CPU machine (no GPU). "
        "Final = noise-free evaluation (10 episodes) at the last step; best = best such evaluation during the run; "
        "wall = training wall-clock seconds, compile and evaluations included. Mean +- std across seeds.",
        "",
        "| env | preset | seeds | steps | final eval | best eval | last 10 train episodes | wall s / run |",
        "|---|---|---|---|---|---|---|---|",
    ]

    def ms(xs: list[float]) -> str:
        return f"{statistics.fmean(xs):.0f} +- {statistics.pstdev(xs):.0f}" if len(xs) > 1 else f"{xs[0]:.0f}"

    for (env, preset, steps), rs in sorted(groups.items()):
        lines.append(
            f"| {env} | {preset} | {len(rs)} | {steps:,} | {ms([r['final'] for r in rs])} | "
            f"{ms([r['best'] for r in rs])} | {ms([r['last10'] for r in rs])} | "
            f"{statistics.fmean(r['wall'] for r in rs):.0f} |"
        )
    lines += ["", "## Published figures for comparison", ""]
    for env, text in PUBLISHED.items():
        lines.append(f"- **{env}**: {text}")
    lines += [
        "",
        "Return definitions differ: the TD3 paper reports the best noise-free evaluation over 1M steps, CleanRL the "
        "mean of the last 100 training episodes, SB3 zoo a noise-free evaluation. Our MuJoCo runs are far shorter "
        "than 1M steps (except HalfCheetah modern: the 200k run continued to 1M with `ddpgx train --resume "
        "benchmarks/out/HalfCheetah-v5__modern__s0 --total-steps 1000000`, paused for a while during speed "
        "benchmarks, so its wall time counts the pauses), so they are a floor, not a like-for-like comparison.",
        "",
    ]
    for env in sorted({r["env"] for r in rows}):
        env_runs = [r for r in runs if r.name.startswith(env + "__")]
        png = DOCS / f"{env.split('-')[0].lower()}_returns.png"
        plot_runs(env_runs, png, metric="eval", size=(7, 4))
        lines += [f"## {env}", "", f"![{env} eval return]({png.name})", ""]
        gif = DOCS / f"{env.split('-')[0].lower()}.gif"
        if gif.exists():
            lines += [f"![{env} policy]({gif.name})", ""]
    (DOCS / "RESULTS.md").write_text("\n".join(lines))
    print("\n".join(lines))


def record_gifs() -> None:
    from ddpgx.record import record

    for env, preset, size, every, steps in (
        ("Pendulum-v1", "pendulum", (200, 200), 2, 200),
        ("HalfCheetah-v5", "modern", (160, 160), 3, 240),
        ("Hopper-v5", "modern", (128, 128), 5, 400),
    ):
        run = OUT / f"{env}__{preset}__s0"
        if (run / "final.msgpack").exists():
            gif = DOCS / f"{env.split('-')[0].lower()}.gif"
            res = record(run, gif, max_steps=steps, every=every, size=size, fps=20)
            print(
                f"{gif}: {res.frames} frames, return {res.returns[0]:.1f}, {gif.stat().st_size // 1024} KiB"
            )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--suite", choices=["all", "pendulum", "mujoco"], default="all")
    ap.add_argument("--mujoco-steps", type=int, default=200_000)
    ap.add_argument("--mujoco-presets", nargs="+", default=["modern"])
    ap.add_argument("--report", action="store_true", help="only rebuild docs/ from finished runs")
    args = ap.parse_args()
    if not args.report:
        todo = []
        if args.suite in ("all", "pendulum"):
            todo += PENDULUM
        if args.suite in ("all", "mujoco"):
            todo += mujoco_runs(args.mujoco_steps, args.mujoco_presets)
        for env, preset, seed, steps in todo:
            run_one(env, preset, seed, steps)
    record_gifs()
    report()


if __name__ == "__main__":
    main()
