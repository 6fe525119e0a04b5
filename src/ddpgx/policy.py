"""Load a trained policy from a run directory as a plain callable: observation -> action in the env's bounds."""

from __future__ import annotations

import json
from functools import partial
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from flax import serialization

from ddpgx.envs import ActionScaler
from ddpgx.errors import UserError
from ddpgx.io import load_params
from ddpgx.learner import build_networks
from ddpgx.train import load_run_config


def actor_state_of(run_dir: Path, params_file: Path | str | None) -> tuple[Path, dict]:
    """(file used, actor state dict): ``params_file`` (a final.msgpack-style file or a checkpoint directory),
    else the run's final parameters, else its latest valid checkpoint (a run that was stopped early)."""
    from ddpgx import checkpoint as ckpt

    if params_file is not None:
        path = Path(params_file)
        if path.is_dir():
            return path, ckpt.load_actor_state(path)
        return path, load_params(path)["actor"]
    final = run_dir / "final.msgpack"
    if final.exists() or not (run_dir / ckpt.DIRNAME).exists():
        return final, load_params(final)["actor"]
    loaded = ckpt.load(run_dir)
    return loaded.path, loaded.state["actor"]


class Policy:
    """Noise-free learned policy. ``policy(obs)`` accepts one observation or a batch."""

    def __init__(self, run_dir: Path | str, params_file: Path | str | None = None) -> None:
        run_dir = Path(run_dir)
        self.config = load_run_config(run_dir)
        meta = json.loads((run_dir / "config.json").read_text())
        self.obs_dim, self.action_dim = int(meta["obs_dim"]), int(meta["action_dim"])
        self.scaler = ActionScaler(np.asarray(meta["action_low"]), np.asarray(meta["action_high"]))
        self.actor, _ = build_networks(self.config, self.action_dim)
        # only the structure: flax's eager init would compile every small op (about a second on a CPU)
        obs = jax.ShapeDtypeStruct((1, self.obs_dim), jnp.float32)
        template = jax.eval_shape(partial(self.actor.init, jax.random.PRNGKey(0)), obs)
        path, actor_state = actor_state_of(run_dir, params_file)
        self.source = path
        try:
            self.variables = serialization.from_state_dict(template, actor_state)
        except (ValueError, KeyError) as e:
            raise UserError(
                f"the parameters in {path} do not fit the network that {run_dir}/config.json describes ({e})"
            ) from None
        self._apply = jax.jit(lambda v, o: self.actor.apply(v, o, train=False))

    def normalized(self, obs: np.ndarray) -> np.ndarray:
        """Action(s) in [-1, 1]."""
        obs = np.asarray(obs, np.float32)
        single = obs.ndim == 1
        a = np.asarray(self._apply(self.variables, obs[None] if single else obs))
        return a[0] if single else a

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        return self.scaler.to_env(self.normalized(obs))


def load_policy(run_dir: Path | str, params_file: Path | str | None = None) -> Policy:
    """The learned policy of ``run_dir`` (final parameters unless ``params_file`` names others)."""
    return Policy(run_dir, params_file)
