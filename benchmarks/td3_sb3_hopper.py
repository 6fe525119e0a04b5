"""A peer's TD3 beside ddpgx's `td3` on Hopper-v5: Stable-Baselines3's TD3 with exactly `td3`'s settings, so a gap
between ddpgx's `td3` and TD3's published Hopper curve can be put down to settings and seeds, or to a fault.

    python benchmarks/td3_sb3_hopper.py [--seeds 0 1 2] [--steps 200000]     (needs the bench extra: SB3 + torch)

Settings on both sides (read from ddpgx's `td3` preset, not copied): 256-256 actor and critics, Adam 3e-4, batch 256,
tau 0.005, gamma 0.99, a replay of 1e6, 10,000 uniform random steps first, Gaussian exploration 0.1, target policy
smoothing 0.2 clipped at 0.5, policy delay 2, one gradient step per env step. Every 5,000 env steps SB3's policy is
evaluated on 10 noise-free episodes of its own env (seeded seed + 100, as ddpgx seeds its eval env apart), written to
benchmarks/out/td3_sb3/s<seed>/eval.csv (step,mean_return). The script then prints, per seed, SB3's and ddpgx's
final eval, mean of the last 5 evaluations and best eval, reading ddpgx's from the stability study's runs
(benchmarks/out/stability/Hopper-v5__td3__s<seed>/eval.csv, from `ddpgx sweep benchmarks/sweeps/stability.toml`).
A seed whose eval.csv already reaches --steps is not run again.
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "out" / "td3_sb3"
DDPGX_RUNS = ROOT / "benchmarks" / "out" / "stability"
ENV = "Hopper-v5"
EVAL_EVERY, EVAL_EPISODES = 5_000, 10


def run_sb3(seed: int, steps: int) -> Path:
    import gymnasium as gym
    import torch
    from stable_baselines3 import TD3
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.noise import NormalActionNoise

    from ddpgx import preset_config

    cfg = preset_config("td3", ENV)
    assert cfg.actor_hidden == cfg.critic_hidden and cfg.actor_lr == cfg.critic_lr
    torch.set_num_threads(1)  # one core per run, as the ddpgx runs of the study had
    out = OUT / f"s{seed}"
    out.mkdir(parents=True, exist_ok=True)
    env = gym.make(ENV)
    act_dim = env.action_space.shape[0]
    model = TD3(
        "MlpPolicy", env, learning_rate=cfg.actor_lr, buffer_size=cfg.buffer_size, learning_starts=cfg.learning_starts,
        batch_size=cfg.batch_size, tau=cfg.tau, gamma=cfg.gamma, train_freq=1, gradient_steps=1,
        action_noise=NormalActionNoise(np.zeros(act_dim), cfg.noise_sigma * np.ones(act_dim)),
        policy_delay=cfg.policy_delay, target_policy_noise=cfg.target_noise, target_noise_clip=cfg.target_noise_clip,
        policy_kwargs=dict(net_arch=list(cfg.actor_hidden)), seed=seed, device="cpu", verbose=0,
    )  # fmt: skip
    eval_env = gym.make(ENV)
    rows: list[tuple[int, float]] = []

    class Evaluate(BaseCallback):
        def _on_step(self) -> bool:
            if self.num_timesteps % EVAL_EVERY == 0:
                returns = []
                for ep in range(EVAL_EPISODES):
                    obs, _ = eval_env.reset(seed=seed + 100 + 1000 * len(rows) + ep)
                    done, total = False, 0.0
                    while not done:
                        a, _ = model.predict(obs, deterministic=True)
                        obs, r, term, trunc, _ = eval_env.step(a)
                        total, done = total + float(r), term or trunc
                    returns.append(total)
                rows.append((self.num_timesteps, float(np.mean(returns))))
                with open(out / "eval.csv", "w") as f:
                    f.write("step,mean_return\n" + "".join(f"{s},{m:.2f}\n" for s, m in rows))
                print(f"sb3 td3 s{seed} step {self.num_timesteps}: {rows[-1][1]:.0f}", flush=True)
            return True

    model.learn(steps, callback=Evaluate())
    return out / "eval.csv"


def read(path: Path) -> list[tuple[int, float]]:
    if not path.is_file():
        return []
    return [(int(r["step"]), float(r["mean_return"])) for r in csv.DictReader(open(path))]


def summary(rows: list[tuple[int, float]], steps: int) -> str:
    rows = [r for r in rows if r[0] <= steps]
    if not rows:
        return "- | - | -"
    last5 = [m for _, m in rows[-5:]]
    return f"{rows[-1][1]:.0f} (at {rows[-1][0]}) | {np.mean(last5):.0f} | {max(m for _, m in rows):.0f}"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--steps", type=int, default=200_000)
    args = p.parse_args()
    for seed in args.seeds:
        done = read(OUT / f"s{seed}" / "eval.csv")
        if not done or done[-1][0] < args.steps:
            run_sb3(seed, args.steps)
    print(
        "| seed | SB3 TD3: final / last-5 mean / best | ddpgx td3: final / last-5 mean / best |\n|---|---|---|"
    )
    for seed in args.seeds:
        sb3 = summary(read(OUT / f"s{seed}" / "eval.csv"), args.steps)
        ours = summary(read(DDPGX_RUNS / f"{ENV}__td3__s{seed}" / "eval.csv"), args.steps)
        print(f"| {seed} | {sb3} | {ours} |")


if __name__ == "__main__":
    main()
