"""How a HER run's normalizer sees its goals: the normalized desired-goal inputs of sampled (relabelled) training
batches beside those of real evaluation goals, per goal coordinate, and the share of inputs at the clip.

    python benchmarks/her_norm_check.py RUN_DIR [--batches 20]

RUN_DIR is a HER run (``--her --obs-norm``) with a checkpoint; its replay and its normalizer's statistics are
read from the latest checkpoint, and evaluation goals come from fresh resets of the run's env.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from ddpgx import checkpoint as ckpt
from ddpgx.envs import make_env
from ddpgx.goals import find_flatten, goal_layout
from ddpgx.her import HerBuffer
from ddpgx.obsnorm import Normalizer
from ddpgx.run import load_run_config


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run", type=Path)
    ap.add_argument("--batches", type=int, default=20)
    ap.add_argument("--eval-goals", type=int, default=500)
    a = ap.parse_args()
    cfg = load_run_config(a.run)
    env = make_env(cfg.env, None, cfg.env_kwargs, cfg.env_module)
    lay = goal_layout(env)
    flat = find_flatten(env)
    loaded = ckpt.load(a.run, lambda _l: None)
    buf = HerBuffer(cfg.buffer_size, env.spec.max_episode_steps, lay, env.action_space.shape[0], flat.reward_fn,
                    cfg.her_k, cfg.her_strategy, seed=123)  # fmt: skip
    buf.load_state_dict(loaded.replay)
    norm = Normalizer.for_config(cfg, env.observation_space.shape[0], lay)
    norm.load_state(loaded.manifest["obs_stats"])
    mean, std = norm.mean_std()
    clip = cfg.obs_clip
    train = buf.sample(cfg.batch_size, a.batches).obs.reshape(-1, lay.size)
    real = np.stack([env.reset(seed=10_000 + i)[0] for i in range(a.eval_goals)])
    d = lay.desired
    z = lambda x: (x - mean) / std  # noqa: E731
    print(f"run {a.run} ({cfg.env}, step {loaded.manifest['counters']['step']}), std floor "
          f"{cfg.obs_std_floor}, goal statistics {cfg.goal_stats}")  # fmt: skip
    print(f"desired-goal std used by the networks: {np.array2string(std[d], precision=6)}")
    rows = []
    for name, x in (("training batches (relabelled 80%)", train), ("evaluation goals", real)):
        n = z(x)[:, d]
        rows.append({"inputs": name, "mean |normalized|": np.abs(n).mean(0).round(3).tolist(),
                     "share at clip": (np.abs(n) >= clip).mean(0).round(3).tolist()})  # fmt: skip
        print(f"{name:>36}: mean |normalized desired goal| x,y,z = {rows[-1]['mean |normalized|']}, "
              f"share at +-{clip} = {rows[-1]['share at clip']}")  # fmt: skip
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
