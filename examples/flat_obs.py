"""Any registered env with a Dict observation (dm_control through Shimmy, and the like), flattened for ddpgx.

ddpgx takes a flat Box observation, or a goal env's Dict (``observation``, ``achieved_goal``, ``desired_goal``) for
HER. Other Dict observations, such as dm_control's ``{"position": ..., "velocity": ...}``, are refused in one line;
this factory makes the env and wraps it with ``gymnasium.wrappers.FlattenObservation`` (the keys in sorted order,
concatenated), so one command line trains it, from the repository's root:

    ddpgx train --env examples.flat_obs:Flat --env-module shimmy \\
        --env-kwargs env_id=dm_control/cartpole-balance-v0

``env_id`` names the env to make; ``--env-module`` imports the module that registers it (``module=...`` among the
kwargs does the same). Any other keyword argument goes to that env's constructor, and ``max_episode_steps=N`` sets
the time limit as it does for every env. docs/ENVS.md has the commands and the measured numbers.
"""

from __future__ import annotations

import importlib
from typing import Any

import gymnasium as gym


def Flat(env_id: str, module: str = "", render_mode: str | None = None, **kwargs: Any) -> gym.Env:  # noqa: N802
    """``gym.make(env_id, **kwargs)`` with its observation flattened into one Box."""
    if module:
        importlib.import_module(module)
    if env_id.startswith("dm_control/") and ("width" in kwargs or "height" in kwargs):
        # Shimmy takes a frame's size in render_kwargs (``ddpgx record`` passes width and height)
        size = {k: kwargs.pop(k) for k in ("width", "height") if k in kwargs}
        kwargs["render_kwargs"] = {**kwargs.get("render_kwargs", {}), **size}
    mode = {} if render_mode is None else {"render_mode": render_mode}
    return gym.wrappers.FlattenObservation(gym.make(env_id, **mode, **kwargs))
