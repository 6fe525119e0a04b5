"""Checkpoint size and save/load time for HalfCheetah-v5 (modern preset) with a full 1M-transition buffer.

python benchmarks/checkpoint_io.py
"""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from ddpgx import checkpoint as ckpt
from ddpgx import preset_config
from ddpgx.learner import Learner
from ddpgx.replay import ReplayBuffer


def main() -> None:
    cfg = preset_config("modern", "HalfCheetah-v5")
    state = Learner(cfg, 17, 6).init(0)
    buf = ReplayBuffer(1_000_000, 17, 6)
    rng = np.random.default_rng(0)
    # a full buffer: 1M transitions in 1000-step episodes
    n = buf.rows
    buf.obs[:] = rng.normal(size=buf.obs.shape)
    buf.action[:] = rng.uniform(-1, 1, buf.action.shape)
    buf.reward[:] = rng.normal(size=n)
    buf.valid[:] = True
    buf.valid[1000::1001] = False
    buf.filled, buf.pos = n, 0
    d = Path(tempfile.mkdtemp(prefix="ddpgx-ckpt-"))
    try:
        manifest = {"env": cfg.env, "preset": cfg.preset, "counters": {}, "rng": {}}
        t = time.perf_counter()
        path = ckpt.save(d, 1_000_000, state, buf.state_dict(), manifest)
        t_save = time.perf_counter() - t
        size = sum(f.stat().st_size for f in path.iterdir())
        t = time.perf_counter()
        loaded = ckpt.load(d)
        t_load = time.perf_counter() - t
        assert np.array_equal(loaded.replay["obs"], buf.obs)
        print(
            f"HalfCheetah-v5 modern, 1M transitions: checkpoint {size / 2**20:.1f} MiB "
            f"(replay {(path / 'replay.npz').stat().st_size / 2**20:.1f} MiB, "
            f"state {(path / 'state.msgpack').stat().st_size / 2**20:.2f} MiB); "
            f"save {t_save:.2f} s (fsync and sha256 included), load+verify {t_load:.2f} s"
        )
    finally:
        shutil.rmtree(d)


if __name__ == "__main__":
    main()
