"""``ddpgx.DDPG``: the object API an SB3 user reaches for, a thin layer over ``train``, the run directory and
``load_policy`` (nothing is learned twice)::

    model = DDPG("Pendulum-v1", preset="pendulum")
    model.learn(10_000, callback=StopOnReward(-200))
    action, _ = model.predict(obs, deterministic=True)
    model.save("pendulum.msgpack")
    model = DDPG.load("pendulum.msgpack")

``env`` is an id (``"Hopper-v5"``, ``"module:Id"``, ``"module:Class"``), a ``gym.Env`` instance (wrappers
included) or a zero-argument factory returning one. A factory importable by name is recorded as ``module:name``,
so ``--resume``, sweeps and ``ddpgx eval`` can rebuild it; an instance (or a lambda) lives only in this process:
``learn`` works, and everything that must rebuild the env elsewhere refuses it in one line.
"""

from __future__ import annotations

import copy
import itertools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gymnasium as gym
from flax import serialization

from ddpgx import runfiles
from ddpgx.envcheck import OBJECT_NAMESPACE
from ddpgx.errors import UserError, describe
from ddpgx.host import Interrupted
from ddpgx.policy import Policy, load_policy
from ddpgx.presets import default_preset, preset_config, resolve
from ddpgx.run import FINAL_PARAMS
from ddpgx.train import train

_objects = itertools.count(1)


def env_name_for(env: Any) -> str:
    """What ``Config.env`` records for ``env``: an id as given; a factory importable by name as ``module:name``;
    anything else registered in this process's Gymnasium registry under ``ddpgx-object/...``."""
    if isinstance(env, str):
        return env
    if isinstance(env, gym.Env):
        return _register(type(env.unwrapped).__name__, _copies_of(env))
    if callable(env):
        module, qual = getattr(env, "__module__", None), getattr(env, "__qualname__", "")
        if module and module != "__main__" and qual and "<" not in qual:
            return f"{module}:{qual}"
        return _register(getattr(env, "__name__", "factory").strip("<>"), env)
    raise UserError(
        f"DDPG(env=...) takes an env id, a gymnasium.Env instance or a factory returning one, got "
        f"{type(env).__name__} {str(env)[:60]!r}"
    )


def _copies_of(instance: gym.Env) -> Callable[[], gym.Env]:
    """The instance itself the first time (the training env), deep copies afterwards (the probe, evaluation and
    more envs: each needs its own state)."""
    given = [False]

    def make() -> gym.Env:
        if not given[0]:
            given[0] = True
            return instance
        try:
            return copy.deepcopy(instance)
        except Exception as e:  # noqa: BLE001 - whatever the env holds that cannot be copied
            raise UserError(
                f"the env instance {type(instance.unwrapped).__name__} cannot be copied for evaluation "
                f"({describe(e)}); pass a factory instead: DDPG(lambda: make_my_env(), ...)"
            ) from None

    return make


def _register(name: str, entry_point: Callable[[], gym.Env]) -> str:
    env_id = f"{OBJECT_NAMESPACE}/{''.join(c if c.isalnum() else '_' for c in name)}{next(_objects)}-v0"
    gym.register(id=env_id, entry_point=entry_point, disable_env_checker=True)
    return env_id


class DDPG:
    """One run: made by the first ``learn``, continued by the next (as ``--resume --total-steps`` does)."""

    def __init__(self, env: Any, preset: str | None = None, run_dir: str | Path | None = None, **config: Any):
        if config.get("num_seeds", 1) != 1:
            raise UserError(
                "DDPG(...) is one run of one seed; train several seeds in one compiled program with "
                "ddpgx.train(preset_config(preset, env, num_seeds=S)), then load each seed's directory with "
                "DDPG.load(GROUP/<env>__<preset>__s<seed>)"
            )
        env_id = env_name_for(env)
        # an env instance: its id's default, as for the id itself (a factory is not called before learn: its
        # env's id is unknown here, and it gets the default of an unknown id, `modern`)
        if preset is None and isinstance(env, gym.Env):
            preset = default_preset(getattr(env.spec, "id", None) or env_id)
        over = {**config, **({"run_dir": str(run_dir)} if run_dir is not None else {})}
        self.config = resolve(preset_config(preset or "", env_id, **over))
        self._policy: Policy | None = None
        self._file: Path | None = None  # the policy file this model was loaded from (DDPG.load of a file)

    @property
    def run_dir(self) -> Path:
        return Path(self.config.run_dir)

    def learn(self, total_steps: int, callback: Any = None) -> DDPG:
        """Train until env step ``total_steps`` in all (a second call continues the same run). A callback that
        returns False stops the run after a checkpoint; ``learn`` then returns, and a later ``learn`` continues."""
        if self._file is not None:
            raise UserError(
                f"{self._file} holds a policy only (no replay buffer, no optimizer state), so it cannot be trained "
                f"further: continue its run with DDPG.load(RUN_DIR).learn(n) (it was {self.run_dir}), or train a "
                "new one with DDPG(env, ...)"
            )
        self.config = self.config.replace(total_steps=total_steps)
        self._policy = None
        try:
            # a directory with a config.json is this model's run, checkpointed or not (one stopped before its first
            # checkpoint starts over); anything else is a new run
            train(self.config, resume=(self.run_dir / "config.json").is_file(), callback=callback)
        except Interrupted as e:
            if e.signum:  # Ctrl-C or SIGTERM: the user's, not a callback's
                raise
        return self

    def policy(self, which: str = "final") -> Policy:
        """The learned policy (``which``: "final", or "best": the best noise-free evaluation's)."""
        if which != "final":
            if self._file is not None and not (self.run_dir / "config.json").is_file():
                raise UserError(
                    f"{self._file} holds one policy; the {which!r} one is in its run directory ({self.run_dir}, "
                    "not here): DDPG.load(RUN_DIR).policy(...)"
                )
            return load_policy(self.run_dir, which=which)
        if self._policy is None:
            if not (self.run_dir / "config.json").is_file():
                raise UserError("this DDPG has not learned yet: call .learn(total_steps) first")
            self._policy = load_policy(self.run_dir)
        return self._policy

    def predict(self, obs: Any, deterministic: bool = True) -> tuple[Any, None]:
        """``(action, None)`` as SB3 returns it, for one observation or a batch (Dict observations of goal envs
        too). The policy is deterministic: exploration noise belongs to training, so ``deterministic=False`` is
        refused rather than silently ignored."""
        if not deterministic:
            raise UserError(
                "DDPG's policy is deterministic; predict(obs, deterministic=False) would need exploration noise, "
                "which ddpgx adds only while training"
            )
        return self.policy()(obs), None

    def save(self, path: str | Path) -> Path:
        """One file holding the policy and the run's description: ``DDPG.load`` and ``load_policy`` read it.
        The policy is the one ``predict`` uses: the run's final one, or, for a run a callback stopped early, its
        latest checkpoint's."""
        policy = self.policy()
        if self._file is not None:  # the loaded file's policy, as predict has it (not its run's newer state)
            data = self._file.read_bytes()
        else:
            data = serialization.msgpack_serialize(self._payload(policy))
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        runfiles.atomic_write_bytes(path, data)
        return path

    def _payload(self, policy: Policy) -> dict[str, Any]:
        """What ``save`` writes for a model of a run: its final parameters, or its latest checkpoint's actor."""
        if (self.run_dir / FINAL_PARAMS).is_file():
            payload = runfiles.load_params(self.run_dir / FINAL_PARAMS)
        else:  # stopped by a callback (or the stop file): the latest checkpoint's actor, as predict has it
            payload = {"format": runfiles.PARAMS_FORMAT, "step": int(policy.step), "critic": {},
                       "actor": runfiles.to_numpy(serialization.to_state_dict(policy.variables))}  # fmt: skip
        payload["run"] = (self.run_dir / "config.json").read_text()
        return payload

    @classmethod
    def load(cls, path: str | Path) -> DDPG:
        """A DDPG whose policy is the one saved in ``path`` (a file from ``save``) or a run directory's."""
        path = Path(path)
        policy = load_policy(path)
        model = cls.__new__(cls)
        model.config = policy.config
        model._policy = policy
        model._file = None if path.is_dir() else path.resolve()
        if path.is_dir():
            model.config = model.config.replace(run_dir=str(path))
        return model

    def __repr__(self) -> str:
        return f"DDPG(env={self.config.env!r}, preset={self.config.preset!r}, run_dir={str(self.run_dir)!r})"
