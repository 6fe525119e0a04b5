"""JAX-native environments: ``--env SUITE:Id`` for envs whose step is a pure JAX function.

- ``gymnax:Id``: gymnax's envs (extra ``jaxenvs``), e.g. gymnax:Pendulum-v1, gymnax:MountainCarContinuous-v0;
- ``playground:Id``: MuJoCo Playground's DM Control Suite tasks on MJX (extra ``playground``), e.g.
  playground:CartpoleBalance, playground:CheetahRun.

Such an env runs inside the compiled training loop (jaxloop.py): the env step, the replay write, the sampling and
the update are one program. Each one is also offered as a Gymnasium env (``JaxGymEnv``), so ``ddpgx eval``,
``record``, ``export`` and ``load_policy`` read its runs like any other.

``--env-kwargs`` name fields of the env's parameters (gymnax's ``EnvParams``, e.g. ``max_steps_in_episode=100``;
Playground's config, e.g. ``episode_length=500``); ``max_episode_steps`` is read as that field, as Gymnasium
spells it.

Suites ddpgx knows but cannot run here say why in one line (``BLOCKED``); a name that is no suite is left to
envs.py's ``module:Id`` rule.

Before a training run exists, ``checked_jax_env`` makes the env and, when ``--env-kwargs`` set its parameters,
probes it (``env_problem``: ``PROBE_STEPS`` steps of uniform random actions, as the warm-up takes them, in
``PROBE_ENVS`` envs, on the host): a value of the wrong type for a parameter, an env that fails at its first step,
observations or rewards of another shape, NaN or inf, episodes that end at their first step, or rewards whose
episode return overflows float32 are refused in one line naming the ``--env-kwargs`` to blame, instead of a
traceback or a run that learns from nothing.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
import numpy as np

from ddpgx.envcheck import check_spaces, parse_env_kwargs
from ddpgx.errors import UserError, describe

SUITES = ("gymnax", "playground")
# suites a user may try that are not wired in: what blocks each
BLOCKED = {
    "mjx": (
        "MJX envs come through MuJoCo Playground: name them playground:Id (its DM Control Suite tasks, e.g. "
        "playground:CartpoleBalance)"
    ),
    "brax": (
        "brax's own envs are not wired into ddpgx's compiled loop; use playground:Id (MJX, e.g. "
        "playground:CheetahRun) or gymnax:Id"
    ),
}
EXTRAS = {"gymnax": "jaxenvs", "playground": "playground"}
# gymnax's envs with a continuous (Box) action space, the ones DDPG can train (docs/guides/jax-envs.md lists them)
GYMNAX_CONTINUOUS = (
    "Pendulum-v1",
    "MountainCarContinuous-v0",
    "Reacher-misc",
    "Swimmer-misc",
    "PointRobot-misc",
)
PARAM_ALIASES = {"gymnax": {"max_episode_steps": "max_steps_in_episode"},
                 "playground": {"max_episode_steps": "episode_length"}}  # fmt: skip
# what checked_jax_env probes before a run exists: this many steps of random actions in this many envs
PROBE_ENVS, PROBE_STEPS = 4, 32
FLOAT32_MAX = float(np.finfo(np.float32).max)  # episode returns are summed in float32 (the ring, the loop)


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


def _import(suite: str) -> Any:
    import importlib

    try:
        return importlib.import_module({"gymnax": "gymnax", "playground": "mujoco_playground"}[suite])
    except ModuleNotFoundError:
        raise UserError(
            f"{suite} envs need the {suite} package: pip install 'ddpgx[{EXTRAS[suite]}]'"
        ) from None


@dataclass(frozen=True)
class JaxEnv:
    """A JAX-native env as the compiled loop uses it: pure ``reset(key) -> (obs, state)`` and
    ``step(key, state, action) -> (next obs, next state, reward, terminated, truncated, true final obs)``, actions
    in the env's bounds; the env resets itself when an episode ends (the next observation is then the new
    episode's first)."""

    env_id: str
    reset: Callable[[Any], tuple[Any, Any]]
    step: Callable[[Any, Any, Any], tuple[Any, Any, Any, Any, Any, Any]]
    obs_dim: int
    act_dim: int
    low: np.ndarray
    high: np.ndarray
    max_steps: int
    defaults: Mapping[str, Any] = field(default_factory=dict)  # its parameters' default values


def make_jax_env(env_id: str, kwargs: Iterable[str] | Mapping[str, Any] = ()) -> JaxEnv:
    """The JAX env ``env_id`` names (``gymnax:Pendulum-v1``, ``playground:CartpoleBalance``), checked for DDPG
    (a bounded Box action space, a flat Box observation), with ``kwargs`` set on its parameters."""
    suite = suite_of(env_id)
    if suite is None:
        raise UserError(f"--env {env_id} is not a JAX env (name one as gymnax:Id or playground:Id)")
    mod = _import(suite)
    name = env_id.partition(":")[2]
    given = parse_env_kwargs(kwargs)
    args = {PARAM_ALIASES[suite].get(k, k): v for k, v in given.items()}
    try:
        return (_gymnax if suite == "gymnax" else _playground)(mod, env_id, name, args)
    except UserError:
        raise
    except Exception as e:  # a value the suite cannot take (Playground's config: a str for an int, ...)
        if not given:
            raise
        raise UserError(f"{env_id} cannot be made with --env-kwargs {_pairs(given)}: {describe(e)}") from None


def _pairs(given: Mapping[str, Any]) -> str:
    return " ".join(f"{k}={v}" for k, v in given.items())


def checked_jax_env(env_id: str, kwargs: Iterable[str] | Mapping[str, Any] = ()) -> JaxEnv:
    """``make_jax_env``, then, when ``--env-kwargs`` set some of its parameters, what the env gives probed
    (``env_problem``) before a run is made of it: a problem is one line naming the ``--env-kwargs`` to blame (each
    one that shows the problem on its own, else all of them). The suites' own parameters are not probed: the probe
    compiles the env's step (seconds for an MJX task) and they have nothing to blame."""
    jenv = make_jax_env(env_id, kwargs)
    given = parse_env_kwargs(kwargs)
    if not given:
        return jenv
    problem = env_problem(jenv)
    if problem is None:
        return jenv

    def alone_fails(k: str) -> bool:
        try:
            return env_problem(make_jax_env(env_id, {k: given[k]})) is not None
        except UserError:
            return True

    blamed = [k for k in given if len(given) == 1 or alone_fails(k)] or list(given)
    suite = suite_of(env_id) or ""
    defaults = [jenv.defaults.get(PARAM_ALIASES.get(suite, {}).get(k, k)) for k in blamed]
    hint = ", ".join(
        f"{k} (default {d})" if d is not None else k for k, d in zip(blamed, defaults, strict=True)
    )
    raise UserError(f"{env_id} with --env-kwargs {_pairs(given)} {problem}; change {hint}")


def env_problem(jenv: JaxEnv) -> str | None:
    """What is wrong with the env for training, as words that follow its name (None when nothing is): its time
    limit, then ``PROBE_STEPS`` steps of uniform random actions in ``PROBE_ENVS`` envs run on the host (one
    compiled scan): it fails, or gives observations or rewards of another shape, NaN or inf, or episodes that all
    end at their first step, or rewards so large that an episode's return overflows float32."""
    import jax
    import jax.numpy as jnp

    if jenv.max_steps < 1:
        return f"ends every episode before its first step (a time limit of {jenv.max_steps} steps)"
    n, t = PROBE_ENVS, PROBE_STEPS
    low, high = jnp.asarray(jenv.low, jnp.float32), jnp.asarray(jenv.high, jnp.float32)

    def run(key: Any) -> Any:
        k_reset, k_steps = jax.random.split(key)
        obs, state = jax.vmap(jenv.reset)(jax.random.split(k_reset, n))

        def body(state: Any, k: Any) -> tuple[Any, Any]:
            k_act, k_env = jax.random.split(k)
            a = jax.random.uniform(k_act, (n, jenv.act_dim), jnp.float32, low, high)
            nxt, state, r, term, trunc, final = jax.vmap(jenv.step)(jax.random.split(k_env, n), state, a)
            return state, (nxt, r, jnp.logical_or(term, trunc), final)

        return obs, jax.lax.scan(body, state, jax.random.split(k_steps, t))[1]

    try:
        first, (obs, reward, done, final) = jax.device_get(jax.jit(run)(jax.random.PRNGKey(0)))
    except UserError:
        raise
    except Exception as e:  # a parameter the env's maths cannot take (a list for a number, ...)
        return f"fails at its first step ({type(e).__name__}: {describe(e)})"
    d = jenv.obs_dim
    for what, x, lead, want in (("first observation", first, (n,), (d,)), ("observation", obs, (t, n), (d,)),
                                ("final observation", final, (t, n), (d,)), ("reward", reward, (t, n), ()),
                                ("episode end", done, (t, n), ())):  # fmt: skip
        if np.shape(x) != (*lead, *want):
            return f"gives a {what} of shape {np.shape(x)[len(lead) :]} where ddpgx expects {want}"
    if not np.isfinite(first).all():
        return "gives a NaN or inf first observation"
    bad = ~(np.isfinite(obs).all(-1) & np.isfinite(final).all(-1) & np.isfinite(reward))
    if bad.any():
        return (f"gives a NaN or inf observation or reward at step {int(np.nonzero(bad.any(-1))[0][0]) + 1} of "
                f"{t} steps of random actions")  # fmt: skip
    if np.asarray(done, bool).all():
        return f"ends every episode at its first step (in {n} envs' {t} steps of random actions)"
    largest = float(np.abs(reward).max())
    if largest * jenv.max_steps > FLOAT32_MAX:
        return (f"gives rewards as large as {largest:.3g} per step: a {jenv.max_steps}-step episode's return "
                "overflows float32")  # fmt: skip
    return None


def _unknown(env_id: str, name: str, known: Iterable[str], suite: str, hint: str) -> UserError:
    import difflib

    close = difflib.get_close_matches(name, list(known), n=3, cutoff=0.5)
    did = f"did you mean {' or '.join(f'{suite}:{c}' for c in close)}? " if close else ""
    return UserError(f"unknown {suite} env '{name}'; {did}({hint})")


def _check_args(env_id: str, args: dict, fields: set[str]) -> None:
    unknown = sorted(set(args) - fields)
    if unknown:
        raise UserError(
            f"{env_id} has no parameter {', '.join(unknown)} (--env-kwargs); its parameters are "
            f"{', '.join(sorted(fields))}"
        )


def _gymnax(gymnax: Any, env_id: str, name: str, args: dict) -> JaxEnv:
    if name not in gymnax.registered_envs:
        raise _unknown(env_id, name, gymnax.registered_envs, "gymnax",
                       "DDPG needs a continuous one: " + ", ".join(f"gymnax:{n}" for n in GYMNAX_CONTINUOUS))  # fmt: skip
    env, params = gymnax.make(name)
    defaults = {f.name: getattr(params, f.name) for f in dataclasses.fields(params)}
    _check_args(env_id, args, set(defaults))
    params = params.replace(**{k: _typed(env_id, k, v, defaults[k]) for k, v in args.items()})
    act_space, obs_space = _box(env.action_space(params)), _box(env.observation_space(params))
    check_spaces(env_id, obs_space, act_space)

    def step(key: Any, state: Any, action: Any) -> tuple[Any, Any, Any, Any, Any, Any]:
        obs, state, reward, terminated, truncated, info = env.step(key, state, action, params)
        return obs, state, reward, terminated, truncated, info["final_observation"]

    return JaxEnv(env_id, lambda key: env.reset(key, params), step, int(obs_space.shape[0]),
                  int(act_space.shape[0]), np.asarray(act_space.low, np.float32),
                  np.asarray(act_space.high, np.float32), int(params.max_steps_in_episode), defaults)  # fmt: skip


def _typed(env_id: str, key: str, value: Any, default: Any) -> Any:
    """``value`` for a parameter whose default is ``default``, as the env's maths takes it: a number for a number
    (a whole one for an integer), true/false for a flag; one line naming the parameter otherwise."""
    number = isinstance(value, int | float) and not isinstance(value, bool)
    if isinstance(default, bool):
        ok, want = isinstance(value, bool), "true or false"
    elif isinstance(default, int):
        ok, want = number and float(value).is_integer(), "a whole number"
        value = int(value) if ok else value
    elif isinstance(default, float):
        ok, want = number, "a number"
    else:
        return value  # an array or a structure: the probe tries it
    if not ok:
        raise UserError(f"{env_id}'s parameter {key} takes {want} (its default is {default}), got {value!r} "
                        "(--env-kwargs)")  # fmt: skip
    return value


PLAYGROUND_IMPL = "jax"  # MJX's pure-JAX pipeline; Playground's default, warp, fails under mujoco-mjx 3.11.0


def _playground(mp: Any, env_id: str, name: str, args: dict) -> JaxEnv:
    """A MuJoCo Playground DM Control Suite task (MJX). Its episodes end at ``episode_length`` steps (a
    truncation) or when the task says ``done`` (a termination); ddpgx counts the steps and resets, as Playground's
    own training wrappers do. Its config's ``action_repeat`` is applied here as those wrappers apply it (the env
    itself ignores it): each action is held for that many env steps, their rewards summed, and ``episode_length``
    counts env steps, so an episode has ``ceil(episode_length / action_repeat)`` agent steps."""
    import jax
    import jax.numpy as jnp

    suite = mp.registry.dm_control_suite.ALL_ENVS
    if name not in suite:
        raise _unknown(env_id, name, suite, "playground",
                       "ddpgx runs Playground's DM Control Suite tasks, whose models ship with it; the locomotion "
                       "and manipulation tasks fetch MuJoCo Menagerie's models at run time")  # fmt: skip
    defaults = mp.registry.get_default_config(name)
    _check_args(env_id, args, set(defaults.keys()))
    env = mp.registry.load(name, config_overrides={"impl": PLAYGROUND_IMPL, **args})
    repeat = args.get("action_repeat", defaults.action_repeat)
    if not isinstance(repeat, int) or isinstance(repeat, bool) or repeat < 1:
        raise UserError(f"{env_id}: action_repeat must be a positive integer (--env-kwargs), got {repeat!r}")
    limit = -(-int(args.get("episode_length", defaults.episode_length)) // repeat)  # in agent steps
    if not isinstance(env.observation_size, int):
        raise UserError(f"{env_id} has a dict observation {env.observation_size}; ddpgx needs a flat one")
    ctrl = np.asarray(env.mj_model.actuator_ctrlrange, np.float32)
    limited = np.asarray(env.mj_model.actuator_ctrllimited, bool)
    low = np.where(limited, ctrl[:, 0], -1.0).astype(np.float32)
    high = np.where(limited, ctrl[:, 1], 1.0).astype(np.float32)
    import gymnasium as gym

    n_obs = int(env.observation_size)
    check_spaces(env_id, gym.spaces.Box(-np.inf, np.inf, (n_obs,)), gym.spaces.Box(low, high))

    def reset(key: Any) -> tuple[Any, Any]:
        s = env.reset(key)
        return s.obs, (s, jnp.zeros((), jnp.int32))

    def held(s: Any, action: Any) -> Any:  # action_repeat env steps with one action, their rewards summed
        if repeat == 1:
            return env.step(s, action)
        s, rewards = jax.lax.scan(
            lambda c, _: (lambda n: (n, n.reward))(env.step(c, action)), s, None, repeat
        )
        return s.replace(reward=jnp.sum(rewards))

    def step(key: Any, state: Any, action: Any) -> tuple[Any, Any, Any, Any, Any, Any]:
        s, t = state
        s = held(s, action)
        t = t + 1
        terminated = s.done > 0.5
        truncated = jnp.logical_and(t >= limit, ~terminated)
        done = jnp.logical_or(terminated, truncated)
        r_obs, r_state = reset(key)
        new = jax.tree_util.tree_map(lambda a, b: jnp.where(done, a, b), r_state, (s, t))
        return jnp.where(done, r_obs, s.obs), new, s.reward, terminated, truncated, s.obs

    return JaxEnv(env_id, reset, step, n_obs, len(low), low, high, limit, dict(defaults))


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
RENDER_TWINS = {"gymnax:Pendulum-v1": ("Pendulum-v1", _pendulum_state),
                "gymnax:MountainCarContinuous-v0": ("MountainCarContinuous-v0", _mountain_car_state)}  # fmt: skip


class JaxGymEnv(gym.Env):
    """A JAX-native env behind Gymnasium's API, for everything outside the compiled loop (eval, record, export).

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
            if env_id not in RENDER_TWINS:
                raise UserError(f"{env_id} has no renderer (ddpgx draws {', '.join(RENDER_TWINS)} only)")
            self._twin = gym.make(RENDER_TWINS[env_id][0], render_mode="rgb_array")
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
        self._twin.unwrapped.state = RENDER_TWINS[self.jenv.env_id][1](
            self._obs
        )  # drawn from the last observation
        return self._twin.render()

    def close(self) -> None:
        if self._twin is not None:
            self._twin.close()
