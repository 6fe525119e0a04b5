"""Files of a run: config.json and parameters (flax msgpack, never pickle), written atomically."""

from __future__ import annotations

import dataclasses
import json
import os
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
from flax import serialization

from ddpgx.checkpoint import to_numpy
from ddpgx.config import Config
from ddpgx.errors import UserError
from ddpgx.goals import goal_layout
from ddpgx.version import __version__

PARAMS_FORMAT = 1


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write to a temporary name in the same directory, fsync, then rename over ``path``."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_json(path: Path, obj: Any) -> None:
    atomic_write_bytes(path, (json.dumps(obj, indent=2) + "\n").encode())


def versions() -> dict[str, str]:
    """The versions config.json records (and `ddpgx --version` prints): ddpgx's own from its source, so an editable
    install reports the code it runs, and the installed releases of the packages its numbers depend on."""
    out = {"ddpgx": __version__}
    for pkg in ("jax", "jaxlib", "flax", "optax", "gymnasium", "mujoco", "numpy"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = "not installed"
    return out


def module_roots(cfg: Config) -> list[str]:
    """The directories the env's own modules (``--env module:Id``, ``--env-module``) were imported from, as
    sys.path entries: recorded so that ``eval``, ``record`` and ``--resume`` run from another directory find them."""
    names = [cfg.env_module] + (
        [cfg.env.partition(":")[0]] if isinstance(cfg.env, str) and ":" in cfg.env else []
    )
    roots = []
    for name in filter(None, names):
        top = sys.modules.get(name.split(".")[0])
        if top is None:
            continue  # not imported by name (gymnax:..., playground:...): nothing to find again
        file = getattr(top, "__file__", None)
        if file:
            root = Path(file).parent.parent if Path(file).name == "__init__.py" else Path(file).parent
        elif getattr(top, "__path__", None):  # a namespace package
            root = Path(list(top.__path__)[0]).parent
        else:
            continue
        if str(root.resolve()) not in roots:
            roots.append(str(root.resolve()))
    return roots


def run_manifest(cfg: Config, env: gym.Env) -> dict[str, Any]:
    layout = goal_layout(env)
    return {
        "config": dataclasses.asdict(cfg),
        "env_paths": module_roots(cfg),
        "versions": versions(),
        "obs_dim": int(env.observation_space.shape[0]),
        "action_dim": int(env.action_space.shape[0]),
        "action_low": np.asarray(env.action_space.low, np.float64).tolist(),
        "action_high": np.asarray(env.action_space.high, np.float64).tolist(),
        "action_dtype": str(
            np.dtype(env.action_space.dtype)
        ),  # what a loaded policy's actions are returned as
        # goal envs: [observation dim, goal dim] of the flat [observation, achieved_goal, desired_goal] input
        "goal_layout": None if layout is None else [layout.obs_dim, layout.goal_dim],
    }


def save_params(path: Path, actor: Any, critic: Any, step: int | None = None) -> None:
    """The policy's actor variables and the critic's (params and batch statistics) as flax msgpack, with the env
    step they are of. The caller gives the policy's actor: the averaged one with --policy-avg."""
    payload = {
        "format": PARAMS_FORMAT,
        "step": -1 if step is None else int(step),
        "actor": serialization.to_state_dict(actor),
        "critic": serialization.to_state_dict(critic),
    }
    atomic_write_bytes(path, serialization.msgpack_serialize(to_numpy(payload)))


def load_params(path: Path) -> dict[str, Any]:
    try:
        payload = serialization.msgpack_restore(path.read_bytes())
    except FileNotFoundError:
        raise UserError(f"parameter file {path} does not exist") from None
    except Exception as e:  # msgpack raises several types on garbage
        raise UserError(
            f"{path} is not a ddpgx parameter file ({type(e).__name__}); is it truncated?"
        ) from None
    if not isinstance(payload, dict) or payload.get("format") != PARAMS_FORMAT:
        raise UserError(f"{path} has an unknown format; expected ddpgx parameters format {PARAMS_FORMAT}")
    return payload
