"""An environment of your own, as ddpgx trains it: a point on a plane steered to a goal.

Observation: the point's position and the goal's, in [-1, 1]^4. Action: a velocity in [-1, 1]^2 (a step of at
most ``speed``). Reward: minus the distance to the goal, every step; an episode lasts ``episode_steps`` steps.
Importing this module registers it as ``PointGoal-v0``, so either of these works from the repository's root:

    ddpgx train --env examples.point_goal:PointGoal-v0 --total-steps 6000
    ddpgx train --env examples.point_goal:PointGoal --env-kwargs speed=0.2 episode_steps=30

It renders itself with numpy (``render_mode="rgb_array"``), so ``ddpgx record`` can draw it anywhere.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np


class PointGoal(gym.Env):
    metadata = {"render_modes": ["rgb_array"], "render_fps": 30}

    def __init__(
        self,
        render_mode: str | None = None,
        speed: float = 0.1,
        episode_steps: int = 50,
        width: int = 240,
        height: int = 240,
    ) -> None:
        self.observation_space = gym.spaces.Box(-1.0, 1.0, (4,), np.float32)
        self.action_space = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)
        self.render_mode = render_mode
        self.speed, self.episode_steps = float(speed), int(episode_steps)
        self.size = (int(width), int(height))
        self.pos = np.zeros(2)
        self.goal = np.zeros(2)
        self.t = 0

    def _obs(self) -> np.ndarray:
        return np.concatenate([self.pos, self.goal]).astype(np.float32)

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self.pos = self.np_random.uniform(-0.9, 0.9, 2)
        self.goal = self.np_random.uniform(-0.9, 0.9, 2)
        self.t = 0
        return self._obs(), {}

    def step(self, action):
        self.t += 1
        self.pos = np.clip(self.pos + self.speed * np.clip(action, -1.0, 1.0), -1.0, 1.0)
        distance = float(np.linalg.norm(self.pos - self.goal))
        truncated = self.t >= self.episode_steps
        return self._obs(), -distance, False, truncated, {"distance": distance}

    def render(self) -> np.ndarray:
        w, h = self.size
        frame = np.full((h, w, 3), 245, np.uint8)
        ys, xs = np.mgrid[0:h, 0:w]
        for centre, colour, radius in ((self.goal, (220, 60, 60), 0.08), (self.pos, (40, 90, 200), 0.05)):
            cx, cy = (centre[0] + 1) / 2 * (w - 1), (1 - centre[1]) / 2 * (h - 1)
            frame[(xs - cx) ** 2 + (ys - cy) ** 2 <= (radius * w / 2) ** 2] = colour
        return frame


if "PointGoal-v0" not in gym.registry:
    gym.register("PointGoal-v0", entry_point=PointGoal)
