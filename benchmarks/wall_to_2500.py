"""Wall time to a score against the peers, on this machine: how long after its process starts each library's
Hopper-v5 run first evaluates at or above 2500 (issue #36; the goal: ddpgx at least 2x sooner than the fastest peer).

    pip install -e '.[bench]'                   # the peers: stable-baselines3, torch 2.13.0 (CPU), sbx-rl
    python benchmarks/wall_to_2500.py           # 3 libraries x seeds 0 1 x 300k env steps, one process at a time
    python benchmarks/wall_to_2500.py --report-only [--write]  # the table; --write puts it into docs/PERFORMANCE.md

The three, each with its own defaults, nothing tuned here:

- ddpgx: ``ddpgx train --env Hopper-v5 --total-steps 300000 --seed S --run-dir OUT/ddpgx_sS --eval-every 5000``,
  its default preset for a MuJoCo env (``crossq256``), which evaluates every 5000 env steps on 10 noise-free
  episodes of its own eval env (the preset's eval_every and eval_episodes; --eval-every is passed only so that a
  smoke test can change it).
- sbx CrossQ (sbx-rl): ``sbx.CrossQ("MlpPolicy", env, seed=S, verbose=0)``, every other argument sbx's default
  (sbx 0.28: lr 1e-3, batch 256, 100 random steps, policy delay 3, actor 256-256, critics 1024-1024 with batch
  renormalization, SAC's automatic entropy).
- SB3 TD3 with rl-zoo3's Hopper hyperparameters: DLR-RM/rl-baselines3-zoo, hyperparams/td3.yml, entry ``Hopper-v4``
  (``<<: *mujoco-defaults``, the anchor on ``HalfCheetah-v4``; the zoo lists no Hopper-v5 for TD3; read at commit
  22e3ff2, 2026-04-23, rl_zoo3 2.9.0a2): policy MlpPolicy, learning_starts 10000, noise_type normal, noise_std 0.1
  (NormalActionNoise(0, 0.1) on every action dimension, as the zoo's ExperimentManager builds it), train_freq 1,
  gradient_steps 1, learning_rate 1e-3, batch_size 256, policy_kwargs dict(net_arch=[400, 300]) (actor and both
  critics); n_timesteps 1e6 is replaced by --steps; the rest is TD3's default (buffer 1e6, tau 0.005, gamma 0.99,
  policy delay 2, target noise 0.2 clipped at 0.5, device "auto": the CPU here).

The peers' runs evaluate every --eval-every env steps (5000) on 10 episodes with ``model.predict(obs,
deterministic=True)`` on a separate Hopper-v5 env, reset with seeds seed + 100 + 1000 * k + episode (as
benchmarks/td3_sb3_hopper.py does), and write OUT/<peer>_s<seed>/eval.csv: step,mean_return,wall_s.

Threads: SB3's run calls torch.set_num_threads(--torch-threads), by default nproc, every core this machine has (2 on
the project's machines). ddpgx and sbx run with JAX's defaults (XLA's CPU thread pool over every core); no XLA flags
and no compile cache are set, so each process compiles afresh. Run it on an otherwise idle machine: with a second
busy process per core, torch's 2 threads wait on each other (SB3 TD3 measured 1 env step/s with 2 threads against
29 with 1, at a load of 10 on 2 cores), which would make the ratio unfair to SB3. The table's "others' CPU" column
shows how busy the rest of the machine was during each run.

"Wall time from process start": each run is a fresh Python process (``sys.executable``), started only when the one
before it has ended (never two at once), seeds in the outer loop and libraries in the inner one (s0: ddpgx, sbx,
sb3; then s1), so that a drift in the machine's load spreads over the three. Its clock starts in this script at
``time.time()`` just before the process is spawned, so an eval's wall time includes the interpreter's start,
every import (jax, flax, torch, SB3, sbx, gymnasium, MuJoCo), the creation of the envs, building the networks,
every JIT/XLA compile (ddpgx's, sbx's; torch compiles nothing), the random steps before learning, training, and
every evaluation before it (each library's own evaluation, 10 episodes every 5000 steps, counts for it), up to the
moment that eval's row is written. How each side's rows get that clock:

- sbx and SB3 run in a child of this script (``--child``), which gets the spawn time in the environment variable
  W2500_SPAWN and writes wall_s = time.time() - spawn into each row (both are the system's real-time clock).
- ddpgx writes its own eval.csv, whose wall_s runs from its RunLogger's creation, some seconds into the process
  (after its imports, env creation and set-up; about 19 s in the smoke test on a loaded machine). That start-up is
  measured after the process ends: eval.csv is written once per eval and flushed, so its mtime is the time its
  last row was written, and offset = mtime - spawn - (that row's wall_s) (episodes.csv's mtime gives the same to
  within 0.04 s). Every row's wall time since spawn is then wall_s + offset; the offset is kept in
  OUT/ddpgx_s<seed>.json (clock_offset_s).

OUT/<peer>_s<seed>.json records, per run: the spawn time, the command, the exit status, the whole process's wall
time (spawn to exit), the CPU time of the run's process and the CPU time the rest of the machine used meanwhile
(/proc/stat), the 1-minute load average at spawn, the machine (nproc, CPU model) and the versions.
OUT/<peer>_s<seed>.log has the run's output. A run whose eval.csv already reaches --steps (or, with
--stop-at-target, that stopped at the target) is not run again, so the script continues after a stop; a run that
stopped short is deleted and started afresh, since a resumed process would not be one process's wall time.

--stop-at-target ends each run at its first eval >= --target (ddpgx's --target-return; the peers' callback stops
learn()): the time to the target is the same, the eval at --steps is not measured, and sbx's CrossQ, whose default
1024-wide critics make it the slowest of the three on a CPU, is spared most of its 300k steps.

--max-minutes M ends a peer's run (sbx, SB3; never ddpgx's) that has not reached the target M minutes after its
spawn, with one more eval at that moment (the issue's rule for a peer too slow for this CPU: report what it reaches
in the time ddpgx took, rather than shrink it). Such a run counts as not reached, its whole run's time a lower
bound (shown with >), and the table gives its best eval by then. With M at least twice ddpgx's time to the target,
the cap cannot decide the 2x goal in ddpgx's favour by itself: a peer cut at M is at least 2x slower than ddpgx.
--cap-ratio R sets M per seed to R times ddpgx's time to the target on that seed (its whole run's time if it did
not reach it), so ddpgx runs first in each seed; with R > 2, a cut cannot make the goal look met where it is not.

The table, per library and seed: the wall time (min) to the first eval >= --target and its env step, the eval at
--steps, the whole run's wall time and env steps/s (its last eval's step / whole run), and the CPU the other
processes of the machine used during the run (in cores); per library, the means over its seeds. The ratio is the
fastest peer's mean time to the target over ddpgx's: above 1, ddpgx is that many times sooner. A seed that never
reached the target counts with its whole run's time, as a lower bound (shown with >). Machines of this kind differ
in speed by up to 4x, and other processes' load changes a run's speed, so the minutes hold for this machine at that
time only; the ratio, measured by one script on one machine, is what carries over. --write copies each run's
eval.csv and .json to docs/data/wall_to_2500/ (the table outlives OUT; with the default --out, a run not in OUT is
read from there) and puts the table into docs/PERFORMANCE.md between its markers.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from archive import DATA, write_block  # noqa: E402
from td3_sb3_hopper import eval_sb3  # noqa: E402  (the same deterministic evaluation as the TD3 peer study)

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "PERFORMANCE.md"
STUDY = DATA / "wall_to_2500"  # docs/data/wall_to_2500/<peer>_s<seed>/: eval.csv and run.json
DEFAULT_OUT = Path("~/ddpgx-studies/wall_to_2500").expanduser()
BEGIN, END = "<!-- wall-to-2500:begin (benchmarks/wall_to_2500.py --write) -->", "<!-- wall-to-2500:end -->"
ENV = "Hopper-v5"
EVAL_EPISODES = 10
PEERS = ("ddpgx", "sbx", "sb3")
LABEL = {
    "ddpgx": "ddpgx (its default, `crossq256`)",
    "sbx": "sbx CrossQ (sbx's defaults)",
    "sb3": "SB3 TD3 (rl-zoo3's Hopper)",
}
ZOO_TD3_HOPPER = dict(  # rl-baselines3-zoo hyperparams/td3.yml, Hopper-v4 (<<: *mujoco-defaults), n_timesteps aside
    policy="MlpPolicy", learning_starts=10_000, noise_std=0.1, train_freq=1, gradient_steps=1, learning_rate=1e-3,
    batch_size=256, policy_kwargs=dict(net_arch=[400, 300]),
)  # fmt: skip
DDPGX_MAIN = "import sys; from ddpgx.cli import main; sys.argv[0] = 'ddpgx'; sys.exit(main())"


def nproc() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def machine() -> str:
    """``N cores, <CPU model>``: what `nproc` and /proc/cpuinfo say."""
    model = platform.processor() or "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{nproc()} cores, {model}"


def versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    names = ("ddpgx", "jax", "jaxlib", "flax", "torch", "stable-baselines3", "sbx-rl", "gymnasium", "mujoco")
    for name in names:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            pass
    return out


def busy_cpu_s() -> float:
    """CPU seconds the whole machine has been busy since boot, all cores (/proc/stat: user, nice, system, irq,
    softirq and steal; NaN where there is no /proc/stat)."""
    try:
        fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    except OSError:
        return float("nan")
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(x) for x in fields[:8])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


# --- the peers' side: one child process per run ---------------------------------------------------------------------


def child(peer: str, seed: int, args: argparse.Namespace) -> None:
    """One sbx or SB3 run in this process; each eval's wall_s counts from W2500_SPAWN (the parent's spawn time)."""
    spawned = float(os.environ["W2500_SPAWN"])
    run = args.out
    import gymnasium as gym

    env = gym.make(ENV)
    if peer == "sb3":
        import torch
        from stable_baselines3 import TD3
        from stable_baselines3.common.noise import NormalActionNoise

        torch.set_num_threads(args.torch_threads)
        kw = dict(ZOO_TD3_HOPPER)
        policy, sigma = kw.pop("policy"), kw.pop("noise_std")
        act_dim = env.action_space.shape[0]
        noise = NormalActionNoise(mean=np.zeros(act_dim), sigma=sigma * np.ones(act_dim))
        model = TD3(policy, env, action_noise=noise, seed=seed, verbose=0, **kw)
    elif peer == "sbx":
        from sbx import CrossQ

        model = CrossQ("MlpPolicy", env, seed=seed, verbose=0)
    else:
        raise ValueError(peer)
    from stable_baselines3.common.callbacks import BaseCallback

    eval_env = gym.make(ENV)
    rows: list[tuple[int, float, float]] = []
    run.mkdir(parents=True, exist_ok=True)
    (run / "child.json").write_text(json.dumps({"startup_s": round(time.time() - spawned, 3)}) + "\n")

    class Evaluate(BaseCallback):
        def _on_step(self) -> bool:
            over = args.max_minutes and time.time() - spawned >= 60 * args.max_minutes
            if self.num_timesteps % args.eval_every and not over:
                return True
            mean = eval_sb3(model, eval_env, EVAL_EPISODES, seed + 100 + 1000 * len(rows))
            rows.append((self.num_timesteps, mean, time.time() - spawned))
            with open(run / "eval.csv", "w") as f:
                f.write("step,mean_return,wall_s\n" + "".join(f"{s},{m:.2f},{w:.3f}\n" for s, m, w in rows))
            print(f"{peer} s{seed} step {rows[-1][0]}: {rows[-1][1]:.0f} at {rows[-1][2]:.0f} s", flush=True)
            if over and rows[-1][1] < args.target:
                (run / "capped.json").write_text(json.dumps({"capped_at_s": round(rows[-1][2], 3)}) + "\n")
                return False  # --max-minutes: this peer is cut here, without the target
            return not (args.stop_at_target and rows[-1][1] >= args.target)

    model.learn(args.steps, callback=Evaluate())


# --- the parent: runs one process after another -----------------------------------------------------------------------


def read(path: Path) -> list[tuple[int, float, float]]:
    """(step, mean_return, wall_s) rows of an eval.csv (wall_s as the file has it), [] if there is none."""
    if not path.is_file():
        return []
    return [(int(r["step"]), float(r["mean_return"]), float(r["wall_s"])) for r in csv.DictReader(open(path))]


def command(peer: str, seed: int, args: argparse.Namespace, run: Path) -> list[str]:
    steps = "--total-steps" if peer == "ddpgx" else "--steps"
    common = [steps, str(args.steps), "--eval-every", str(args.eval_every)]
    if peer == "ddpgx":
        stop = [f"--target-return={args.target}"] if args.stop_at_target else []
        return [sys.executable, "-c", DDPGX_MAIN, "train", "--env", ENV, "--seed", str(seed), "--run-dir", str(run),
                *common, *stop]  # fmt: skip
    return [sys.executable, str(Path(__file__).resolve()), "--child", peer, "--seeds", str(seed), "--out", str(run),
            f"--target={args.target}", "--torch-threads", str(args.torch_threads), *common,
            *(["--stop-at-target"] if args.stop_at_target else []),
            *(["--max-minutes", str(args.max_minutes)] if args.max_minutes else [])]  # fmt: skip


def finished(run: Path, steps: int, target: float) -> bool:
    """Whether a run is complete: its eval.csv reaches ``steps``, or it ended well at its first eval >= target,
    or --max-minutes cut it (a peer)."""
    rows, meta = read(run / "eval.csv"), run.with_suffix(".json")
    if rows and rows[-1][0] >= steps:
        return True
    info = json.loads(meta.read_text()) if meta.is_file() else {}
    if rows and info.get("returncode") == 0 and info.get("capped_at_s"):
        return True
    return bool(rows) and info.get("returncode") == 0 and info.get("stop_at_target") and rows[-1][1] >= target


def run_one(peer: str, seed: int, args: argparse.Namespace) -> None:
    run = args.out / f"{peer}_s{seed}"
    meta, log = run.with_suffix(".json"), run.with_suffix(".log")
    if finished(run, args.steps, args.target):
        print(f"{peer} s{seed}: done before, not run again")
        return
    if run.exists():
        done = read(run / "eval.csv")
        print(f"{peer} s{seed}: stopped at {done[-1][0] if done else 0} steps before; started afresh")
        shutil.rmtree(run)
    args.out.mkdir(parents=True, exist_ok=True)
    if peer != "ddpgx" and args.cap_ratio:
        got = load("ddpgx", seed, args.out, False)
        if got is None:
            sys.exit(f"--cap-ratio: ddpgx s{seed} has not run in {args.out}; run it first (--only ddpgx)")
        st = stats(*got, args.steps, args.target)
        args.max_minutes = round(args.cap_ratio * st["bound"] / 60, 2)
        print(
            f"{peer} s{seed}: cut at {args.max_minutes} min, {args.cap_ratio:g}x ddpgx's {st['bound'] / 60:.1f}"
        )
    cmd = command(peer, seed, args, run)
    info = {"peer": peer, "seed": seed, "cmd": cmd, "machine": machine(), "versions": versions(),
            "load_1min": os.getloadavg()[0], "steps": args.steps, "eval_every": args.eval_every,
            "target": args.target, "stop_at_target": args.stop_at_target,
            "max_minutes": args.max_minutes if peer != "ddpgx" else None, "cap_ratio": args.cap_ratio or None,
            "torch_threads": args.torch_threads if peer == "sb3" else None}  # fmt: skip
    print(f"{peer} s{seed}: {' '.join(cmd)}", flush=True)
    busy0, used0 = busy_cpu_s(), resource.getrusage(resource.RUSAGE_CHILDREN)
    with open(log, "w") as out:
        spawned = time.time()
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT,
                                env={**os.environ, "W2500_SPAWN": repr(spawned)})  # fmt: skip
        info["spawned"] = spawned
        meta.write_text(json.dumps(info, indent=1) + "\n")
        rc = proc.wait()
    wall = time.time() - spawned
    used1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (used1.ru_utime + used1.ru_stime) - (used0.ru_utime + used0.ru_stime)
    info.update(exit_s=round(wall, 3), returncode=rc, cpu_s=round(cpu, 1),
                others_cpu_s=round(max(0.0, busy_cpu_s() - busy0 - cpu), 1))  # fmt: skip
    rows = read(run / "eval.csv")
    if peer == "ddpgx" and rows:  # ddpgx's clock starts later than the process: see the docstring
        info["clock_offset_s"] = round((run / "eval.csv").stat().st_mtime - spawned - rows[-1][2], 3)
    for extra in ("child.json", "capped.json"):
        if (run / extra).is_file():
            info.update(json.loads((run / extra).read_text()))
    meta.write_text(json.dumps(info, indent=1) + "\n")
    if rc != 0:
        tail = "".join(open(log).readlines()[-30:])
        sys.exit(f"{peer} s{seed} failed (exit {rc}); the end of {log}:\n{tail}")
    print(
        f"{peer} s{seed}: {wall / 60:.1f} min, last eval {rows[-1][1] if rows else float('nan'):.0f}",
        flush=True,
    )


# --- the table --------------------------------------------------------------------------------------------------------


def load(
    peer: str, seed: int, out: Path, archive: bool
) -> tuple[list[tuple[int, float, float]], dict] | None:
    """A run's eval rows, wall_s since its spawn, and its .json; from OUT, else (``archive``) its kept copy."""
    for run, meta in ((out / f"{peer}_s{seed}", out / f"{peer}_s{seed}.json"),
                      (STUDY / f"{peer}_s{seed}", STUDY / f"{peer}_s{seed}" / "run.json")):  # fmt: skip
        rows = read(run / "eval.csv")
        if rows and meta.is_file():
            info = json.loads(meta.read_text())
            if (
                peer == "ddpgx" and "clock_offset_s" not in info and "spawned" in info
            ):  # this script was stopped
                info["clock_offset_s"] = (run / "eval.csv").stat().st_mtime - info["spawned"] - rows[-1][2]
            shift = info.get("clock_offset_s", float("nan")) if peer == "ddpgx" else 0.0
            return [(s, m, w + shift) for s, m, w in rows], info
        if not archive:
            break
    return None


def stats(rows: list[tuple[int, float, float]], info: dict, steps: int, target: float) -> dict:
    rows = [r for r in rows if r[0] <= steps]
    hit = next((r for r in rows if r[1] >= target), None)
    ended = info.get("returncode") == 0 and "exit_s" in info  # the process ran to its end
    whole = info["exit_s"] if ended else None
    full = rows[-1][0] >= steps
    best = max(rows, key=lambda r: r[1])
    return {"capped": bool(info.get("capped_at_s")) and hit is None, "best": best[1], "best_step": best[0],
            "reached": hit is not None, "t": hit[2] if hit else None, "step": hit[0] if hit else None,
            "final": rows[-1][1] if full else None, "last_step": rows[-1][0], "whole": whole,
            "sps": rows[-1][0] / whole if whole else None, "done": full or (ended and (hit is not None or bool(info.get("capped_at_s")))),
            "full": full, "bound": hit[2] if hit else (whole if whole is not None else rows[-1][2]),
            "others": info["others_cpu_s"] / whole if whole and "others_cpu_s" in info else None,
            "machine": info.get("machine", "?")}  # fmt: skip


def chosen(args: argparse.Namespace) -> list[str]:
    """The libraries asked for (--only), in PEERS' order; all three by default."""
    return [p for p in PEERS if not args.only or p in args.only]


def fmt(x: float | None, spec: str, scale: float = 1.0) -> str:
    return "-" if x is None or x != x else format(x / scale, spec)


def mean(xs: list) -> float | None:
    xs = [x for x in xs if x is not None]
    return float(np.mean(xs)) if xs else None


def table(args: argparse.Namespace) -> str:
    archive = args.out == DEFAULT_OUT
    tgt, at = f"{args.target:g}", f"{args.steps / 1000:g}k"
    lines = [
        f"Hopper-v5, {at} env steps, seeds {' '.join(map(str, args.seeds))}, one process at a time; wall time from "
        "process start (imports, env creation, JIT compiles and evaluations included)"
        + (f"; each run stopped at its first eval >= {tgt}." if args.stop_at_target else "."),
        "",
        f"| library | seed | wall time to eval >= {tgt}, min | env step then | eval at {at} | whole run, min | "
        "env steps/s | others' CPU, cores |",
        "|---|---|---|---|---|---|---|---|",
    ]
    per: dict[str, list[dict]] = {}
    machines: set[str] = set()
    for peer in chosen(args):
        for seed in args.seeds:
            got = load(peer, seed, args.out, archive)
            if got is None:
                lines.append(f"| {LABEL[peer]} | {seed} | not run yet | | | | | |")
                continue
            st = stats(*got, args.steps, args.target)
            machines.add(st["machine"])
            short = (
                "" if st["full"] or st["done"] else f" (under way or stopped at {st['last_step'] // 1000}k)"
            )
            reach = fmt(st["t"], ".1f", 60) if st["reached"] else "not reached"
            if st["capped"]:
                short = (
                    f" in {st['whole'] / 60:.1f} (--max-minutes; best eval {st['best']:.0f} at "
                    f"{st['best_step'] // 1000}k)"
                )
            lines.append(
                f"| {LABEL[peer]} | {seed} | {reach}{short} | {fmt(st['step'], ',.0f')} | {fmt(st['final'], '.0f')} | "
                f"{fmt(st['whole'], '.1f', 60)} | {fmt(st['sps'], '.0f')} | {fmt(st['others'], '.2f')} |"
            )
            per.setdefault(peer, []).append(st)
    means: dict[str, tuple[float, bool]] = {}  # library: (mean time to the target, s; is it a lower bound?)
    for peer, sts in per.items():
        if len(sts) < len(args.seeds) or not all(st["done"] or st["reached"] for st in sts):
            continue  # a seed not run yet, or one under way that has not reached the target
        t, low = float(np.mean([st["bound"] for st in sts])), not all(st["reached"] for st in sts)
        means[peer] = (t, low)
        n = len(sts)
        lines.append(
            f"| **{LABEL[peer]}: mean** | {n} seed{'s' * (n > 1)}, {sum(st['reached'] for st in sts)} reached | "
            f"{'> ' * low}{t / 60:.1f} | {fmt(mean([st['step'] for st in sts]), ',.0f')} | "
            f"{fmt(mean([st['final'] for st in sts]), '.0f')} | {fmt(mean([st['whole'] for st in sts]), '.1f', 60)} | "
            f"{fmt(mean([st['sps'] for st in sts]), '.0f')} | {fmt(mean([st['others'] for st in sts]), '.2f')} |"
        )
    lines.append("")
    rivals = {p: v for p, v in means.items() if p != "ddpgx"}
    if "ddpgx" in means and rivals:
        best = min(rivals, key=lambda p: rivals[p][0])
        (tp, lowp), (td, lowd) = rivals[best], means["ddpgx"]
        ratio = tp / td  # lowp: the true ratio is at least this; lowd: at most this
        sign = "?" if lowp and lowd else "> " if lowp else "< " if lowd else ""
        if lowp and lowd:
            verdict = "undecided (neither reached the target in every seed)"
        elif ratio >= 2:
            verdict = "not shown (ddpgx's time is a lower bound)" if lowd else "met"
        else:
            verdict = "not shown (the peer's time is a lower bound)" if lowp else "not met"
        lines += [
            f"**Fastest peer's time to {tgt} / ddpgx's: {sign}{ratio:.2f}x** ({LABEL[best]}: {'> ' * lowp}"
            f"{tp / 60:.1f} min; ddpgx: {'> ' * lowd}{td / 60:.1f} min; means over seeds). The goal, ddpgx at least "
            f"2x sooner: {verdict}.",
            "",
        ]
    lines.append(
        f"Machine: {'; '.join(sorted(machines)) or machine()}"
        + (" (runs on different machines: the ratio does not hold)" if len(machines) > 1 else "")
        + ". Machines of this kind differ in speed by up to 4x, and other processes' load changes a run's speed: "
        "the minutes hold for this machine at that time only; the ratio, measured by one script on one machine, "
        "is what carries over. Others' CPU: the cores the rest of the machine kept busy during the run, on "
        "average (0 on an idle machine), from /proc/stat's busy time, steal included: on a shared VM, time the "
        "host gave to other tenants counts here too."
    )
    return "\n".join(lines)


def keep(args: argparse.Namespace) -> None:
    """Copy each run's eval.csv and .json from OUT to docs/data/wall_to_2500/<peer>_s<seed>/."""
    for peer in chosen(args):
        for seed in args.seeds:
            got = load(peer, seed, args.out, False)
            if got is not None:
                run, dst = args.out / f"{peer}_s{seed}", STUDY / f"{peer}_s{seed}"
                dst.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(run / "eval.csv", dst / "eval.csv")
                (dst / "run.json").write_text(
                    json.dumps(got[1], indent=1) + "\n"
                )  # with ddpgx's clock offset


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    p.add_argument("--steps", type=int, default=300_000)
    p.add_argument("--target", type=float, default=2500.0)
    p.add_argument("--only", action="append", choices=PEERS, help="run and report only this one (repeatable)")
    p.add_argument("--eval-every", type=int, default=5_000, help="env steps between evaluations (all three)")
    p.add_argument("--stop-at-target", action="store_true", help="end each run at its first eval >= --target")
    p.add_argument(
        "--max-minutes",
        type=float,
        default=0.0,
        help="cut a peer's run that has not reached --target by then",
    )
    p.add_argument(
        "--cap-ratio",
        type=float,
        default=0.0,
        help="--max-minutes per seed: this many times ddpgx's time to --target on that seed",
    )
    p.add_argument("--torch-threads", type=int, default=nproc(), help="SB3's torch threads (default: nproc)")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help="where the runs go (outside the work tree)")
    p.add_argument("--report-only", action="store_true", help="run nothing; report what has been run")
    p.add_argument(
        "--write", action="store_true", help="put the table into docs/PERFORMANCE.md (and keep the runs)"
    )
    p.add_argument("--child", choices=("sbx", "sb3"), help=argparse.SUPPRESS)  # one run, in its own process
    argv, rest = [], sys.argv[1:]
    while rest:  # --target -1e9: argparse would take "-1e9" for an option, so pass it as --target=-1e9
        a = rest.pop(0)
        argv.append(f"--target={rest.pop(0)}" if a == "--target" and rest else a)
    args = p.parse_args(argv)
    args.out = args.out.expanduser().resolve()
    if args.child:
        child(args.child, args.seeds[0], args)
        return
    if not args.report_only:
        for seed in args.seeds:
            for peer in chosen(args):
                run_one(peer, seed, args)
    if args.write:
        keep(args)
    text = table(args)
    print(text)
    if args.write:
        write_block(DOC, BEGIN, END, f"{BEGIN}\n{text}\n{END}")


if __name__ == "__main__":
    main()
