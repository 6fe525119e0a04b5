"""Your own environment, with Gymnasium wrappers, trained through the Python API.

``CartReach`` (below) is a cart on a rail pushed towards a target: observation (position, velocity, target),
action a force in [-5, 5], reward minus the distance to the target (and a little for the force). It has no time
limit of its own. ``make_env`` builds it and wraps it:

- ``RelativeTarget``, an observation wrapper of our own: (target - position, velocity) instead of the raw state;
- ``gymnasium.wrappers.TimeLimit``: episodes of 100 steps (truncation, which DDPG bootstraps through).

ddpgx maps its actor's [-1, 1] to any bounded Box itself, so the [-5, 5] force needs no RescaleAction.
From the repository's root:

    python examples/own_env.py                        # 10k env steps: about -70 at random, -5 learned
    python examples/own_env.py --steps 2000 --out /tmp/own_env

The same env from the command line (the run records ``examples.own_env:make_env``, so ``ddpgx eval``,
``record`` and ``train --resume`` rebuild it; from the repository's root):

    ddpgx train --env examples.own_env:make_env --env-kwargs episode_steps=50 --total-steps 10000
    ddpgx train --env examples.own_env:CartReach-v0 --total-steps 10000     # the id this module registers
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


class CartReach(gym.Env):
    """A unit mass on a rail in [-1, 1]: push it to the target and hold it there."""

    metadata = {"render_modes": []}

    def __init__(self, render_mode: str | None = None, dt: float = 0.05) -> None:
        high = np.array([1.0, 3.0, 1.0], np.float32)
        self.observation_space = gym.spaces.Box(-high, high, dtype=np.float32)  # position, velocity, target
        self.action_space = gym.spaces.Box(-5.0, 5.0, (1,), np.float32)  # a force, in the env's own units
        self.render_mode, self.dt = render_mode, float(dt)
        self.x = self.v = self.target = 0.0

    def _obs(self) -> np.ndarray:
        return np.array([self.x, self.v, self.target], np.float32)

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self.x, self.target = (float(u) for u in self.np_random.uniform(-0.9, 0.9, 2))
        self.v = 0.0
        return self._obs(), {}

    def step(self, action: Any):
        force = float(np.clip(np.asarray(action).reshape(-1)[0], -5.0, 5.0))
        self.v = float(np.clip(self.v + force * self.dt, -3.0, 3.0))
        self.x = float(np.clip(self.x + self.v * self.dt, -1.0, 1.0))
        if abs(self.x) == 1.0:  # the rail's ends stop the cart
            self.v = 0.0
        distance = abs(self.x - self.target)
        reward = -distance - 0.001 * force**2
        return self._obs(), reward, False, False, {"distance": distance}


class RelativeTarget(gym.ObservationWrapper):
    """(target - position, velocity): what the policy needs, independent of where the target is."""

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        self.observation_space = gym.spaces.Box(
            np.array([-2.0, -3.0], np.float32), np.array([2.0, 3.0], np.float32), dtype=np.float32
        )

    def observation(self, observation: np.ndarray) -> np.ndarray:
        x, v, target = observation
        return np.array([target - x, v], np.float32)


def make_env(episode_steps: int = 100, render_mode: str | None = None) -> gym.Env:
    """The wrapped env. Keyword arguments come from ``env_kwargs`` (``--env-kwargs`` on the command line)."""
    return gym.wrappers.TimeLimit(RelativeTarget(CartReach(render_mode)), max_episode_steps=episode_steps)


# Registered on import, so "examples.own_env:CartReach-v0" names it too (max_episode_steps as TimeLimit's).
if "CartReach-v0" not in gym.registry:
    gym.register("CartReach-v0", entry_point="examples.own_env:make_env")


def episode_returns(act: Any, episodes: int, seed: int) -> list[float]:
    """Returns of ``episodes`` fresh episodes of ``make_env()`` acting with ``act(obs)``."""
    env, returns = make_env(), []
    for i in range(episodes):
        obs, _ = env.reset(seed=seed + i)
        done, total = False, 0.0
        while not done:
            obs, reward, terminated, truncated, _ = env.step(act(obs))
            total += float(reward)
            done = terminated or truncated
        returns.append(total)
    return returns


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=10_000, help="env steps to train for")
    parser.add_argument("--out", type=Path, default=Path("runs/examples/own_env"), help="output folder")
    args = parser.parse_args(argv)

    # The env as an importable factory, "module:function", as --env names it: the run directory records it, so
    # other processes (ddpgx eval, --resume, sweeps) can rebuild it. This file runs as __main__, so its folder's
    # parent (the repository's root) goes on sys.path to make "examples.own_env" importable.
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from ddpgx import DDPG

    # An env *instance* or a lambda works in this process too, DDPG(make_env(), ...), but cannot be rebuilt
    # elsewhere (ddpgx eval on the run refuses it in one line).
    run_dir = args.out / "run"
    if run_dir.exists():
        shutil.rmtree(run_dir)
    model = DDPG(
        "examples.own_env:make_env",
        preset="pendulum",  # small networks and a short warm-up: 1000 random steps, then 1 update per step
        env_kwargs={"episode_steps": 100},
        run_dir=run_dir,
        eval_every=min(2_000, max(args.steps // 2, 1)),
    )
    model.learn(args.steps)

    # Evaluate on fresh episodes of the wrapped env: the learned policy against uniformly random forces.
    rng = np.random.default_rng(0)
    learned = episode_returns(lambda obs: model.predict(obs)[0], 20, seed=1000)
    random = episode_returns(lambda obs: rng.uniform(-5, 5, 1).astype(np.float32), 20, seed=1000)
    print(f"20 fresh episodes: learned policy {np.mean(learned):.1f} +- {np.std(learned):.1f}, "
          f"random forces {np.mean(random):.1f} +- {np.std(random):.1f}")  # fmt: skip
    with open(run_dir / "eval.csv") as f:
        last = list(csv.DictReader(f))[-1]
    print(f"the run's final evaluation (step {last['step']}): mean return {float(last['mean_return']):.1f}; "
          f"run directory {run_dir} (recorded env: {model.config.env})")  # fmt: skip


if __name__ == "__main__":
    main()
