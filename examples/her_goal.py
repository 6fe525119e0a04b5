"""DDPG + HER (hindsight experience replay) on a small goal-conditioned env with a sparse reward.

``PointReach`` (below) is a goal env as gymnasium-robotics' Fetch tasks are: a Dict observation of
``observation``, ``achieved_goal`` and ``desired_goal``, a vectorized ``compute_reward(achieved, desired, info)``,
and ``info["is_success"]``. The reward is -1 every step until the point is within 0.1 of the goal, 0 there: plain
replay almost never sees a 0, HER relabels stored transitions with goals the episode did reach. From the
repository's root:

    python examples/her_goal.py                       # at most 5k env steps: success 0.05 at 1k, 1.00 at 2k
    python examples/her_goal.py --steps 1000 --out /tmp/her_goal

The same on a robot arm (gymnasium-robotics, MuJoCo): ``DDPG("FetchReach-v4", preset="her")``, or
``ddpgx train --env FetchReach-v4 --preset her --total-steps 10000`` (success ~1.0 within a few thousand steps).
"""

from __future__ import annotations

import argparse
import csv
import shutil
import sys
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

RADIUS = 0.1  # success: within this distance of the goal


class PointReach(gym.Env):
    """A point in [-1, 1]^2 moved by up to 0.1 per axis and step; reach the goal (sparse reward), 50 steps."""

    metadata = {"render_modes": []}

    def __init__(self, render_mode: str | None = None) -> None:
        box = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)
        self.observation_space = gym.spaces.Dict(
            {"observation": box, "achieved_goal": box, "desired_goal": box}
        )
        self.action_space = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)
        self.render_mode = render_mode
        self.pos = np.zeros(2, np.float32)
        self.goal = np.zeros(2, np.float32)

    def compute_reward(self, achieved_goal: Any, desired_goal: Any, info: Any) -> np.ndarray:
        """Vectorized over leading axes: HER calls it on whole batches of relabelled goals."""
        distance = np.linalg.norm(np.asarray(achieved_goal) - np.asarray(desired_goal), axis=-1)
        return -(distance > RADIUS).astype(np.float32)

    def _obs(self) -> dict[str, np.ndarray]:
        return {
            "observation": self.pos.copy(),
            "achieved_goal": self.pos.copy(),
            "desired_goal": self.goal.copy(),
        }

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self.pos = self.np_random.uniform(-1, 1, 2).astype(np.float32)
        self.goal = self.np_random.uniform(-1, 1, 2).astype(np.float32)
        return self._obs(), {"is_success": 0.0}

    def step(self, action: Any):
        self.pos = np.clip(self.pos + 0.1 * np.clip(action, -1, 1), -1, 1).astype(np.float32)
        reward = float(self.compute_reward(self.pos, self.goal, {}))
        return self._obs(), reward, False, False, {"is_success": float(reward == 0.0)}


# Registered on import with its time limit, so "examples.her_goal:PointReach-v0" names it for any process.
if "PointReach-v0" not in gym.registry:
    gym.register("PointReach-v0", entry_point="examples.her_goal:PointReach", max_episode_steps=50)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=5_000, help="env steps to train for")
    parser.add_argument("--out", type=Path, default=Path("runs/examples/her_goal"), help="output folder")
    args = parser.parse_args(argv)

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # "examples.her_goal" importable
    from ddpgx import DDPG, StopOnReward

    run_dir = args.out / "run"
    if run_dir.exists():
        shutil.rmtree(run_dir)
    # The `her` preset is baselines' DDPG + HER (`ddpgx presets her`): HER replay with k = 4 future goals,
    # observation normalization, 30% random actions, 2 episodes then 40 gradient steps. Its 3x256 networks are
    # more than a 2-D point needs; 64-64 learns it faster.
    model = DDPG(
        "examples.her_goal:PointReach-v0",
        preset="her",
        run_dir=run_dir,
        actor_hidden=(64, 64),
        critic_hidden=(64, 64),
        buffer_size=50_000,
        eval_every=min(1_000, max(args.steps // 2, 1)),
        eval_episodes=20,
    )
    stop = StopOnReward(1.0, metric="success")  # stop once an evaluation's 20 episodes all reach their goals
    model.learn(args.steps, callback=stop)
    if stop.stopped_at is not None:
        print(f"stopped at step {stop.stopped_at}: every evaluation episode reached its goal")

    with open(run_dir / "eval.csv") as f:
        rows = list(csv.DictReader(f))
    for row in rows:
        print(f"step {int(row['step']):>6}: eval success rate {float(row['success']):.2f}, "
              f"mean return {float(row['mean_return']):.1f}")  # fmt: skip

    # predict takes the env's Dict observation as it comes (flattened and normalized as in training).
    env = gym.make("PointReach-v0")
    reached = 0
    for seed in range(20):
        obs, _ = env.reset(seed=10_000 + seed)
        for _ in range(50):
            obs, reward, terminated, truncated, info = env.step(model.predict(obs)[0])
            if info["is_success"] or terminated or truncated:
                break
        reached += int(info["is_success"])
    print(f"20 fresh goals: {reached} reached; run directory {run_dir}")


if __name__ == "__main__":
    main()
