"""Load a trained policy from a run directory as a plain callable: observation -> action in the env's bounds."""

from __future__ import annotations

import json
from functools import partial
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from flax import serialization

from ddpgx import checkpoint as ckpt
from ddpgx.envs import ActionScaler
from ddpgx.errors import UserError
from ddpgx.goals import KEYS, RAW_CLIP
from ddpgx.learner import build_networks
from ddpgx.run import BEST_PARAMS, FINAL_PARAMS, config_from_dict, load_run_config
from ddpgx.runfiles import load_params


def actor_state_of(run_dir: Path, params_file: Path | str | None, template: dict) -> tuple[Path, dict, int]:
    """(file used, actor state dict, env step or -1): ``params_file`` (a final.msgpack-style file or a checkpoint
    directory), else the run's final parameters, else its latest valid checkpoint (a run stopped early, or an
    extension still under way). Whatever is loaded must fit ``template``: the actor the run's config implies."""

    def fits(actor: dict) -> str | None:
        return ckpt.tree_mismatch(template, actor)

    def from_params(path: Path) -> tuple[Path, dict, int]:
        payload = load_params(path)
        problem = fits(payload["actor"]) if isinstance(payload.get("actor"), dict) else "it holds no actor"
        if problem:
            raise UserError(
                f"{path} does not fit the network that {run_dir}/config.json describes: {problem}"
            )
        return path, payload["actor"], int(payload.get("step", -1))

    if params_file is not None:
        path = Path(params_file)
        if path.is_dir():
            actor, step = ckpt.load_actor_state(path, check=fits)  # verified once: sha256 of every file
            return path, actor, step
        return from_params(path)
    final = run_dir / FINAL_PARAMS
    if final.exists() or not (run_dir / ckpt.DIRNAME).exists():
        return from_params(final)
    loaded = ckpt.load(run_dir, check=lambda ld: fits(ckpt.policy_actor(ld.state) or {}), replay=False)
    return loaded.path, ckpt.policy_actor(loaded.state), int(loaded.manifest["step"])


def saved_run(path: Path) -> dict:
    """The run description (config.json's content) inside a policy file written by ``DDPG.save``."""
    run = load_params(path).get("run")
    if not isinstance(run, str):
        raise UserError(
            f"{path} holds parameters but no run description; load_policy takes a run directory, or a file "
            "written by DDPG.save"
        )
    return json.loads(run)


class Policy:
    """Noise-free learned policy. ``policy(obs)`` accepts one observation or a batch."""

    def __init__(self, run_dir: Path | str, params_file: Path | str | None = None) -> None:
        run_dir = Path(run_dir)
        if run_dir.is_file():  # a policy file of DDPG.save: the parameters and the run's config.json in one
            meta = saved_run(run_dir)
            self.config = config_from_dict(meta["config"])
            run_dir, params_file = run_dir.parent, run_dir
        else:
            self.config = load_run_config(run_dir)
            meta = json.loads((run_dir / "config.json").read_text())
        self.obs_dim, self.action_dim = int(meta["obs_dim"]), int(meta["action_dim"])
        # actions come back in the env's action dtype (float32 for runs from before it was recorded), so that
        # env.action_space.contains(action) holds, as SB3's predict gives
        dtype = np.dtype(meta.get("action_dtype", "float32"))
        self.scaler = ActionScaler(
            np.asarray(meta["action_low"], dtype), np.asarray(meta["action_high"], dtype)
        )
        self.actor, _ = build_networks(self.config, self.action_dim)
        # only the structure: flax's eager init would compile every small op (about a second on a CPU)
        obs = jax.ShapeDtypeStruct((1, self.obs_dim), jnp.float32)
        template = jax.eval_shape(partial(self.actor.init, jax.random.PRNGKey(0)), obs)
        path, actor_state, self.step = actor_state_of(run_dir, params_file, template)
        self.source = path
        self.variables = serialization.from_state_dict(template, actor_state)
        self._apply = jax.jit(lambda v, o: self.actor.apply(v, o, train=False))

    def normalized(self, obs: np.ndarray) -> np.ndarray:
        """Action(s) in [-1, 1]. A goal env's Dict observation is flattened as in training (goals.FlattenGoal)."""
        if isinstance(obs, dict):
            parts = [np.asarray(obs[k], np.float32) for k in KEYS]
            obs = np.clip(np.concatenate(parts, axis=-1), -RAW_CLIP, RAW_CLIP)
        try:
            obs = np.asarray(obs, np.float32)
        except (TypeError, ValueError):
            raise UserError(
                f"the policy of {self.config.env} takes numeric observations of shape ({self.obs_dim},) or "
                f"(batch, {self.obs_dim}), got {type(obs).__name__} {str(obs)[:60]!r}"
            ) from None
        if obs.ndim not in (1, 2) or obs.shape[-1] != self.obs_dim:
            raise UserError(
                f"the policy of {self.config.env} takes observations of shape ({self.obs_dim},) or "
                f"(batch, {self.obs_dim}), got {obs.shape}"
            )
        bad = ~np.isfinite(obs)
        if bad.any():  # a broken sensor must not drive an actuator to its bound
            where = np.argwhere(bad)[:5].tolist()
            raise UserError(
                f"the observation holds {int(bad.sum())} NaN or inf entries (at {where}); the policy acts only on "
                "finite observations"
            )
        single = obs.ndim == 1
        a = np.asarray(self._apply(self.variables, obs[None] if single else obs))
        return a[0] if single else a

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        return self.scaler.to_env(self.normalized(obs))


def params_for(
    run_dir: Path | str, which: str = "final", params_file: Path | str | None = None
) -> Path | None:
    """The parameter file ``which`` names: None for final (final.msgpack, else the latest checkpoint), best.msgpack
    for best; an explicit ``params_file`` wins."""
    if params_file:
        return Path(params_file)
    if which not in ("final", "best"):
        raise UserError(f"--which must be final or best, got {which}")
    if which == "final":
        return None
    best = Path(run_dir) / BEST_PARAMS
    if not best.is_file():
        raise UserError(
            f"{run_dir} has no {BEST_PARAMS} (it keeps the best evaluation's policy once an evaluation has run; "
            "runs made before ddpgx kept one have none): use --which final"
        )
    return best


def load_policy(run_dir: Path | str, params_file: Path | str | None = None, which: str = "final") -> Policy:
    """The learned policy of ``run_dir``: its final parameters, or with ``which="best"`` those of its best
    noise-free evaluation (best.msgpack), unless ``params_file`` names others."""
    if not isinstance(run_dir, (str, Path)):
        raise UserError(
            f"load_policy takes a run directory or a policy file (a str or Path), got {type(run_dir).__name__} "
            f"{str(run_dir)[:60]!r}"
        )
    return Policy(run_dir, params_for(run_dir, which, params_file))
