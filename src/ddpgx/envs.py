"""Environment construction and the one place where actions cross between [-1, 1] and the env's bounds.

An env is named the way Gymnasium names it, so a user's own env works like a built-in one:

- ``Hopper-v5``: a registered id;
- ``my_pkg.envs:MyEnv-v0``: import ``my_pkg.envs`` (which registers ``MyEnv-v0``), then look the id up;
- ``my_pkg.envs:MyEnvClass``: an entry point, a ``gymnasium.Env`` subclass (or factory) in that module;
- with ``env_module="my_pkg.envs"``: that module is imported first, for ids it registers.

``env_kwargs`` (``"key=value"`` strings; values read as JSON, else as text) go to the constructor.
"""

from __future__ import annotations

import difflib
import importlib
import os
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.envs.registration import EnvSpec

from ddpgx.envcheck import check_object_env, check_spaces, parse_env_kwargs
from ddpgx.errors import UserError, describe, reset_error, warn
from ddpgx.goals import FlattenGoal, check_goal_env
from ddpgx.jaxenvs import JaxGymEnv, suite_of


class EnvArgumentError(UserError):
    """The env's constructor refused a keyword argument."""


@dataclass(frozen=True)
class ActionScaler:
    """Affine map between the actor's [-1, 1]^n and the env's Box [low, high] (bounds may be asymmetric). ``to_env``
    takes numpy arrays, or jax arrays given jax bounds (the compiled loop maps its actions with it, in the graph)."""

    low: Any
    high: Any

    def to_env(self, a: Any) -> Any:
        a = a.clip(-1.0, 1.0)
        return (self.low + (a + 1.0) * 0.5 * (self.high - self.low)).astype(self.low.dtype)

    def from_env(self, a: np.ndarray) -> np.ndarray:
        return (2.0 * (np.asarray(a, np.float64) - self.low) / (self.high - self.low) - 1.0).astype(
            np.float32
        )


def import_module(name: str) -> ModuleType:
    """Import a user's env module; the current directory is searched too, as ``python -m`` would."""
    try:
        try:
            return importlib.import_module(name)
        except ModuleNotFoundError as e:
            cwd = os.getcwd()
            if e.name is None or not name.startswith(e.name) or cwd in sys.path:
                raise
            sys.path.append(cwd)
            return importlib.import_module(name)
    except Exception as e:  # the user's own code may raise anything on import
        why = describe(e) if isinstance(e, (ImportError, OSError)) else f"{type(e).__name__}: {describe(e)}"
        if name.endswith(".py"):  # a file name where a module name goes: myenv.py:Dot
            stem = Path(name).stem
            raise UserError(
                f"cannot import env module '{name}': name the module, not its file: {stem}:ENV (from the file's "
                "directory, or with that directory on PYTHONPATH)"
            ) from None
        raise UserError(
            f"cannot import env module '{name}' ({why}); install it or add its directory to PYTHONPATH"
        ) from None


ROBOTICS_PREFIXES = (
    "Fetch",
    "HandManipulate",
    "HandReach",
    "AdroitHand",
    "PointMaze",
    "AntMaze",
    "FrankaKitchen",
)


def check_env_id(env_id: str) -> None:
    check_object_env(env_id)
    if env_id in gym.registry:
        return
    if env_id.startswith(ROBOTICS_PREFIXES):  # gymnasium-robotics' envs register when it is imported
        try:
            import contextlib
            import io

            # its import prints a notice about Adroit envs' rewards (not the Fetch tasks) to stderr; ddpgx's
            # output stays one line per problem
            with contextlib.redirect_stderr(io.StringIO()):
                import gymnasium_robotics
        except ModuleNotFoundError:
            raise UserError(
                f"{env_id} is a gymnasium-robotics env, which is not installed: pip install 'ddpgx[robotics]'"
            ) from None
        gym.register_envs(gymnasium_robotics)
        if env_id in gym.registry:
            return
    close = difflib.get_close_matches(env_id, list(gym.registry), n=3, cutoff=0.5)
    hint = f"did you mean {' or '.join(close)}?" if close else "see gymnasium.pprint_registry() for the list"
    raise UserError(
        f"unknown environment '{env_id}'; {hint} (an env registered with gym.register inside a script is unknown "
        "to other processes: name it module:Id, e.g. my_envs:MyEnv-v0, so ddpgx can import the module)"
    )


def resolve_env(env: str, module: str = "") -> str | EnvSpec:
    """What ``gym.make`` is given for ``env`` (see the module docstring), after importing what it names."""
    if module:
        import_module(module)
    if ":" not in env:
        check_env_id(env)
        return env
    mod_name, _, name = env.partition(":")
    if not mod_name or not name:
        raise UserError(f"--env '{env}' must read module:EnvId or module:EnvClass")
    mod = import_module(mod_name)
    if name in gym.registry:
        return name
    obj = getattr(mod, name, None)
    if obj is None:
        registered = [k for k, s in gym.registry.items() if str(s.entry_point).startswith(mod_name + ":")]
        hint = f"; it registers {', '.join(registered)}" if registered else ""
        raise UserError(f"module '{mod_name}' has no env class named {name} and registers no id {name}{hint}")
    if not callable(obj):
        raise UserError(f"{env} is a {type(obj).__name__}, not a gymnasium.Env class or factory")
    return EnvSpec(id=name.replace(".", "_"), entry_point=obj)


def refused_kwargs(env_id: str, target: str, args: dict, e: Exception) -> str:
    """The line for keyword arguments an env's constructor refused: the ones it does not take, and the ones it
    does, read from its signature (``Target1D takes no keyword 'targt' (it takes: target, render_mode)``)."""
    import inspect

    try:
        spec = gym.spec(target)
        ctor = (
            gym.envs.registration.load_env_creator(spec.entry_point)
            if isinstance(spec.entry_point, str)
            else spec.entry_point
        )
        params = inspect.signature(ctor).parameters
    except Exception:  # noqa: BLE001 - no signature to read: say what the env said
        return f"{env_id} refused the keyword arguments {', '.join(sorted(args))} ({describe(e)}); check --env-kwargs"
    takes = [n for n, p in params.items() if n != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    unknown = [k for k in args if k not in params]
    name = getattr(ctor, "__name__", env_id)
    if not unknown or any(p.kind is p.VAR_KEYWORD for p in params.values()):
        return f"{env_id} refused the keyword arguments {', '.join(sorted(args))} ({describe(e)}); check --env-kwargs"
    words = ", ".join(repr(k) for k in unknown)
    return f"{name} ({env_id}) takes no keyword {words} (it takes: {', '.join(takes) or 'none'}); check --env-kwargs"


def make_env(
    env_id: str,
    render_mode: str | None = None,
    kwargs: Iterable[str] | Mapping[str, Any] = (),
    module: str = "",
    **extra: Any,
) -> gym.Env:
    """A Gymnasium env checked for DDPG: flat Box observations, bounded Box actions. ``kwargs`` are the run's
    ``env_kwargs``; ``extra`` are keyword arguments of this call only (a renderer's frame size). A JAX-native env
    (``gymnax:Id``, see jaxenvs.py) comes behind Gymnasium's API."""
    if suite_of(env_id) is not None:
        return JaxGymEnv(env_id, kwargs, render_mode, **extra)
    target = resolve_env(env_id, module)
    args = {**parse_env_kwargs(kwargs), **extra}
    mode = (
        {} if render_mode is None else {"render_mode": render_mode}
    )  # an env may take no render_mode at all
    try:
        env = gym.make(target, disable_env_checker=True, **mode, **args)
    except gym.error.DependencyNotInstalled as e:  # pragma: no cover - depends on the machine
        raise UserError(f"{env_id} needs a missing dependency: {e}") from None
    except TypeError as e:
        # `ddpgx record`, or a GIF, of an env that cannot render
        if mode and "argument 'render_mode'" in str(e):
            raise UserError(
                f"{env_id} takes no render_mode, so it cannot be filmed: accept render_mode='rgb_array' in its "
                "constructor and return frames from render() (docs/guides/own-env.md)"
            ) from None
        if not args and not mode:
            raise UserError(f"{env_id} could not be made ({str(e).splitlines()[0]})") from None
        raise EnvArgumentError(refused_kwargs(env_id, target, args, e)) from None
    except UserError:
        raise
    except Exception as e:  # noqa: BLE001 - an unknown namespace, an env's own constructor failing: one line
        hint = (
            " (an id with a namespace may need its package imported: --env-module PACKAGE)"
            if "/" in env_id
            else ""
        )
        raise UserError(f"{env_id} could not be made: {describe(e)}{hint}") from None
    if isinstance(
        env.observation_space, gym.spaces.Dict
    ):  # a goal env (Fetch and the like): flattened for HER
        env = FlattenGoal(env, check_goal_env(env_id, env))
    check_spaces(env_id, env.observation_space, env.action_space)
    if not has_time_limit(
        env
    ):  # an episode that never ends would never be logged, learned from or stopped at
        env = DefaultTimeLimit(env, DEFAULT_MAX_EPISODE_STEPS)
    return env


class DefaultTimeLimit(gym.wrappers.TimeLimit):
    """The time limit of an env that declares none. Many such envs end their own episodes (a goal reached, a
    budget of their own), so nothing is said until this limit actually cuts an episode: then one warning, once
    per process, judged from what the env did rather than from which wrappers it has."""

    warned = False
    ddpgx_default_limit = True

    def step(self, action: Any) -> Any:
        obs, reward, terminated, truncated, info = super().step(action)
        if truncated and not terminated and self._elapsed_steps >= self._max_episode_steps:
            if not DefaultTimeLimit.warned:
                DefaultTimeLimit.warned = True
                name = self.spec.id if self.spec is not None else type(self.unwrapped).__name__
                warn(
                    f"{name} declares no time limit and ran an episode to {self._max_episode_steps} steps: ddpgx "
                    "ends its episodes there (pass --env-kwargs max_episode_steps=N for another limit)"
                )
        return obs, reward, terminated, truncated, info


DEFAULT_MAX_EPISODE_STEPS = (
    1000  # the time limit of an env that has none (``--env-kwargs max_episode_steps=N``)
)


def has_time_limit(env: gym.Env) -> bool:
    e = env
    while isinstance(e, gym.Wrapper):
        if isinstance(e, gym.wrappers.TimeLimit):
            return True
        e = e.env
    return bool(env.spec is not None and env.spec.max_episode_steps)


def reset_checked(env: gym.Env, seed: int | None = None, first: bool = True) -> np.ndarray:
    """``env.reset()``'s observation as float32; a NaN or inf in it is blamed on reset, where it comes from."""
    obs = np.asarray(env.reset(seed=seed)[0], np.float32)
    if not np.isfinite(obs).all():
        name = env.spec.id if env.spec is not None else type(env.unwrapped).__name__
        raise reset_error(name, obs.tolist(), first)
    return obs


def scaler_for(env: gym.Env) -> ActionScaler:
    space = env.action_space
    return ActionScaler(np.asarray(space.low, np.float64), np.asarray(space.high, np.float64))


def make_run_env(cfg: Any, render_mode: str | None = None, **extra: Any) -> gym.Env:
    """The env a Config names, with its keyword arguments and module (``make_env``)."""
    return make_env(cfg.env, render_mode, cfg.env_kwargs, cfg.env_module, **extra)
