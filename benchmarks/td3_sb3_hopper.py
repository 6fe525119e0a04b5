"""A peer's TD3 beside ddpgx's `td3` on Hopper-v5: Stable-Baselines3's TD3 with exactly `td3`'s settings, so a gap
between ddpgx's `td3` and TD3's published Hopper curve can be put down to settings and seeds, or to a fault.

    ddpgx sweep benchmarks/sweeps/td3_hopper200.toml       # ddpgx's td3, Hopper-v5, 200k, seeds 0-2
    python benchmarks/td3_sb3_hopper.py [--seeds 0 1 2] [--steps 200000] [--report-only] [--write]
                                                           # SB3's side (needs the bench extra: SB3 + torch)

Settings on both sides (read from ddpgx's `td3` preset, not copied): 256-256 actor and critics, Adam 3e-4, batch 256,
tau 0.005, gamma 0.99, a replay of 1e6, 10,000 uniform random steps first, Gaussian exploration 0.1, target policy
smoothing 0.2 clipped at 0.5, policy delay 2, one gradient step per env step. Every 5,000 env steps SB3's policy is
evaluated on 10 noise-free episodes of its own env (seeded seed + 100, as ddpgx seeds its eval env apart), written to
benchmarks/out/td3_sb3/s<seed>/eval.csv (step,mean_return, wall_s). A seed whose eval.csv already reaches --steps
is not run again; --report-only runs nothing. The script then prints, per seed, both sides' final eval, mean of the
last 5 evaluations, best eval and first eval >= 1000, with the mean over seeds, and with --write puts that table
and a plot of both sides' curves (docs/td3_sb3_hopper.png) into docs/STABILITY.md. Both sides' eval.csv files are
kept in docs/data/td3_hopper200 (ddpgx's runs by name, SB3's as sb3_s<seed>), so the table outlives the runs.
"""

from __future__ import annotations

import argparse
import csv
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from archive import DATA, study_runs, write_block  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "out" / "td3_sb3"
DDPGX_RUNS = ROOT / "benchmarks" / "out" / "td3_hopper200"
STUDY = "td3_hopper200"  # docs/data/td3_hopper200: both sides' eval.csv files, kept in git
DOC = ROOT / "docs" / "STABILITY.md"
PLOT = ROOT / "docs" / "td3_sb3_hopper.png"
BEGIN, END = "<!-- td3-sb3:begin (benchmarks/td3_sb3_hopper.py --write) -->", "<!-- td3-sb3:end -->"
ENV = "Hopper-v5"
EVAL_EVERY, EVAL_EPISODES = 5_000, 10


def sb3_td3(cfg: Any, env: Any, **overrides: Any) -> Any:
    """Stable-Baselines3's TD3 on ``env`` with the settings of the ddpgx config ``cfg`` (its Gaussian exploration,
    one gradient step per env step, CPU); ``overrides`` replace any of TD3's keyword arguments."""
    from stable_baselines3 import TD3
    from stable_baselines3.common.noise import NormalActionNoise

    assert cfg.actor_lr == cfg.critic_lr, "SB3's TD3 has one learning rate"
    act_dim = env.action_space.shape[0]
    kw = dict(
        learning_rate=cfg.actor_lr, buffer_size=cfg.buffer_size, learning_starts=cfg.learning_starts,
        batch_size=cfg.batch_size, tau=cfg.tau, gamma=cfg.gamma, train_freq=1, gradient_steps=1,
        action_noise=NormalActionNoise(np.zeros(act_dim), cfg.noise_sigma * np.ones(act_dim)),
        policy_delay=cfg.policy_delay, target_policy_noise=cfg.target_noise, target_noise_clip=cfg.target_noise_clip,
        policy_kwargs=dict(net_arch=dict(pi=list(cfg.actor_hidden), qf=list(cfg.critic_hidden))),
        device="cpu", verbose=0,
    )  # fmt: skip
    return TD3("MlpPolicy", env, **{**kw, **overrides})


def eval_sb3(model: Any, env: Any, episodes: int, first_seed: int) -> float:
    """The mean return of ``episodes`` deterministic episodes of an SB3/sbx model, seeded first_seed, +1, ..."""
    returns = []
    for ep in range(episodes):
        obs, _ = env.reset(seed=first_seed + ep)
        done, total = False, 0.0
        while not done:
            a, _ = model.predict(obs, deterministic=True)
            obs, r, term, trunc, _ = env.step(a)
            total, done = total + float(r), term or trunc
        returns.append(total)
    return float(np.mean(returns))


def run_sb3(seed: int, steps: int) -> Path:
    import gymnasium as gym
    import torch
    from stable_baselines3.common.callbacks import BaseCallback

    from ddpgx import preset_config

    cfg = preset_config("td3", ENV)
    torch.set_num_threads(1)  # one core per run, as the ddpgx runs of the study had
    out = OUT / f"s{seed}"
    out.mkdir(parents=True, exist_ok=True)
    model = sb3_td3(cfg, gym.make(ENV), seed=seed)
    eval_env = gym.make(ENV)
    rows: list[tuple[int, float, float]] = []
    start = time.perf_counter()

    class Evaluate(BaseCallback):
        def _on_step(self) -> bool:
            if self.num_timesteps % EVAL_EVERY == 0:
                mean = eval_sb3(model, eval_env, EVAL_EPISODES, seed + 100 + 1000 * len(rows))
                rows.append((self.num_timesteps, mean, time.perf_counter() - start))
                with open(out / "eval.csv", "w") as f:
                    f.write(
                        "step,mean_return,wall_s\n" + "".join(f"{s},{m:.2f},{w:.1f}\n" for s, m, w in rows)
                    )
                print(f"sb3 td3 s{seed} step {self.num_timesteps}: {rows[-1][1]:.0f}", flush=True)
            return True

    model.learn(steps, callback=Evaluate())
    return out / "eval.csv"


def read(path: Path) -> list[tuple[int, float, float]]:
    """(step, mean_return, wall_s) rows of an eval.csv, [] if there is none."""
    if not path.is_file():
        return []
    return [
        (int(r["step"]), float(r["mean_return"]), float(r.get("wall_s") or "nan"))
        for r in csv.DictReader(open(path))
    ]


def stats(rows: list[tuple[int, float, float]], steps: int) -> dict | None:
    """Final, last-5 mean, best, first eval >= 1000 and env steps/s of one run's curve up to ``steps``."""
    rows = [r for r in rows if r[0] <= steps]
    if not rows:
        return None
    first = next((s for s, m, _ in rows if m >= 1000), None)
    return {"final": rows[-1][1], "last5": float(np.mean([m for _, m, _ in rows[-5:]])),
            "best": max(m for _, m, _ in rows), "first": first, "sps": rows[-1][0] / rows[-1][2],
            "step": rows[-1][0], "done": rows[-1][0] >= steps}  # fmt: skip


def cell(st: dict | None) -> str:
    """A run's figures; a run that stopped short says where (its figures are up to there)."""
    if st is None:
        return "- (not run yet)"
    first = f"{st['first'] // 1000}k" if st["first"] is not None else "never"
    short = "" if st["done"] else f" (stopped at {st['step'] // 1000}k)"
    return f"{st['final']:.0f} / {st['last5']:.0f} / {st['best']:.0f} / {first}{short}"


def curves(steps: int) -> tuple[dict[int, list], dict[int, list]]:
    """Per seed, SB3's and ddpgx's eval rows: from the live runs (kept on the way) or from their kept copies."""
    sb3, ours = {}, {}
    for f in sorted(OUT.glob("s*/eval.csv")):
        (DATA / STUDY / f"sb3_{f.parent.name}").mkdir(parents=True, exist_ok=True)
        shutil.copyfile(f, DATA / STUDY / f"sb3_{f.parent.name}" / "eval.csv")
    for d in sorted((DATA / STUDY).glob("sb3_s*")) if (DATA / STUDY).is_dir() else []:
        sb3[int(d.name[5:])] = read(d / "eval.csv")
    live = DDPGX_RUNS.glob(f"{ENV}__td3__s*") if DDPGX_RUNS.is_dir() else []
    for run in study_runs(live, STUDY):
        if "__td3__s" in run.name:
            ours[int(run.name.rsplit("__s", 1)[1])] = read(run / "eval.csv")
    return sb3, ours


def plot(sb3: dict[int, list], ours: dict[int, list], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    for seed in sorted(set(sb3) | set(ours)):
        color = f"C{seed}"
        if seed in ours:
            ax.plot(
                [r[0] for r in ours[seed]],
                [r[1] for r in ours[seed]],
                color=color,
                label=f"ddpgx td3 s{seed}",
            )
        if seed in sb3:
            ax.plot([r[0] for r in sb3[seed]], [r[1] for r in sb3[seed]], color=color, ls="--",
                    label=f"SB3 TD3 s{seed}")  # fmt: skip
    ax.axhline(1000, color="grey", lw=0.5)
    ax.set(
        xlabel="env steps",
        ylabel="noise-free eval return (10 episodes)",
        title=f"{ENV}: TD3, the same settings",
    )
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)


def table(sb3: dict[int, list], ours: dict[int, list], steps: int) -> str:
    lines = [
        "| seed | SB3 TD3: final / last-5 mean / best / first >= 1000 | ddpgx td3: the same | "
        "env steps/s: SB3 / ddpgx |",
        "|---|---|---|---|",
    ]
    both = {"sb3": [], "ours": []}
    for seed in sorted(set(sb3) | set(ours)):
        a, b = stats(sb3.get(seed, []), steps), stats(ours.get(seed, []), steps)
        sps = " / ".join(f"{st['sps']:.0f}" if st and st["sps"] == st["sps"] else "-" for st in (a, b))
        lines.append(f"| {seed} | {cell(a)} | {cell(b)} | {sps} |")
        if a and b and a["done"] and b["done"]:
            both["sb3"].append(a)
            both["ours"].append(b)
    if both["sb3"]:
        n = len(both["sb3"])
        mean = {
            k: {f: float(np.mean([st[f] for st in v])) for f in ("final", "last5", "best")}
            for k, v in both.items()
        }
        lines.append(
            f"| mean of the {n} seed(s) both sides ran | " + " | ".join(
                f"{m['final']:.0f} / {m['last5']:.0f} / {m['best']:.0f}" for m in (mean["sb3"], mean["ours"])
            ) + " | |"
        )  # fmt: skip
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--steps", type=int, default=200_000)
    p.add_argument("--report-only", action="store_true", help="run nothing; report what has been run")
    p.add_argument("--write", action="store_true", help="put the table and plot into docs/STABILITY.md")
    args = p.parse_args()
    if not args.report_only:
        for seed in args.seeds:
            done = read(OUT / f"s{seed}" / "eval.csv")
            if not done or done[-1][0] < args.steps:
                run_sb3(seed, args.steps)
    sb3, ours = curves(args.steps)
    text = table(sb3, ours, args.steps)
    print(text)
    if args.write:
        plot(sb3, ours, PLOT)
        write_block(
            DOC, BEGIN, END, f"{BEGIN}\n{text}\n\n![TD3 on Hopper-v5, SB3 and ddpgx]({PLOT.name})\n{END}"
        )


if __name__ == "__main__":
    main()
