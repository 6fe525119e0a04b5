"""JAX-native environments: ``--env SUITE:Id`` for envs whose step is a pure JAX function (gymnax today).

Such an env runs inside the compiled training loop (jaxloop.py): the env step, the replay write, the sampling and
the update are one program. Each one is also offered as a Gymnasium env (``GymnaxEnv``), so ``ddpgx eval``,
``record``, ``export`` and ``load_policy`` read its runs like any other.

``--env-kwargs`` name fields of the env's parameters (gymnax's ``EnvParams``, e.g. ``max_steps_in_episode=100``;
``max_episode_steps`` is read as that field, as Gymnasium spells it).

Suites ddpgx knows but cannot run here say why in one line (``BLOCKED``); a name that is no suite is left to
envs.py's ``module:Id`` rule.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np

from ddpgx.errors import UserError

SUITES = ("gymnax",)
# suites a user may try that do not install beside what ddpgx pins: what blocks each
BLOCKED = {
    "playground": (
        "MuJoCo Playground (playground 0.2) needs mujoco>=3.3 with its matching mujoco-mjx and brax, but "
        "ddpgx pins mujoco==3.11.0 for gymnasium-robotics' Fetch tasks and Playground's newest release pins an "
        "older mujoco-mjx; use a gymnax env, or a Gymnasium MuJoCo id (Hopper-v5) with the Python loop"
    ),
    "mjx": (
        "MJX envs come through MuJoCo Playground, which does not install beside ddpgx's pinned mujoco==3.11.0; "
        "use a gymnax env, or a Gymnasium MuJoCo id (Hopper-v5) with the Python loop"
    ),
    "brax": (
        "brax's envs are not wired into ddpgx's compiled loop yet; use a gymnax env, or a Gymnasium MuJoCo id "
        "(Hopper-v5) with the Python loop"
    ),
}
PARAM_ALIASES = {"max_episode_steps": "max_steps_in_episode"}


def suite_of(env_id: str) -> str | None:
    """The JAX suite ``env_id`` names (``gymnax`` for ``gymnax:Pendulum-v1``), else None (a Gymnasium env).
    A suite ddpgx cannot run raises a one-line ``UserError`` that says why."""
    if not isinstance(env_id, str) or ":" not in env_id:
        return None
    prefix = env_id.partition(":")[0]
    if prefix in SUITES:
        return prefix
    if prefix in BLOCKED:
        raise UserError(f"--env {env_id}: {BLOCKED[prefix]}")
    return None


def is_jax_env(env_id: str) -> bool:
    return suite_of(env_id) is not None


def _import_gymnax() -> Any:
    try:
        import gymnax
    except ModuleNotFoundError:
        raise UserError("gymnax envs need the gymnax package: pip install 'ddpgx[jaxenvs]'") from None
    return gymnax


@dataclass(frozen=True)
class JaxEnv:
    """A JAX-native env as the compiled loop uses it: pure ``reset(key)`` and ``step(key, state, action)``
    functions (actions in the env's bounds), with its spaces and time limit."""

    env_id: str
    env: Any  # the gymnax Environment
    params: Any  # its EnvParams
    obs_dim: int
    act_dim: int
    low: np.ndarray
    high: np.ndarray
    max_steps: int

    def reset(self, key: Any) -> tuple[Any, Any]:
        """(observation, env state)."""
        return self.env.reset(key, self.params)

    def step(self, key: Any, state: Any, action: Any) -> tuple[Any, Any, Any, Any, Any, Any]:
        """(next observation, next state, reward, terminated, truncated, true final observation). The env resets
        itself when the episode ends: the next observation is then the new episode's first."""
        obs, state, reward, terminated, truncated, info = self.env.step(key, state, action, self.params)
        return obs, state, reward, terminated, truncated, info["final_observation"]


def make_jax_env(env_id: str, kwargs: Iterable[str] | Mapping[str, Any] = ()) -> JaxEnv:
    """The JAX env ``env_id`` names (``gymnax:Pendulum-v1``), checked for DDPG (a bounded Box action space, a
    flat Box observation), with ``kwargs`` set on its parameters."""
    from ddpgx.envs import check_spaces, parse_env_kwargs

    suite = suite_of(env_id)
    if suite != "gymnax":
        raise UserError(f"--env {env_id} is not a JAX env (name one as gymnax:Id)")
    gymnax = _import_gymnax()
    name = env_id.partition(":")[2]
    if name not in gymnax.registered_envs:
        import difflib

        close = difflib.get_close_matches(name, gymnax.registered_envs, n=3, cutoff=0.5)
        hint = f"did you mean {' or '.join('gymnax:' + c for c in close)}?" if close else ""
        raise UserError(
            f"unknown gymnax env '{name}'; {hint or 'gymnax.registered_envs lists them'} (DDPG needs a continuous "
            "one: gymnax:Pendulum-v1, gymnax:MountainCarContinuous-v0)"
        )
    env, params = gymnax.make(name)
    args = {PARAM_ALIASES.get(k, k): v for k, v in parse_env_kwargs(kwargs).items()}
    fields = {f.name for f in dataclasses.fields(params)}
    unknown = sorted(set(args) - fields)
    if unknown:
        raise UserError(
            f"{env_id} has no parameter {', '.join(unknown)} (--env-kwargs); its parameters are "
            f"{', '.join(sorted(fields))}"
        )
    params = params.replace(**args)
    act_space, obs_space = _box(env.action_space(params)), _box(env.observation_space(params))
    check_spaces(env_id, obs_space, act_space)
    return JaxEnv(
        env_id=env_id,
        env=env,
        params=params,
        obs_dim=int(obs_space.shape[0]),
        act_dim=int(act_space.shape[0]),
        low=np.asarray(act_space.low, np.float32),
        high=np.asarray(act_space.high, np.float32),
        max_steps=int(params.max_steps_in_episode),
    )


def _box(space: Any) -> gym.Space:
    """A gymnax space as the Gymnasium space of the same kind (Box; anything else as a Discrete stand-in)."""
    if type(space).__name__ != "Box":
        return gym.spaces.Discrete(int(getattr(space, "n", 2)))
    shape = tuple(space.shape) or (1,)
    low = np.broadcast_to(np.asarray(space.low, np.float32), shape)
    high = np.broadcast_to(np.asarray(space.high, np.float32), shape)
    return gym.spaces.Box(low, high, shape, np.float32)


# ------------------------------------------------------------------------------------- as a Gymnasium env


def _pendulum_state(obs: np.ndarray) -> np.ndarray:
    """Gymnasium Pendulum's state (theta, theta_dot) from the observation (cos, sin, theta_dot)."""
    return np.array([np.arctan2(obs[1], obs[0]), obs[2]], np.float64)


def _mountain_car_state(obs: np.ndarray) -> np.ndarray:
    return np.array(obs[:2], np.float64)  # the observation is the state (position, velocity)


# gymnax envs with a Gymnasium twin of the same dynamics: the twin draws the frames (gymnax has no rgb renderer)
RENDER_TWINS = {"Pendulum-v1": ("Pendulum-v1", _pendulum_state),
                "MountainCarContinuous-v0": ("MountainCarContinuous-v0", _mountain_car_state)}  # fmt: skip


class GymnaxEnv(gym.Env):
    """A gymnax env behind Gymnasium's API, for everything outside the compiled loop (eval, record, export).

    ``reset(seed=s)`` draws the episode from ``jax.random.PRNGKey(s)``; the steps' keys follow from it. The
    episode ends at the env's own time limit (``truncated``) or its termination."""

    metadata = {"render_modes": ["rgb_array"], "render_fps": 20}

    def __init__(self, env_id: str, kwargs: Iterable[str] | Mapping[str, Any] = (), render_mode: str | None = None,
                 **render_args: Any) -> None:  # fmt: skip
        """``render_args`` (a frame size, a camera) are a MuJoCo renderer's; the twins draw at their own size."""
        import jax

        self.jenv = make_jax_env(env_id, kwargs)
        j = self.jenv
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, (j.obs_dim,), np.float32)
        self.action_space = gym.spaces.Box(j.low, j.high, (j.act_dim,), np.float32)
        self.spec = gym.envs.registration.EnvSpec(id=env_id, entry_point=None, max_episode_steps=j.max_steps)
        self.render_mode = render_mode
        self._reset = jax.jit(j.reset)
        self._step = jax.jit(j.step)
        self._key = jax.random.PRNGKey(0)
        self._state: Any = None
        self._obs = np.zeros(j.obs_dim, np.float32)
        self._twin: gym.Env | None = None
        if render_mode is not None:
            name = env_id.partition(":")[2]
            if name not in RENDER_TWINS:
                raise UserError(f"{env_id} has no renderer (ddpgx draws {', '.join(RENDER_TWINS)} only)")
            self._twin = gym.make(RENDER_TWINS[name][0], render_mode="rgb_array")
            self._twin.reset(seed=0)

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[np.ndarray, dict]:
        import jax

        super().reset(seed=seed)
        if seed is not None:
            self._key = jax.random.PRNGKey(seed)
        self._key, sub = jax.random.split(self._key)
        obs, self._state = self._reset(sub)
        self._obs = np.asarray(obs, np.float32)
        return self._obs, {}

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict]:
        import jax

        self._key, sub = jax.random.split(self._key)
        _, state, reward, terminated, truncated, final = self._step(
            sub, self._state, np.asarray(action, np.float32).reshape(self.jenv.act_dim)
        )
        self._state = state  # after the episode's end, the env's own reset: only reset() continues it
        self._obs = np.asarray(final, np.float32)
        return self._obs, float(reward), bool(terminated), bool(truncated), {}

    def render(self) -> np.ndarray | None:
        if self._twin is None:
            return None
        name = self.jenv.env_id.partition(":")[2]
        self._twin.unwrapped.state = RENDER_TWINS[name][1](self._obs)  # drawn from the last observation
        return self._twin.render()

    def close(self) -> None:
        if self._twin is not None:
            self._twin.close()
