"""What CrossQ's critic costs per gradient step, against `modern`'s update, on Hopper-v5's shapes (obs 11, action 3,
batch 256): the `crossq` preset with its 2048-wide critic and with narrower ones. Ratios come from one process.

    python benchmarks/crossq_cost.py
    python benchmarks/crossq_cost.py --parts    # crossq256's update with one of its parts taken out at a time
"""

from __future__ import annotations

import platform
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

from ddpgx import preset_config
from ddpgx.learner import Batch, Learner

K, B, OBS, ACT = 20, 256, 11, 3


def batches() -> Batch:
    r = np.random.default_rng(0)
    f = lambda *s: jnp.asarray(r.normal(size=s), jnp.float32)  # noqa: E731
    return Batch(f(K, B, OBS), jnp.asarray(r.uniform(-1, 1, (K, B, ACT)), jnp.float32), f(K, B), f(K, B, OBS),
                 jnp.zeros((K, B), jnp.float32))  # fmt: skip


def ms_per_step(cfg) -> float:
    learner = Learner(cfg, OBS, ACT)
    state, data = learner.init(0), batches()
    state, _ = learner.update(state, data)  # compile
    jax.block_until_ready(state)
    best = float("inf")
    for _ in range(3):
        t = time.perf_counter()
        state, _ = learner.update(state, data)
        jax.block_until_ready(state)
        best = min(best, (time.perf_counter() - t) / K * 1e3)
    return best


PARTS = {  # crossq256 with one part taken out: what each costs per gradient step
    "crossq256": {},
    "policy_delay 1 (actor every step, no lax.cond)": {"policy_delay": 1},
    "no batch renorm": {"batch_renorm": False},
    "no joint pass (target from a separate pass)": {"joint_critic_pass": False},
    "one critic": {"twin_critic": False},
    "modern-shaped (no renorm, no joint, one critic)": {"batch_renorm": False, "joint_critic_pass": False,
                                                        "twin_critic": False},
}  # fmt: skip


def report(cases: list[tuple[str, object]], against: str, width: int) -> None:
    """Each case's ms per gradient step and its ratio to the first case's, printed as it is measured."""
    base = None
    for name, cfg in cases:
        ms = ms_per_step(cfg)
        base = base or ms
        print(f"{name:{width}s} {ms:9.2f} ms per gradient step   {ms / base:7.2f}x {against}", flush=True)


def main() -> None:
    print(f"{platform.machine()}, {jax.device_count()} x {jax.devices()[0].platform}, jax {jax.__version__}")
    if "--parts" in sys.argv:
        parts = [(name, preset_config("crossq256", "Hopper-v5", **over)) for name, over in PARTS.items()]
        report(parts, "crossq256", 50)
        return
    cases = [("modern", preset_config("modern", "Hopper-v5"))] + [
        (f"crossq, critic {w}-{w}", preset_config("crossq", "Hopper-v5", critic_hidden=(w, w)))
        for w in (256, 512, 2048)
    ]
    report(cases, "modern", 24)


if __name__ == "__main__":
    main()
