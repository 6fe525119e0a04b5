"""Env steps/s of ddpgx with --num-envs N against Stable-Baselines3 DDPG with the same n_envs, in one script.

    python benchmarks/vector_speed.py            # N = 1, 2, 4, 8, 16; writes docs/VECTOR.md
    python benchmarks/vector_speed.py --quick    # N = 1, 4, 16, fewer steps; benchmarks/out/VECTOR-quick.md

HalfCheetah-v5, the `modern` settings on both sides (256-256, batch 256, lr 3e-4, tau 0.005, Gaussian 0.1), at 1 and
at 0.25 gradient steps per env step, with the envs stepped in this process (ddpgx --vector sync, SB3 DummyVecEnv)
and in subprocesses (ddpgx --vector async, SB3 SubprocVecEnv). One vector step of N envs is N env steps on both
sides. Timing starts after the warm-up steps and the first compile; run it on an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import csv
import math
import os
import platform
import shutil
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "benchmarks" / "out" / "vector"
ENV = "HalfCheetah-v5"
WARMUP = 1000
MARK = "<!-- hand-written -->"


def schedule(n: int, ratio: float) -> tuple[int, int]:
    """(vector steps per update call, gradient steps per call) for ``ratio`` gradient steps per env step."""
    every = max(1, math.ceil(1 / (ratio * n)))
    return every, round(ratio * n * every)


def ddpgx_sps(n: int, vector: str, ratio: float, steps: int) -> float:
    from ddpgx import preset_config, train

    every, grads = schedule(n, ratio)
    run = OUT / f"ddpgx__n{n}__{vector}__{ratio}"
    shutil.rmtree(run, ignore_errors=True)
    total = WARMUP + steps
    total -= total % n
    log_every = max(steps // 5 // n * n, n)
    cfg = preset_config(
        "modern", ENV, num_envs=n, vector=vector, update_every=every * n, gradient_steps=grads, total_steps=total,
        learning_starts=WARMUP, eval_every=10**9, eval_episodes=1, log_every=log_every, checkpoint_every=10**9,
        progress=False, tensorboard=False, plot=False, run_dir=str(run),
    )  # fmt: skip
    train(cfg)
    rows = [r for r in csv.DictReader(open(run / "train.csv")) if int(r["step"]) > WARMUP + log_every]
    return len(rows) * log_every / sum(log_every / float(r["sps"]) for r in rows)


def sb3_sps(n: int, vector: str, ratio: float, steps: int) -> float:
    import numpy as np
    from stable_baselines3 import DDPG
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.noise import NormalActionNoise
    from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv

    every, grads = schedule(n, ratio)
    venv = make_vec_env(ENV, n_envs=n, vec_env_cls=SubprocVecEnv if vector == "async" else DummyVecEnv)
    a = venv.action_space.shape[0]
    model = DDPG(
        "MlpPolicy", venv, learning_rate=3e-4, buffer_size=1_000_000, learning_starts=WARMUP, batch_size=256,
        tau=0.005, gamma=0.99, train_freq=every, gradient_steps=grads, device="cpu",
        action_noise=NormalActionNoise(np.zeros(a), 0.1 * np.ones(a)),
        policy_kwargs={"net_arch": {"pi": [256, 256], "qf": [256, 256]}},
    )  # fmt: skip
    skip = max(steps // 10, 2 * n * every)

    class Clock(BaseCallback):
        t0 = None

        def _on_step(self) -> bool:
            if self.t0 is None and self.num_timesteps >= WARMUP + skip:
                self.t0, self.s0 = time.perf_counter(), self.num_timesteps
            return True

    clock = Clock()
    model.learn(total_timesteps=WARMUP + steps, callback=clock)
    sps = (model.num_timesteps - clock.s0) / (time.perf_counter() - clock.t0)
    venv.close()
    return sps


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    a = ap.parse_args()
    import torch

    torch.set_num_threads(os.cpu_count() or 1)
    ns = (1, 4, 16) if a.quick else (1, 2, 4, 8, 16)
    steps = 2000 if a.quick else 4000
    OUT.mkdir(parents=True, exist_ok=True)
    rows = []
    for ratio in (1.0, 0.25):
        for vector in ("sync", "async"):
            for n in ns:
                d = ddpgx_sps(n, vector, ratio, steps)
                s = sb3_sps(n, vector, ratio, steps)
                rows.append((ratio, vector, n, d, s))
                print(
                    f"ratio {ratio} {vector} N={n}: ddpgx {d:.0f} steps/s, SB3 {s:.0f}, {d / s:.2f}x",
                    flush=True,
                )
    import jax

    lines = [
        "# Many envs per learner: env steps/s, ddpgx --num-envs N against SB3 n_envs N",
        "",
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, jax {jax.__version__} on {jax.default_backend()}. "
        f"{ENV}, `modern` settings on both sides; {steps} env steps timed after {WARMUP} warm-up steps and the "
        "first compile. Reproduce: `python benchmarks/vector_speed.py`.",
        "",
        "| gradient steps per env step | envs step | N | ddpgx steps/s | SB3 steps/s | ratio |",
        "|---|---|---|---|---|---|",
    ]
    for ratio, vector, n, d, s in rows:
        kind = (
            "in this process (sync / DummyVecEnv)"
            if vector == "sync"
            else "in subprocesses (async / SubprocVecEnv)"
        )
        lines.append(f"| {ratio} | {kind} | {n} | {d:.0f} | {s:.0f} | **{d / s:.2f}x** |")
    target = ROOT / "benchmarks" / "out" / "VECTOR-quick.md" if a.quick else ROOT / "docs" / "VECTOR.md"
    keep = ""  # the hand-written reading of the numbers below the marker survives a rerun
    if target.exists() and MARK in target.read_text():
        keep = "\n" + target.read_text()[target.read_text().index(MARK) :]
    target.write_text("\n".join(lines) + "\n" + keep)
    print(f"wrote {target}")


if __name__ == "__main__":
    main()
