"""`her8`'s gradient step at batch 2048 against the same-shape matmul chain (as docs/PERFORMANCE.md does for
`modern`): is the learner's half of a FetchPush cycle at XLA:CPU's ceiling for matrices of its shape? Run it on an
idle machine:

    MUJOCO_GL=egl .venv/bin/python benchmarks/her8_update.py [--write]

It times one cycle's compiled call (40 gradient steps on 40 batches of 2048, as the engines call it), counts the
update's matmul FLOPs (benchmarks/speed.py's count), and runs a bare chain of (2048 x 256) @ (256 x 256) matmuls
with a tanh between as one program. ``--write`` puts the table into docs/ACTORS.md between its
``<!-- her8update:begin -->`` markers.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from speed import chain_gflops, matmul_gflops, update_flops  # noqa: E402

DOC = Path(__file__).resolve().parent.parent / "docs" / "ACTORS.md"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--write", action="store_true")
    a = ap.parse_args()
    import jax

    from ddpgx.envs import make_run_env
    from ddpgx.learner import Learner
    from ddpgx.presets import preset_config
    from ddpgx.replay import Batch

    cfg = preset_config("her8", "FetchPush-v4")
    env = make_run_env(cfg)
    obs_dim, act_dim = env.observation_space.shape[0], env.action_space.shape[0]
    env.close()
    learner = Learner(cfg, obs_dim, act_dim)
    state = learner.init(0)
    rng = np.random.default_rng(0)
    k, b = cfg.gradient_steps, cfg.batch_size
    batch = Batch(
        rng.normal(size=(k, b, obs_dim)).astype(np.float32),
        rng.uniform(-1, 1, (k, b, act_dim)).astype(np.float32),
        -rng.uniform(0, 1, (k, b)).astype(np.float32),
        rng.normal(size=(k, b, obs_dim)).astype(np.float32),
        np.zeros((k, b), np.float32),
    )
    for _ in range(3):
        state, m = learner.update(state, batch)
    jax.block_until_ready(m)
    best = float("inf")
    for _ in range(5):
        t = time.perf_counter()
        state, m = learner.update(state, batch)
        jax.block_until_ready(m)
        best = min(best, time.perf_counter() - t)
    ms = best / k * 1e3
    width = max(*cfg.actor_hidden, *cfg.critic_hidden)
    flops = update_flops(obs_dim, act_dim, cfg.actor_hidden, cfg.critic_hidden, cfg.critic_action_layer, b)
    rate = flops / (ms * 1e-3) / 1e9
    chain = chain_gflops(b, width, seconds=2.0)
    peak = matmul_gflops()
    table = "\n".join([
        f"Measured {time.strftime('%Y-%m-%d')} on {os.cpu_count()} cores, idle, jax {jax.__version__} on cpu; "
        "`MUJOCO_GL=egl .venv/bin/python benchmarks/her8_update.py --write`.",
        "",
        f"| her8 on FetchPush (obs+goal {obs_dim}, act {act_dim}, 3x{width}, batch {b}) | value |",
        "|---|---|",
        f"| one gradient step (in a call of {k}) | {ms:.2f} ms |",
        f"| a cycle's {k} gradient steps | {best:.2f} s |",
        f"| matmul FLOPs per gradient step | {flops / 1e9:.2f} GFLOP |",
        f"| the update's rate | {rate:.0f} GFLOP/s |",
        f"| bare same-shape chain ({b} x {width}) @ ({width} x {width}), tanh between | {chain:.0f} GFLOP/s |",
        f"| update / chain | {rate / chain * 100:.0f}% |",
        f"| float32 matmul peak (1024^3) | {peak:.0f} GFLOP/s |",
    ])  # fmt: skip
    print(table)
    if a.write:
        text = DOC.read_text()
        begin, end = "<!-- her8update:begin -->", "<!-- her8update:end -->"
        head, _, rest = text.partition(begin)
        _, _, tail = rest.partition(end)
        DOC.write_text(f"{head}{begin}\n{table}\n{end}{tail}")


if __name__ == "__main__":
    main()
