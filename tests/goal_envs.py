"""A small goal env for the HER tests: a point in the plane must reach a goal, sparse -1/0 reward, 50 steps."""

from __future__ import annotations

import gymnasium as gym
import numpy as np

RADIUS = 0.1  # success: within this distance of the goal
HEIGHT = 0.002  # height=True: the achieved goal's third coordinate after the first step


class PointGoal(gym.Env):
    """Dict observation (observation: position and velocity-free position; achieved_goal: position; desired_goal:
    goal), actions move the point by up to 0.1 per axis; reward -1 until it is within RADIUS of the goal."""

    metadata = {"render_modes": ["rgb_array"], "render_fps": 20}

    def __init__(
        self, render_mode=None, compute_reward: bool = True, keys: str = "standard", height: bool = False
    ):
        box = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)
        names = ("observation", "achieved_goal", "desired_goal") if keys == "standard" else ("state", "goal")
        self.observation_space = gym.spaces.Dict({k: box for k in names})
        # height: 3-D goals whose third coordinate is HEIGHT in every achieved goal after the first step and 0 in
        # every desired goal, as FetchPush's goal height is constant and a pushed block's is a fraction of a mm off
        self.height = height
        if height:
            goal_box = gym.spaces.Box(-1.0, 1.0, (3,), np.float32)
            self.observation_space = gym.spaces.Dict({"observation": box, "achieved_goal": goal_box,
                                                      "desired_goal": goal_box})  # fmt: skip
        self.z = 0.0
        self.action_space = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)
        self.render_mode = render_mode
        if not compute_reward:
            self.compute_reward = None  # a goal env without it
        self.pos = np.zeros(2, np.float32)
        self.goal = np.zeros(2, np.float32)

    def _obs(self) -> dict:
        if self.height:
            return {
                "observation": self.pos.copy(),
                "achieved_goal": np.array([*self.pos, self.z], np.float32),
                "desired_goal": np.array([*self.goal, 0.0], np.float32),
            }
        return {
            "observation": self.pos.copy(),
            "achieved_goal": self.pos.copy(),
            "desired_goal": self.goal.copy(),
        }

    def compute_reward(self, achieved_goal, desired_goal, info):  # noqa: F811 - vectorized, as gymnasium-robotics'
        a, g = np.asarray(achieved_goal), np.asarray(desired_goal)
        d = np.linalg.norm(a[..., :2] - g[..., :2], axis=-1)
        return -(d > RADIUS).astype(np.float32)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.pos = self.np_random.uniform(-1, 1, 2).astype(np.float32)
        self.goal = self.np_random.uniform(-1, 1, 2).astype(np.float32)
        self.z = 0.0
        return self._obs(), {"is_success": 0.0}

    def step(self, action):
        self.pos = np.clip(self.pos + 0.1 * np.clip(action, -1, 1), -1, 1).astype(np.float32)
        self.z = HEIGHT
        reward = float(self.compute_reward(self.pos, self.goal, {}))
        return self._obs(), reward, False, False, {"is_success": float(reward == 0.0)}

    def render(self):
        img = np.full((64, 64, 3), 255, np.uint8)
        for p, c in ((self.goal, (0, 160, 0)), (self.pos, (200, 0, 0))):
            x, y = ((p + 1) * 31.5).astype(int)
            img[max(0, y - 2) : y + 3, max(0, x - 2) : x + 3] = c
        return img


gym.register("PointGoal-v0", entry_point=PointGoal, max_episode_steps=50)


class StepCounter(gym.Env):
    """obs = [steps since reset, an offset drawn at reset]; never terminates, so its time limit (7 steps) truncates
    every episode: a stored next_obs of [0, ...] would be the next episode's first observation."""

    def __init__(self, render_mode=None):
        self.observation_space = gym.spaces.Box(-100.0, 100.0, (2,), np.float32)
        self.action_space = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)
        self.t, self.offset = 0, 0.0

    def _obs(self):
        return np.array([self.t, self.offset], np.float32)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t, self.offset = 0, float(self.np_random.uniform(1, 2))
        return self._obs(), {}

    def step(self, action):
        self.t += 1
        return self._obs(), float(action[0]), False, False, {}


gym.register("StepCounter-v0", entry_point=StepCounter, max_episode_steps=7)
