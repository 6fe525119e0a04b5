"""Quickstart: DDPG on Pendulum-v1 through the Python API (``ddpgx.DDPG``).

Train, act, save, load, evaluate. From the repository's root:

    python examples/quickstart.py                     # up to 20k env steps; stops at an eval >= -200 (4k)
    python examples/quickstart.py --steps 2000 --out /tmp/quickstart

Everything lands in ``--out``: the run directory ``run/`` (config.json, eval.csv, train.csv, episodes.csv,
checkpoints/, final.msgpack, best.msgpack, returns.png, tb/) and the one-file policy ``pendulum.msgpack``.
"""

from __future__ import annotations

import argparse
import csv
import shutil
from pathlib import Path

import gymnasium as gym
import numpy as np

from ddpgx import DDPG, StopOnReward


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20_000, help="env steps to train for")
    parser.add_argument("--out", type=Path, default=Path("runs/examples/quickstart"), help="output folder")
    args = parser.parse_args(argv)

    run_dir = args.out / "run"
    if run_dir.exists():  # a second `learn` on the same run directory would continue that run; start afresh
        shutil.rmtree(run_dir)

    # 1. The model: an env id and a preset (`ddpgx presets pendulum` prints every value and its source). Any
    #    Config field may be overridden by keyword; the preset evaluates every 2000 steps, so a short run
    #    evaluates more often to show a curve.
    model = DDPG(
        "Pendulum-v1",
        preset="pendulum",
        run_dir=run_dir,
        seed=0,
        eval_every=min(2_000, max(args.steps // 2, 1)),
    )

    # 2. Learn. StopOnReward ends the run early at the first noise-free evaluation with a mean return >= -200:
    #    the run checkpoints and `learn` returns. A run stopped so is paused, not finished: a later `learn(n)`
    #    continues it, and `predict` and `save` use its latest checkpoint's policy.
    stop = StopOnReward(-200)
    model.learn(args.steps, callback=stop)
    if stop.stopped_at is not None:
        print(f"stopped early at step {stop.stopped_at}: an evaluation reached -200")

    # 3. Act: predict takes one observation (or a batch) as the env returns it and gives an action in the env's
    #    own bounds ([-2, 2] torque for Pendulum), as SB3's predict does: (action, state).
    env = gym.make("Pendulum-v1")
    obs, _ = env.reset(seed=123)
    total = 0.0
    for _ in range(200):
        action, _ = model.predict(obs, deterministic=True)
        obs, reward, terminated, truncated, _ = env.step(action)
        total += float(reward)
        if terminated or truncated:
            break
    print(f"one episode with the learned policy (seed 123): return {total:.1f}")

    # 4. Save the policy as one file, and load it back (load_policy reads the same file).
    path = model.save(args.out / "pendulum.msgpack")
    loaded = DDPG.load(path)
    action, _ = loaded.predict(obs)
    print(f"saved {path}; the loaded policy acts: {np.round(action, 3)} (bounds {env.action_space.low}, "
          f"{env.action_space.high})")  # fmt: skip

    # 5. The evaluations the run made (noise-free, on separate envs): eval.csv in the run directory.
    with open(run_dir / "eval.csv") as f:
        rows = list(csv.DictReader(f))
    last = rows[-1]
    print(
        f"final evaluation at step {last['step']}: mean return {float(last['mean_return']):.1f} "
        f"+- {float(last['std_return']):.1f} over {model.config.eval_episodes} episodes "
        f"(best {max(float(r['mean_return']) for r in rows):.1f}); run directory {run_dir}"
    )


if __name__ == "__main__":
    main()
