"""DDPG + HER on FetchReach-v4: ddpgx against Stable-Baselines3 (DDPG + HerReplayBuffer), same hyperparameters.

    python benchmarks/her_sb3.py [--seeds 0 1 2] [--max-steps 10000]    (needs the bench and robotics extras)

Both sides: 3x256 networks, Adam 1e-3, gamma 0.98, tau 0.05, batch 256, a replay of 1e6, k = 4 `future` goals,
Gaussian action noise 0.2, training every 2 episodes (100 env steps) with 40 gradient steps, first update after
100 steps. Every 500 env steps both evaluate 20 noise-free episodes on an env of their own; a side stops at the
first evaluation with a success rate >= 0.9. Reported: those env steps, and wall seconds from the start of
training (evaluations included on both sides). SB3 cannot express three of HER's choices that the `her` preset
makes (30% uniform random actions, the action L2 penalty, the target clip) nor observation normalization in its
replay; the row `ddpgx, SB3's settings` turns them off in ddpgx too, so that it is the same algorithm on both sides.
Each seed runs the three variants back to back, so machine load affects them alike.
"""

from __future__ import annotations

import argparse
import csv
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "out" / "her_sb3"
DOCS = ROOT / "docs"
ENV = "FetchReach-v4"
TARGET = 0.9
EVAL_EVERY, EVAL_EPISODES = 500, 20


def run_ddpgx(seed: int, max_steps: int, sb3_settings: bool) -> tuple[int | None, float]:
    import shutil

    from ddpgx import preset_config, train
    from ddpgx.train import Interrupted

    run = OUT / f"ddpgx{'_sb3set' if sb3_settings else ''}_s{seed}"
    shutil.rmtree(run, ignore_errors=True)
    over = dict(random_eps=0.0, action_l2=0.0, target_clip=(), obs_norm=False) if sb3_settings else {}
    cfg = preset_config(
        "her", ENV, seed=seed, total_steps=max_steps, eval_every=EVAL_EVERY, eval_episodes=EVAL_EPISODES,
        run_dir=str(run), progress=False, plot=False, tensorboard=False, **over,
    )  # fmt: skip

    def solved() -> bool:
        rows = list(csv.DictReader(open(run / "eval.csv"))) if (run / "eval.csv").exists() else []
        return bool(rows) and float(rows[-1]["success"]) >= TARGET

    try:
        train(cfg, stop=solved)
    except Interrupted:
        pass
    rows = list(csv.DictReader(open(run / "eval.csv")))
    hit = next((r for r in rows if float(r["success"]) >= TARGET), None)
    return (int(hit["step"]), float(hit["wall_s"])) if hit else (None, float(rows[-1]["wall_s"]))


def run_sb3(seed: int, max_steps: int) -> tuple[int | None, float]:
    import gymnasium as gym
    import gymnasium_robotics
    import torch
    from stable_baselines3 import DDPG, HerReplayBuffer
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.noise import NormalActionNoise

    gym.register_envs(gymnasium_robotics)
    torch.manual_seed(seed)
    env = gym.make(ENV)
    eval_envs = [gym.make(ENV) for _ in range(EVAL_EPISODES)]

    class Eval(BaseCallback):
        def __init__(self) -> None:
            super().__init__()
            self.t0 = time.perf_counter()
            self.hit: tuple[int, float] | None = None
            self.first = True

        def _on_step(self) -> bool:
            if self.num_timesteps % EVAL_EVERY:
                return True
            successes = []
            for i, e in enumerate(eval_envs):
                obs, _ = e.reset(seed=seed + 1_000_003 + i if self.first else None)
                done = False
                while not done:
                    a, _ = self.model.predict(obs, deterministic=True)
                    obs, _, term, trunc, info = e.step(a)
                    done = term or trunc
                successes.append(float(info["is_success"]))
            self.first = False
            if np.mean(successes) >= TARGET:
                self.hit = (self.num_timesteps, time.perf_counter() - self.t0)
                return False
            return True

    model = DDPG(
        "MultiInputPolicy", env, learning_rate=1e-3, buffer_size=1_000_000, learning_starts=100, batch_size=256,
        tau=0.05, gamma=0.98, train_freq=(2, "episode"), gradient_steps=40,
        action_noise=NormalActionNoise(np.zeros(4), 0.2 * np.ones(4)),
        replay_buffer_class=HerReplayBuffer,
        replay_buffer_kwargs=dict(n_sampled_goal=4, goal_selection_strategy="future"),
        policy_kwargs=dict(net_arch=[256, 256, 256]), seed=seed, verbose=0,
    )  # fmt: skip
    cb = Eval()
    t0 = time.perf_counter()
    model.learn(max_steps, callback=cb)
    return cb.hit if cb.hit else (None, time.perf_counter() - t0)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--max-steps", type=int, default=10_000)
    a = p.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    import torch

    rows = []
    for seed in a.seeds:
        for name, fn in (
            ("ddpgx, `her` preset", lambda s: run_ddpgx(s, a.max_steps, False)),
            ("ddpgx, SB3's settings", lambda s: run_ddpgx(s, a.max_steps, True)),
            ("SB3 DDPG + HerReplayBuffer", lambda s: run_sb3(s, a.max_steps)),
        ):
            steps, wall = fn(seed)
            rows.append((name, seed, steps, wall))
            print(name, seed, steps, f"{wall:.1f}", flush=True)
    with open(OUT / "results.csv", "w", newline="") as f:
        csv.writer(f).writerows([("side", "seed", "steps_to_0.9", "wall_s"), *rows])
    lines = [
        f"| side | seeds reaching {TARGET} within {a.max_steps} steps | env steps to {TARGET} (per seed) | "
        "wall s to it (per seed) | median wall s |",
        "|---|---|---|---|---|",
    ]
    for name in dict.fromkeys(r[0] for r in rows):
        mine = [r for r in rows if r[0] == name]
        ok = [r for r in mine if r[2] is not None]
        steps = ", ".join("-" if r[2] is None else str(r[2]) for r in mine)
        walls = ", ".join("-" if r[2] is None else f"{r[3]:.0f}" for r in mine)
        med = f"{np.median([r[3] for r in ok]):.0f}" if ok else "-"
        lines.append(f"| {name} | {len(ok)}/{len(mine)} | {steps} | {walls} | {med} |")
    table = "\n".join(lines)
    (OUT / "table.md").write_text(
        table + f"\n\ntorch {torch.__version__}, {torch.get_num_threads()} threads\n"
    )
    print(table)


if __name__ == "__main__":
    main()
