"""The compiled loop (gymnax:Pendulum-v1) against ddpgx's Python loop, SB3 and sbx, in one script on one machine.

    python benchmarks/jaxloop_speed.py            # throughput + learning; writes docs/JAXLOOP.md and its plot
    python benchmarks/jaxloop_speed.py --quick    # throughput only, fewer steps; prints the table

Throughput: env steps/s of all seeds together once learning runs (after 2000 of 5000 steps; 1000 uniform warm-up
steps and the compile excluded), each measurement in a fresh process, with the `pendulum` preset's maths on every
side (128-128 networks, batch 128, lr 1e-3, gamma 0.98, tau 0.01, Gaussian noise 0.1, 4 gradient steps every 4
env steps, replay 200k):
  - ddpgx's compiled loop on gymnax:Pendulum-v1 with S = 1, 8 and 32 vmapped seeds (the whole `train()` path, logs
    and CSVs included: the rate is train.csv's, between logs);
  - ddpgx's Python loop on Gymnasium's Pendulum-v1 (the same path and column);
  - Stable-Baselines3 DDPG (torch) and sbx DDPG (JAX) on Gymnasium's Pendulum-v1 (timed from a callback).
Learning: 10 vmapped seeds on gymnax:Pendulum-v1 and 5 Python-loop seeds on Gymnasium's Pendulum-v1, the
`pendulum` preset for 20k steps with a 10-episode noise-free evaluation every 1000 steps. For each compiled seed:
the first step whose evaluation reaches -200 and the wall time to it from process start (imports and compile
included: the seed directory's config.json is written just before its clock starts).
"""

from __future__ import annotations

import time

T_PROCESS = time.time()  # before any import of ddpgx or jax: "from process start"

import argparse  # noqa: E402
import csv  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import shutil  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "benchmarks" / "out" / "jaxloop"
DOC = ROOT / "docs" / "JAXLOOP.md"
SOLVED = -200.0


def peer_settings() -> dict:
    """The `pendulum` preset's values, read from ddpgx itself, for the peers (SB3 and sbx) to match."""
    from ddpgx import preset_config

    c = preset_config("pendulum", "Pendulum-v1")
    assert c.actor_hidden == c.critic_hidden and c.actor_lr == c.critic_lr and c.noise == "gaussian"
    every = c.update_every
    return dict(hidden=c.actor_hidden, lr=c.actor_lr, gamma=c.gamma, tau=c.tau, batch=c.batch_size,
                buffer=c.buffer_size, every=every, grad_steps=c.gradient_steps or every, sigma=c.noise_sigma,
                starts=c.learning_starts)  # fmt: skip


def median_sps(run: Path, after: int) -> float:
    rows = [r for r in csv.DictReader(open(run / "train.csv")) if int(r["step"]) > after]
    return statistics.median(float(r["sps"]) for r in rows)


def child_ddpgx(env: str, seeds: int, steps: int) -> dict:
    from ddpgx import preset_config, train

    run = OUT / f"sps__{env.replace(':', '-')}__S{seeds}"
    shutil.rmtree(run, ignore_errors=True)
    cfg = preset_config("pendulum", env, total_steps=steps, num_seeds=seeds, eval_every=10**9, log_every=500,
                        checkpoint_every=10**9, progress=False, tensorboard=False, plot=False, run_dir=str(run))  # fmt: skip
    res = train(cfg)
    first = res.runs[0] if res.runs else run
    per_seed = median_sps(first, 2000)  # train.csv's sps is per seed
    return {"sps": per_seed * seeds}


def sb3_like(lib: str, steps: int) -> dict:
    import gymnasium as gym
    import numpy as np

    if lib == "sb3":
        from stable_baselines3 import DDPG
    else:
        from sbx import DDPG
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.noise import NormalActionNoise

    P = peer_settings()
    env = gym.make("Pendulum-v1")
    n = env.action_space.shape[0]
    kw = dict(device="cpu") if lib == "sb3" else {}
    model = DDPG(
        "MlpPolicy", env, learning_rate=P["lr"], buffer_size=P["buffer"], learning_starts=P["starts"],
        batch_size=P["batch"], tau=P["tau"], gamma=P["gamma"], train_freq=P["every"], gradient_steps=P["grad_steps"],
        action_noise=NormalActionNoise(np.zeros(n), P["sigma"] * np.ones(n)), seed=0,
        policy_kwargs={"net_arch": list(P["hidden"])}, **kw,
    )  # fmt: skip
    marks: dict[int, float] = {}

    class Clock(BaseCallback):
        def _on_step(self) -> bool:
            if self.num_timesteps in (2000, steps):
                marks[self.num_timesteps] = time.perf_counter()
            return True

    model.learn(total_timesteps=steps, callback=Clock())
    return {"sps": (steps - 2000) / (marks[steps] - marks[2000])}


def child_learn(env: str, seeds: int, steps: int) -> dict:
    from ddpgx import preset_config, train

    run = OUT / f"learn__{env.replace(':', '-')}__S{seeds}"
    shutil.rmtree(run, ignore_errors=True)
    cfg = preset_config("pendulum", env, total_steps=steps, num_seeds=seeds, eval_every=1000, progress=False,
                        tensorboard=False, plot=False, run_dir=str(run))  # fmt: skip
    res = train(cfg)
    out = []
    for r in res.runs or (run,):
        start = (r / "config.json").stat().st_mtime - T_PROCESS  # the seed's clock starts right after this
        evals = [
            (int(e["step"]), float(e["mean_return"]), float(e["wall_s"]))
            for e in csv.DictReader(open(r / "eval.csv"))
        ]
        hit = next(((s, w) for s, m, w in evals if m >= SOLVED), None)
        out.append({"run": str(r), "solved_step": hit and hit[0], "solved_wall_s": hit and round(start + hit[1], 1),
                    "final": evals[-1][1], "best": max(m for _, m, _ in evals)})  # fmt: skip
    return {"seeds": out, "wall_s": time.time() - T_PROCESS}


def spawn(*args: str) -> dict:
    r = subprocess.run([sys.executable, __file__, "--child", *args], capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"child {args} failed:\n{r.stderr[-3000:]}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def machine() -> str:
    import jax

    return f"{platform.machine()}, {len(__import__('os').sched_getaffinity(0))} cores, jax {jax.__version__} on {jax.default_backend()}"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--child", nargs="*")
    a = ap.parse_args()
    if a.child:
        kind, *rest = a.child
        if kind == "ddpgx":
            res = child_ddpgx(rest[0], int(rest[1]), int(rest[2]))
        elif kind == "learn":
            res = child_learn(rest[0], int(rest[1]), int(rest[2]))
        else:
            res = sb3_like(kind, int(rest[0]))
        print(json.dumps(res))
        return
    OUT.mkdir(parents=True, exist_ok=True)
    steps = 3500 if a.quick else 5000
    sides = [("compiled loop, S = 1", ("ddpgx", "gymnax:Pendulum-v1", "1", str(steps)), 1),
             ("compiled loop, S = 8", ("ddpgx", "gymnax:Pendulum-v1", "8", str(steps)), 8),
             ("compiled loop, S = 32", ("ddpgx", "gymnax:Pendulum-v1", "32", str(steps)), 32),
             ("Python loop (Gymnasium Pendulum-v1)", ("ddpgx", "Pendulum-v1", "1", str(steps)), 1),
             ("SB3 DDPG (torch)", ("sb3", str(steps)), 1),
             ("sbx DDPG (JAX)", ("sbx", str(steps)), 1)]  # fmt: skip
    rows = []
    for name, args, s in sides:
        r = spawn(*args)
        rows.append((name, s, r["sps"]))
        print(f"{name}: {r['sps']:.0f} env steps/s", flush=True)
    python_sps = rows[3][2]
    table = [
        "| loop | seeds | env steps/s, all seeds | per seed | vs the Python loop |",
        "|---|---|---|---|---|",
    ]
    for name, s, sps in rows:
        table.append(f"| {name} | {s} | {sps:.0f} | {sps / s:.0f} | {sps / python_sps:.2f}x |")
    print("\n".join(table))
    if a.quick:
        return
    learn_g = spawn("learn", "gymnax:Pendulum-v1", "10", "20000")
    py_runs = []  # the Python loop trains one seed per process
    for seed in range(5):
        run = OUT / f"learn__Pendulum-v1__s{seed}"
        shutil.rmtree(run, ignore_errors=True)
        r = subprocess.run([sys.executable, "-m", "ddpgx.cli", "train", "--env", "Pendulum-v1", "--preset", "pendulum",
                            "--seed", str(seed), "--total-steps", "20000", "--eval-every", "1000", "--no-progress",
                            "--no-tensorboard", "--no-plot", "--run-dir", str(run)], capture_output=True, text=True)  # fmt: skip
        if r.returncode != 0:
            raise SystemExit(r.stderr[-2000:])
        py_runs.append(run)
    report = OUT / "report.md"
    subprocess.run([sys.executable, "-m", "ddpgx.cli", "report", str(OUT / "learn__gymnax-Pendulum-v1__S10"),
                    *map(str, py_runs), "--out", str(report)], check=True, capture_output=True)  # fmt: skip
    shutil.copy(OUT / "report.png", ROOT / "docs" / "jaxloop_pendulum.png")
    seeds = learn_g["seeds"]
    solved = [s for s in seeds if s["solved_step"] is not None]
    lines = [
        "# The compiled loop: gymnax:Pendulum-v1",
        "",
        f"Machine: {machine()}. Written by `python benchmarks/jaxloop_speed.py`; every number below comes from one run of it, "
        "each side in a fresh process, one after another on an otherwise idle machine.",
        "",
        "## Throughput",
        "",
        "The `pendulum` preset's maths on every side (128-128 networks, batch 128, 4 gradient steps every 4 env steps, "
        "Gaussian noise 0.1, replay 200k); env steps/s of all seeds together after step 2000 of 5000 (compile and "
        "the 1000 warm-up steps excluded). The compiled loop's rate is its whole `train()` path, logs and CSVs included; "
        "with S > 1 its seeds are sharded over the cores (one XLA CPU device per core, jaxloop.cpu_devices_for).",
        "",
        *table,
        "",
        "## Learning",
        "",
        f"10 seeds vmapped in one program, 20k steps, 10-episode noise-free evaluation every 1000 steps: **{len(solved)} of "
        f"10** seeds reached eval >= -200; the whole program took {learn_g['wall_s']:.0f} s from process start.",
        "",
        "| seed | first step at eval >= -200 | wall s from process start to it | final eval | best eval |",
        "|---|---|---|---|---|",
        *(f"| {i} | {s['solved_step'] or '-'} | {s['solved_wall_s'] or '-'} | {s['final']:.1f} | {s['best']:.1f} |"
          for i, s in enumerate(seeds)),  # fmt: skip
        "",
        "Beside it, the Python loop on Gymnasium's Pendulum-v1 with the same preset (5 seeds, `ddpgx report` of both "
        "groups): the two envs' dynamics and rewards agree, and so do the curves.",
        "",
        "### "
        + report.read_text().split("\n## ", 1)[-1].split("\n## Across envs")[0].replace("\n## ", "\n### ")
        + "\n![gymnax and Gymnasium Pendulum-v1, pendulum preset](jaxloop_pendulum.png)",
    ]  # fmt: skip
    DOC.write_text("\n".join(lines) + "\n")
    print(f"wrote {DOC}")


if __name__ == "__main__":
    main()
