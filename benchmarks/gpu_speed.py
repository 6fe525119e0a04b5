"""Steps/s of ddpgx on whatever device JAX finds (run it on a GPU machine with the `gpu` extra installed).

    python benchmarks/gpu_speed.py [--steps 20000]

Reports, per preset on HalfCheetah-v5: env steps/s of full training (one gradient step per env step, and with
``update_every`` 16) and the ms per gradient step of the update alone at K = 1 and K = 16.
"""

from __future__ import annotations

import argparse
import csv
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))


def main() -> None:
    import jax
    from speed import ddpgx_update_ms

    from ddpgx import preset_config, train

    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=20_000)
    args = ap.parse_args()
    print(f"jax {jax.__version__}, device {jax.devices()[0].device_kind} ({jax.devices()[0].platform})")
    tmp = Path(tempfile.mkdtemp())
    for preset in ("paper", "modern"):
        for k in (1, 16):
            run = tmp / f"{preset}_{k}"
            ls = 1_000
            cfg = preset_config(
                preset, "HalfCheetah-v5", total_steps=ls + args.steps, learning_starts=ls, update_every=k,
                eval_every=10**9, eval_episodes=1, log_every=max(args.steps // 10, 100), checkpoint_every=10**9,
                progress=False, tensorboard=False, plot=False, run_dir=str(run),
            )  # fmt: skip
            train(cfg)
            rows = [r for r in csv.DictReader(open(run / "train.csv")) if int(r["step"]) > ls + cfg.log_every]
            sps = len(rows) * cfg.log_every / sum(cfg.log_every / float(r["sps"]) for r in rows)
            ms = ddpgx_update_ms(cfg, 17, 6, reps=200 // k + 20)
            print(f"HalfCheetah-v5 {preset} update_every={k}: {sps:.0f} env steps/s; update {ms:.3f} ms/step")
    shutil.rmtree(tmp)


if __name__ == "__main__":
    main()
