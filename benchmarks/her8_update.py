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

sys.path.insert(0, str(Path(__file__).resolve().parent))
from archive import write_block  # noqa: E402
from speed import chain_gflops, ddpgx_update_ms, matmul_gflops, update_flops  # noqa: E402

DOC = Path(__file__).resolve().parent.parent / "docs" / "ACTORS.md"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--write", action="store_true")
    a = ap.parse_args()
    import jax

    from ddpgx.envs import make_run_env
    from ddpgx.presets import preset_config

    cfg = preset_config("her8", "FetchPush-v4")
    env = make_run_env(cfg)
    obs_dim, act_dim = env.observation_space.shape[0], env.action_space.shape[0]
    env.close()
    k, b = cfg.gradient_steps, cfg.batch_size
    ms = ddpgx_update_ms(cfg, obs_dim, act_dim, reps=5, calls_of=k)  # one cycle's call of 40 steps, best of 3
    best = ms * k / 1e3
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
        write_block(
            DOC,
            "<!-- her8update:begin -->",
            "<!-- her8update:end -->",
            f"<!-- her8update:begin -->\n{table}\n<!-- her8update:end -->",
        )


if __name__ == "__main__":
    main()
