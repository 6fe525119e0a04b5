"""Speed of ddpgx against Stable-Baselines3 DDPG, in one script on one machine (`make bench-speed`).

    python benchmarks/speed.py           # full: writes docs/PERFORMANCE.md
    python benchmarks/speed.py --quick   # reduced, under 4 minutes; writes benchmarks/out/PERFORMANCE-quick.md

Measures, with identical settings for both libraries (networks, batch, learning rate, tau, noise, learning
starts, one gradient step per env step):
  - env steps/s once learning has started (compile and warm-up excluded), HalfCheetah-v5 and Pendulum-v1, with
    the `paper` and the `modern` settings;
  - ddpgx's ms per update against the machine's float32 matmul throughput measured here with jax, its update's
    FLOPs counted analytically, and the share of wall time spent outside the update;
  - peak RSS and replay-buffer bytes against the raw bytes of the stored transitions;
  - time to solve Pendulum-v1 (first noise-free eval >= -200, wall clock from process start, compile included) with
    the `pendulum` preset, each seed in a fresh process, next to SB3 with the very same settings and evaluation.
The last line printed is
    speedup_vs_sb3 paper=<min ratio over envs> modern=<min ratio over envs> pendulum_solve=<SB3 time / ddpgx time>
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "benchmarks" / "out" / "speed"
SOLVED = -200.0


# ----------------------------------------------------------------------------------------------- FLOPs


def dense_flops(batch: int, sizes: list[tuple[int, int]], fwd: bool, w_grad: bool, x_grad: bool) -> int:
    """Matmul FLOPs (2 per multiply-add) of a stack of dense layers. The input gradient of the first layer is
    never needed (observations carry no gradient), so it is not counted."""
    total = 0
    for i, (n_in, n_out) in enumerate(sizes):
        mm = 2 * batch * n_in * n_out
        total += mm * (fwd + w_grad + (x_grad and i > 0))
    return total


def update_flops(obs: int, act: int, actor_h: tuple, critic_h: tuple, action_layer: int, batch: int) -> int:
    a_sizes = list(zip((obs, *actor_h), (*actor_h, act), strict=True))
    c_in = [obs, *critic_h]
    c_in[action_layer] += act
    c_sizes = list(zip(c_in, (*critic_h, 1), strict=True))
    f = dense_flops(batch, a_sizes, True, False, False) + dense_flops(
        batch, c_sizes, True, False, False
    )  # target
    f += dense_flops(batch, c_sizes, True, True, True)  # critic step
    f += dense_flops(batch, a_sizes, True, True, True)  # actor step: actor forward and backward
    f += (
        dense_flops(batch, c_sizes, True, False, True) + 2 * batch * c_in[action_layer] * act
    )  # through Q to a
    return f


def best_gflops(f, args: tuple, flops_per_call: float, calls: int, seconds: float) -> float:
    """Best GFLOP/s of the compiled ``f(*args)`` over bursts of ``calls`` calls for about ``seconds``."""
    f(*args).block_until_ready()
    best = 0.0
    t_end = time.perf_counter() + seconds
    while time.perf_counter() < t_end:
        t = time.perf_counter()
        for _ in range(calls):
            out = f(*args)
        out.block_until_ready()
        best = max(best, calls * flops_per_call / (time.perf_counter() - t) / 1e9)
    return best


def matmul_gflops(n: int = 1024, seconds: float = 2.0) -> float:
    import jax
    import jax.numpy as jnp

    a = jax.random.normal(jax.random.PRNGKey(0), (n, n), jnp.float32)
    return best_gflops(jax.jit(lambda x, y: x @ y), (a, a), 2 * n**3, 5, seconds)


def chain_gflops(batch: int, width: int, layers: int = 20, seconds: float = 1.0) -> float:
    """Throughput of a bare chain of ``layers`` (batch x width) @ (width x width) matmuls with a tanh between,
    compiled as one program: the most XLA gets out of matrices of the update's shape, with no RL around it."""
    import jax
    import jax.numpy as jnp

    x = jax.random.normal(jax.random.PRNGKey(0), (batch, width), jnp.float32)
    ws = 0.05 * jax.random.normal(jax.random.PRNGKey(1), (layers, width, width), jnp.float32)
    f = jax.jit(lambda x, ws: jax.lax.fori_loop(0, layers, lambda i, h: jnp.tanh(h @ ws[i]), x))
    return best_gflops(f, (x, ws), layers * 2 * batch * width * width, 20, seconds)


# ----------------------------------------------------------------------------------------------- settings


def settings(name: str, env: str) -> dict:
    from ddpgx import preset_config

    c = preset_config(name, env)
    return {
        "preset": name,
        "actor_hidden": c.actor_hidden,
        "critic_hidden": c.critic_hidden,
        "lr": c.critic_lr,
        "batch_size": c.batch_size,
        "tau": c.tau,
        "gamma": c.gamma,
        "noise": c.noise,
        "sigma": c.noise_sigma,
        "theta": c.noise_theta,
        "buffer_size": c.buffer_size,
    }


# ----------------------------------------------------------------------------------------------- ddpgx


def ddpgx_sps(env: str, preset: str, steps: int, learning_starts: int) -> dict:
    from ddpgx import preset_config, train

    log_every = max(steps // 10, 100)
    run = OUT / f"ddpgx__{env}__{preset}"
    if run.exists():
        shutil.rmtree(run)
    cfg = preset_config(
        preset, env, total_steps=learning_starts + steps, learning_starts=learning_starts, eval_every=10**9,
        eval_episodes=1, log_every=log_every, checkpoint_every=10**9, progress=False, tensorboard=False,
        plot=False, run_dir=str(run), profile=True,
    )  # fmt: skip
    train(cfg)
    rows = list(csv.DictReader(open(run / "train.csv")))
    # the first interval after learning starts includes compilation: leave it out
    rows = [r for r in rows if int(r["step"]) > learning_starts + log_every]
    total_steps = log_every * len(rows)
    total_time = sum(log_every / float(r["sps"]) for r in rows)
    # wall share of the update, timed inside the same loop (not against a separate measurement)
    in_update = sum(log_every / float(r["sps"]) * float(r["update_frac"]) for r in rows)
    return {"sps": total_steps / total_time, "cfg": cfg, "outside": 1 - in_update / total_time}


def ddpgx_update_ms(cfg, obs_dim: int, act_dim: int, reps: int, calls_of: int = 0) -> float:
    """Best ms per gradient step of ``cfg``'s update, called on ``calls_of`` stacked batches at once (default
    ``--update-every``), ``reps`` calls per timing, best of 3."""
    import jax
    import numpy as np

    from ddpgx.learner import Batch, Learner

    learner = Learner(cfg, obs_dim, act_dim)
    state = learner.init(0)
    rng = np.random.default_rng(0)
    k, b = calls_of or cfg.update_every, cfg.batch_size
    batch = Batch(
        rng.normal(size=(k, b, obs_dim)).astype(np.float32),
        rng.uniform(-1, 1, (k, b, act_dim)).astype(np.float32),
        rng.normal(size=(k, b)).astype(np.float32),
        rng.normal(size=(k, b, obs_dim)).astype(np.float32),
        np.zeros((k, b), np.float32),
    )
    for _ in range(10):
        state, m = learner.update(state, batch)
    jax.block_until_ready(m)
    best = float("inf")
    for _ in range(3):
        t = time.perf_counter()
        for _ in range(reps):
            state, m = learner.update(state, batch)
        jax.block_until_ready(m)
        best = min(best, (time.perf_counter() - t) / (reps * k))
    return best * 1e3


def optimizer_us(preset: str) -> tuple[float, int]:
    """Microseconds per step of what an update does besides the networks: both Adam steps (with the critic's
    L2 where the preset has it) and both soft target updates, on HalfCheetah-v5 shapes; and the parameter count."""
    import jax
    import optax

    from ddpgx import preset_config
    from ddpgx.learner import Learner

    learner = Learner(preset_config(preset, "HalfCheetah-v5"), 17, 6)
    state = learner.init(0)

    def step(st):
        new = {}
        for name, tx, opt in (
            ("actor", learner.actor_tx, st.actor_opt),
            ("critic", learner.critic_tx, st.critic_opt),
        ):
            params = getattr(st, name)["params"]
            grads = jax.tree_util.tree_map(lambda p: 1e-3 * p, params)  # stands in for a gradient
            upd, new[name + "_opt"] = tx.update(grads, opt, params)
            new[name] = {**getattr(st, name), "params": optax.apply_updates(params, upd)}
            new[name + "_target"] = optax.incremental_update(new[name], getattr(st, name + "_target"), 0.005)
        return st.replace(**new)

    f = jax.jit(step, donate_argnums=0)
    state = jax.block_until_ready(f(state))
    best = float("inf")
    for _ in range(5):
        t = time.perf_counter()
        for _ in range(300):
            state = f(state)
        jax.block_until_ready(state)
        best = min(best, (time.perf_counter() - t) / 300)
    n = sum(x.size for net in (state.actor, state.critic) for x in jax.tree_util.tree_leaves(net["params"]))
    return best * 1e6, n


def loop_costs() -> dict[str, float]:
    """Microseconds of each thing the loop does per env step besides the update's compute."""
    import jax
    import numpy as np

    from ddpgx import preset_config
    from ddpgx.envs import make_env, scaler_for
    from ddpgx.learner import Learner
    from ddpgx.replay import ReplayBuffer

    def us(f, n: int = 2000) -> float:
        f()
        best = float("inf")
        for _ in range(5):
            t = time.perf_counter()
            for _ in range(n):
                f()
            best = min(best, (time.perf_counter() - t) / n)
        return best * 1e6

    env = make_env("HalfCheetah-v5")
    scaler = scaler_for(env)
    env.reset(seed=0)
    a, o = np.zeros(6, np.float32), np.zeros(17, np.float32)

    def env_step() -> None:
        _, _, term, trunc, _ = env.step(scaler.to_env(a))
        if term or trunc:
            env.reset()

    buf = ReplayBuffer(1_000_000, 17, 6)
    for i in range(20_000):
        buf.add(o, a, 0.0, o, False, i % 1000 == 999)
    learner = Learner(preset_config("paper", "HalfCheetah-v5"), 17, 6)
    state = learner.init(0)
    batch = buf.sample(64, 1)

    def env_step_after_update() -> float:
        """The env step right after an update, as in the loop: the update has just swept megabytes of
        parameters and optimizer state through the caches."""
        nonlocal state
        state, _, act = learner.update_and_act(state, batch, o)
        np.asarray(act)
        t = time.perf_counter()
        env_step()
        return time.perf_counter() - t

    after = min(sum(env_step_after_update() for _ in range(500)) / 500 for _ in range(3)) * 1e6
    noop_state = jax.jit(lambda st, x: x + 1)
    noop = jax.jit(lambda x: x + 1)
    n_leaves = len(jax.tree_util.tree_leaves(state))
    out = {
        "env step (MuJoCo + gymnasium wrappers + action scaling)": us(env_step),
        "the same env step right after an update (caches cold), as in the loop": after,
        "store the transition": us(lambda: buf.add(o, a, 0.0, o, False, False)),
        "sample and gather a batch of 64": us(lambda: buf.sample(64, 1)),
        "sample and gather a batch of 256": us(lambda: buf.sample(256, 1)),
        f"dispatch a compiled call taking the TrainState ({n_leaves} arrays), no work": us(
            lambda: noop_state(state, a).block_until_ready()
        ),
        "dispatch a compiled call taking one array, no work": us(lambda: noop(a).block_until_ready()),
    }
    env.close()
    return out


# ----------------------------------------------------------------------------------------------- SB3


def sb3_model(env_id: str, s: dict, learning_starts: int, seed: int = 0):
    import gymnasium as gym
    import numpy as np
    from stable_baselines3 import DDPG
    from stable_baselines3.common.noise import NormalActionNoise, OrnsteinUhlenbeckActionNoise

    env = gym.make(env_id)
    n = env.action_space.shape[0]
    # SB3 adds the noise to the action scaled to [-1, 1], as ddpgx does
    if s["noise"] == "ou":
        noise = OrnsteinUhlenbeckActionNoise(np.zeros(n), s["sigma"] * np.ones(n), theta=s["theta"], dt=1.0)
    else:
        noise = NormalActionNoise(np.zeros(n), s["sigma"] * np.ones(n))
    return DDPG(
        "MlpPolicy", env, learning_rate=s["lr"], buffer_size=s["buffer_size"], learning_starts=learning_starts,
        batch_size=s["batch_size"], tau=s["tau"], gamma=s["gamma"], train_freq=1, gradient_steps=1,
        action_noise=noise, seed=seed, device="cpu",
        policy_kwargs={"net_arch": {"pi": list(s["actor_hidden"]), "qf": list(s["critic_hidden"])}},
    )  # fmt: skip


def sb3_sps(env_id: str, s: dict, steps: int, learning_starts: int) -> float:
    from stable_baselines3.common.callbacks import BaseCallback

    skip = max(steps // 10, 20)

    class Clock(BaseCallback):
        def _on_step(self) -> bool:
            if self.num_timesteps == learning_starts + skip:
                self.t0 = time.perf_counter()
            return True

    model = sb3_model(env_id, s, learning_starts)
    clock = Clock()
    model.learn(total_timesteps=learning_starts + steps, callback=clock)
    return (steps - skip) / (time.perf_counter() - clock.t0)


# ------------------------------------------------------------------------------------------ time to solve


def child_solve(lib: str, seed: int, max_steps: int, eval_every: int, compile_cache: str = "") -> None:
    """Runs in a fresh process: train until the first noise-free eval >= SOLVED; prints one JSON line."""
    if lib == "ddpgx":
        from ddpgx import preset_config, train

        run = OUT / f"solve__ddpgx__s{seed}"
        if run.exists():
            shutil.rmtree(run)
        cfg = preset_config(
            "pendulum", "Pendulum-v1", seed=seed, total_steps=max_steps, eval_every=eval_every,
            target_return=SOLVED, progress=False, tensorboard=False, plot=False, checkpoint_every=10**9,
            run_dir=str(run), compile_cache=compile_cache,
        )  # fmt: skip
        res = train(cfg)
        print(json.dumps({"steps": res.steps, "eval": res.final_eval_mean, "rss": _peak_rss_mib()}))
        return
    import numpy as np
    from stable_baselines3.common.callbacks import BaseCallback

    from ddpgx import preset_config
    from ddpgx.envs import make_env
    from ddpgx.evaluate import Evaluator

    cfg = preset_config("pendulum", "Pendulum-v1")
    s = settings("pendulum", "Pendulum-v1")
    model = sb3_model("Pendulum-v1", s, cfg.learning_starts, seed)
    ev = Evaluator(lambda: make_env("Pendulum-v1"), cfg.eval_episodes, seed + 1_000_003)
    result = {"steps": None, "eval": None}

    class Solve(BaseCallback):
        def _on_step(self) -> bool:
            if self.num_timesteps % eval_every:
                return True
            # the same noise-free evaluation as ddpgx: SB3's actions are in env units, the evaluator wants [-1, 1]
            r = ev.run(lambda o: np.asarray(ev.scaler.from_env(model.predict(o, deterministic=True)[0])))
            result.update(steps=self.num_timesteps, eval=float(r.mean()))
            return r.mean() < SOLVED

    model.learn(total_timesteps=max_steps, callback=Solve())
    result["rss"] = _peak_rss_mib()
    print(json.dumps(result))


def update_ms_in_child(preset: str, cores: str) -> float:
    """ms per gradient step of the HalfCheetah-v5 update in a fresh process pinned to ``cores``."""
    r = subprocess.run(
        ["taskset", "-c", cores, sys.executable, __file__, "--update-ms", preset],
        capture_output=True, text=True, check=True, timeout=600,
    )  # fmt: skip
    return float(r.stdout.strip().splitlines()[-1])


def time_to_solve(lib: str, seed: int, max_steps: int, eval_every: int, compile_cache: str = "") -> dict:
    t = time.perf_counter()
    r = subprocess.run(
        [sys.executable, __file__, "--child", lib, "--seed", str(seed), "--max-steps", str(max_steps),
         "--eval-every", str(eval_every), "--compile-cache", compile_cache],
        capture_output=True, text=True, timeout=3600,
    )  # fmt: skip
    wall = time.perf_counter() - t
    if r.returncode != 0:
        raise RuntimeError(r.stderr[-2000:])
    out = json.loads(r.stdout.strip().splitlines()[-1])
    solved = out["eval"] is not None and out["eval"] >= SOLVED
    return {"wall": wall, "steps": out["steps"], "eval": out["eval"], "solved": solved, "rss": out["rss"]}


# ----------------------------------------------------------------------------------------------- main


def _peak_rss_mib() -> float:
    """This process's peak resident memory. VmHWM, not ru_maxrss: a child's ru_maxrss can carry its parent's
    peak over the exec."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _solve_cells(r: dict) -> tuple[str, str]:
    wall = f"{r['wall']:.1f}" if r["solved"] else f"not solved ({r['wall']:.0f})"
    return wall, str(r["steps"])


def _torch_threads() -> int:
    import torch

    return torch.get_num_threads()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--child", choices=["ddpgx", "sb3"])
    ap.add_argument("--update-ms", choices=["paper", "modern"])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--max-steps", type=int, default=30_000)
    ap.add_argument("--eval-every", type=int, default=1_000)
    ap.add_argument("--skip-solve", action="store_true")
    ap.add_argument("--compile-cache", default="")
    args = ap.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    if args.update_ms:
        from ddpgx import preset_config

        print(ddpgx_update_ms(preset_config(args.update_ms, "HalfCheetah-v5"), 17, 6, reps=100))
        return
    if args.child:
        child_solve(args.child, args.seed, args.max_steps, args.eval_every, args.compile_cache)
        return

    quick = args.quick
    n_ddpgx, n_sb3, ls = (1_500, 300, 300) if quick else (10_000, 2_000, 1_000)
    seeds = [0] if quick else [0, 1, 2, 3, 4]
    envs = {"HalfCheetah-v5": (17, 6), "Pendulum-v1": (3, 1)}
    lines: list[str] = []

    def say(s: str = "") -> None:
        print(s, flush=True)
        lines.append(s)

    import jax

    peak = matmul_gflops()
    peak_256 = matmul_gflops(256)  # the modern update's matrices are 256 wide
    say(f"# ddpgx speed{' (quick)' if quick else ''}")
    say()
    say(
        f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, jax {jax.__version__} "
        f"on {jax.devices()[0].platform}; float32 matmul (1024^3, jax) peak **{peak:.0f} GFLOP/s**; at 256^3, the size of the "
        f"`modern` update's matrices, {peak_256:.0f} GFLOP/s (the update's percentage is against the 1024^3 peak)."
    )
    say(
        "This is a shared cloud VM whose speed drifts by tens of percent over minutes: each ratio comes from "
        "ddpgx and SB3 runs back to back (median of two rounds); absolute numbers differ between runs of the "
        "benchmark more than the ratios do."
    )
    say("Reproduce: `make bench-speed` (or `python benchmarks/speed.py`; `--quick` for a short run).")
    say()
    results = {}
    say(
        "| env | settings | ddpgx steps/s | SB3 steps/s | ratio | ddpgx ms/update | GFLOP/update | % of matmul "
        "peak | % of same-shape matmul chain | wall outside update (timed in the loop) |"
    )
    say("|---|---|---|---|---|---|---|---|---|---|")
    # ddpgx and SB3 run back to back for each setting, twice, and the ratio is the median of the two rounds, so
    # that a machine whose speed drifts over minutes (shared cloud cores) biases neither side
    for env, (obs_dim, act_dim) in envs.items():
        for preset in ("paper", "modern"):
            rounds = []
            for _ in range(1 if quick else 2):
                d = ddpgx_sps(env, preset, n_ddpgx, ls)
                sb = sb3_sps(env, settings(preset, env), n_sb3, ls)
                rounds.append((d["sps"], sb, d["outside"]))
            cfg = d["cfg"]
            dx = statistics.median(r[0] for r in rounds)
            sb = statistics.median(r[1] for r in rounds)
            ms = ddpgx_update_ms(cfg, obs_dim, act_dim, reps=50 if quick else 300)
            fl = update_flops(obs_dim, act_dim, cfg.actor_hidden, cfg.critic_hidden, cfg.critic_action_layer,
                              cfg.batch_size)  # fmt: skip
            pct = fl / (ms * 1e-3) / 1e9 / peak * 100
            ceiling = chain_gflops(cfg.batch_size, max(*cfg.actor_hidden, *cfg.critic_hidden))
            outside = statistics.median(r[2] for r in rounds)
            ratio = statistics.median(r[0] / r[1] for r in rounds)
            results[(env, preset)] = {"ratio": ratio}
            say(
                f"| {env} | {preset} | {dx:.0f} | {sb:.0f} | **{ratio:.2f}x** | {ms:.3f} | {fl / 1e9:.3f} | "
                f"{pct:.0f}% | {fl / (ms * 1e-3) / 1e9 / ceiling * 100:.0f}% of {ceiling:.0f} GFLOP/s | "
                f"{outside * 100:.0f}% |"
            )
    rss_ddpgx = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    say()
    say(
        "Same settings on both sides: hidden sizes, batch, learning rate, tau, gamma, noise, learning starts "
        f"({ls} uniform-random steps, excluded from the timing with the compile), one gradient step per env step. "
        "SB3 cannot express two of the paper's choices, so its `paper` row has no batch norm and takes the action "
        "at the critic's input; ddpgx's `paper` row has both (it does strictly more work)."
    )
    say()
    say(
        "Why the update stays near half of the machine's peak: XLA:CPU runs a bare chain of matmuls of the update's "
        "own shapes (batch x widest layer, a tanh between, one compiled program) at the rate in the 'same-shape "
        "chain' column, and the update reaches about that rate. Small matrices (batch 64-256, width 256-400) and "
        "the per-op cost between them bound it, not the RL code around it; only larger batches or widths (or a "
        "GPU) move that ceiling."
    )
    say()
    opt = {p: optimizer_us(p) for p in ("paper", "modern")}
    say(
        "Not all of an update is matmuls, and the FLOP count above counts only matmuls: both Adam steps and both "
        "soft target updates are elementwise passes over every parameter, its two Adam moments and its target copy, "
        f"bound by memory traffic, not FLOPs. Measured alone: {opt['paper'][0]:.0f} us per step for `paper` "
        f"({opt['paper'][1]:,} parameters, with the critic's L2), {opt['modern'][0]:.0f} us for `modern` "
        f"({opt['modern'][1]:,}). Running the optimizer on one flattened vector (`optax.flatten`) measured slower "
        "here, since it copies every gradient and parameter into and out of the vector each step."
    )
    say()
    say(
        "What one env step costs outside the update (HalfCheetah-v5, `paper` state; each part timed alone, best of "
        "5 bursts). Acting is fused into the update's compiled call (the actor's forward pass on the next "
        "observation), so the loop makes one compiled call per step; its dispatch is counted inside the update in "
        "the table above, and sampling the batch outside. Timed alone, these parts add up to well under 10% of "
        "an update; in the loop they cost more, because each update evicts the env's and the buffer's data "
        "from the caches (second row) and random replay rows are cache misses anyway. That, not Python, is most "
        "of the 'outside' column."
    )
    say()
    say("| part | us |")
    say("|---|---|")
    for name, us in loop_costs().items():
        say(f"| {name} | {us:.1f} |")
    say()

    from ddpgx.replay import ReplayBuffer

    buf = ReplayBuffer(1_000_000, 17, 6)
    raw_once = 1_000_000 * (4 * 17 + 4 * 6 + 4 + 1)
    raw_twice = 1_000_000 * (8 * 17 + 4 * 6 + 4 + 1)
    say(
        f"Memory: peak RSS of this benchmark process {rss_ddpgx:.0f} MiB (ddpgx, SB3 and torch together, 1M-transition "
        "buffers on both sides; a ddpgx-only process is in the time-to-solve table). "
        f"Replay buffer for 1M HalfCheetah transitions: {buf.nbytes / 2**20:.0f} MiB = "
        f"{buf.nbytes / raw_once:.3f}x the raw (obs, action, reward, terminated) bytes, "
        f"{buf.nbytes / raw_twice:.3f}x storing obs and next_obs apart."
    )
    say()

    solve_ratio = float("nan")
    if not args.skip_solve:
        say(
            "## Time to solve Pendulum-v1 (`pendulum` preset; first noise-free eval >= -200; 10 episodes every "
            f"{args.eval_every} steps; wall clock from process start, imports and compile included)"
        )
        say()
        say(
            "| seed | ddpgx s (cold) | ddpgx steps | ddpgx s (warm compile cache) | SB3 s | SB3 steps | "
            "peak RSS ddpgx / SB3 (MiB) |"
        )
        say("|---|---|---|---|---|---|---|")
        import tempfile

        cache = tempfile.mkdtemp(prefix="ddpgx-xla-")
        time_to_solve("ddpgx", 0, 1_000, args.eval_every, cache)  # fills the cache; not timed
        dx, warm, sb = [], [], []
        for seed in seeds:
            a = time_to_solve("ddpgx", seed, args.max_steps, args.eval_every)
            w = time_to_solve("ddpgx", seed, args.max_steps, args.eval_every, cache)
            b = time_to_solve("sb3", seed, 20_000 if quick else args.max_steps, args.eval_every)
            dx.append(a["wall"] if a["solved"] else float("inf"))
            warm.append(w["wall"] if w["solved"] else float("inf"))
            sb.append(b["wall"] if b["solved"] else float("inf"))
            say(
                f"| {seed} | {' | '.join(_solve_cells(a))} | {_solve_cells(w)[0]} | {' | '.join(_solve_cells(b))} | "
                f"{a['rss']:.0f} / {b['rss']:.0f} |"
            )
        shutil.rmtree(cache, ignore_errors=True)
        solve_ratio = statistics.median(sb) / statistics.median(dx)
        within = sum(t <= 10 for t in dx)
        say()
        say(
            f"ddpgx solved {within}/{len(dx)} seeds within 10 s; median {statistics.median(dx):.1f} s from a cold "
            f"start against SB3's {statistics.median(sb):.1f} s: **{solve_ratio:.1f}x** faster to solve. With the "
            f"compile cache warm (`--compile-cache DIR`, filled by an earlier run) the median is "
            f"{statistics.median(warm):.1f} s, {statistics.median(sb) / statistics.median(warm):.1f}x SB3's. The "
            "headline ratio is the cold one."
        )
        say()

    say("## Threads on a small CPU")
    say()
    from ddpgx import preset_config

    # fresh processes, alternated three times, best of each: the VM's speed drifts between measurements
    two: dict[str, float] = {}
    one: dict[str, float] = {}
    for _ in range(3):
        for p in ("paper", "modern"):
            two[p] = min(two.get(p, float("inf")), update_ms_in_child(p, cores="0,1"))
            one[p] = min(one.get(p, float("inf")), update_ms_in_child(p, cores="0"))
    say(
        "XLA runs the update on its own thread pool, one thread per core it may use, while the env and the loop run "
        "in the Python thread. Measured here (HalfCheetah-v5, ms per gradient step): `paper` "
        f"{two['paper']:.2f} ms on both cores against {one['paper']:.2f} ms pinned to one "
        f"(`taskset -c 0`), `modern` {two['modern']:.2f} against {one['modern']:.2f} ms (fresh processes, "
        "alternated, best of three); the default (all cores) is kept. With this jax (thunk runtime) `XLA_FLAGS=--xla_cpu_multi_thread_eigen=false` changes "
        "nothing measurable, nor do `--xla_cpu_use_xnnpack` or `--xla_cpu_use_onednn`; affinity is the knob that "
        "works. numpy does no large matrix work in ddpgx (the replay buffer only gathers rows), so BLAS threads do "
        "not matter. To run several seeds side by side on a bigger machine, give each its cores with "
        "`taskset -c ...` and XLA sizes its pool to what it sees. SB3/torch ran with torch.get_num_threads() = "
        f"{_torch_threads()} threads."
    )
    say()
    gpu = ROOT / "docs" / "gpu_speed.txt"
    if gpu.exists():
        say("## On a GPU")
        say()
        say(
            "Measured separately with `python benchmarks/gpu_speed.py` on a lent machine (JAX with CUDA), "
            "HalfCheetah-v5, env steps/s of full training and ms per gradient step of the update alone. Taken "
            "before acting was fused into the update's call (one dispatch per step instead of two, which should "
            "help most at update_every 1 on a GPU, where each call is launch-bound); not re-measured since."
        )
        say()
        say("```")
        say(gpu.read_text().strip())
        say("```")
        say()
    paper = min(results[(e, "paper")]["ratio"] for e in envs)
    modern = min(results[(e, "modern")]["ratio"] for e in envs)
    dest = OUT.parent / "PERFORMANCE-quick.md" if quick else ROOT / "docs" / "PERFORMANCE.md"
    kept = ""  # the section benchmarks/sweep_speed.py writes is kept when this one regenerates the file
    marker = "<!-- written by benchmarks/sweep_speed.py -->"
    if dest.exists() and marker in dest.read_text():
        kept = "\n" + marker + dest.read_text().split(marker, 1)[1]
    dest.write_text("\n".join(lines) + "\n" + kept)
    print(f"wrote {dest}")
    print(f"speedup_vs_sb3 paper={paper:.2f} modern={modern:.2f} pendulum_solve={solve_ratio:.2f}")


if __name__ == "__main__":
    main()
