"""What ddpgx asks of every env, Gymnasium's (envs.py) and JAX-native (jaxenvs.py) alike: its keyword arguments
read from ``--env-kwargs`` text, and spaces DDPG can act in. Both env modules build on this one, below them.

The inverse of :func:`parse_env_kwargs`, a dict written as ``key=value`` text, is ``config.format_env_kwargs``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

import gymnasium as gym
import numpy as np

from ddpgx.errors import UserError

# where ddpgx.DDPG registers an env instance or a lambda it was given: ids that exist in that process only
OBJECT_NAMESPACE = "ddpgx-object"


def check_object_env(env_id: str, why: str = "") -> None:
    """One line when an env object given to ``DDPG`` (it exists in its process only) is asked for where it cannot
    be: in another process, or (``why``) by something that must rebuild it elsewhere."""
    if not env_id.startswith(OBJECT_NAMESPACE + "/"):
        return
    fix = "an env id, module:Id or a factory importable by name (module:make_env)"
    if why:
        raise UserError(
            f"{env_id} is an env object given to DDPG(...), which lives in its process only; {why} needs {fix}"
        )
    if env_id not in gym.registry:
        raise UserError(
            f"{env_id} was an env object given to DDPG(...) in another process and cannot be rebuilt here; to "
            f"resume, sweep or evaluate a run elsewhere, train it on {fix}"
        )


def parse_env_kwargs(pairs: Iterable[str] | Mapping[str, Any]) -> dict[str, Any]:
    """``("a=1", "b=false", "c=text")`` -> ``{"a": 1, "b": False, "c": "text"}`` (JSON values, else text)."""
    if isinstance(pairs, Mapping):
        return dict(pairs)
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = str(pair).partition("=")
        key = key.strip()
        if not sep or not key.isidentifier():
            raise UserError(
                f"--env-kwargs takes key=value pairs, got '{pair}' (e.g. terminate_when_unhealthy=false)"
            )
        out[key] = _parse_value(raw.strip())
    return out


def _parse_value(raw: str) -> Any:
    python_words = {"True": True, "False": False, "None": None}
    if raw in python_words:
        return python_words[raw]
    try:
        return json.loads(raw)
    except json.JSONDecodeError:
        return raw


def check_spaces(env_id: str, obs_space: gym.Space, act_space: gym.Space) -> None:
    if not isinstance(act_space, gym.spaces.Box):
        kind = type(act_space).__name__
        raise UserError(
            f"{env_id} has a {kind} action space; DDPG needs a continuous Box action space "
            "(pick an env like Pendulum-v1, Hopper-v5 or HalfCheetah-v5)"
        )
    if not (np.all(np.isfinite(act_space.low)) and np.all(np.isfinite(act_space.high))):
        raise UserError(
            f"{env_id} has an action Box with infinite bounds; DDPG's tanh actor needs finite bounds "
            "(wrap the env with gymnasium.wrappers.ClipAction or RescaleAction)"
        )
    if np.any(act_space.high <= act_space.low):
        raise UserError(f"{env_id} has an action Box with high <= low in some dimension")
    if not isinstance(obs_space, gym.spaces.Box) or len(obs_space.shape) != 1:
        raise UserError(
            f"{env_id} has observation space {obs_space}; ddpgx needs a flat Box "
            "(wrap it with gymnasium.wrappers.FlattenObservation)"
        )
