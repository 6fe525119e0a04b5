"""``ddpgx export``: a run's deterministic policy as one ONNX graph that runs without JAX.

The graph is the whole policy: (for goal envs) the Dict flattening with the +-200 clip, the observation
normalization of ``--obs-norm``, batch normalization in inference mode, the actor with its tanh, and the map to the
env's action bounds. Its batch dimension is dynamic. Before anything is written, onnxruntime runs the model on up to
1,000 observations (from the run's replay buffer, else drawn from the observation space) and its actions must equal
``load_policy(run)``'s to ``TOLERANCE``; if they do not, nothing is written and ``ExportMismatch`` says by how much.

Needs the ``export`` extra (jax2onnx, onnx, onnxruntime).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jax.numpy as jnp
import numpy as np

from ddpgx import checkpoint as ckpt
from ddpgx.envs import make_env
from ddpgx.errors import UserError
from ddpgx.goals import KEYS, RAW_CLIP, GoalLayout, goal_layout
from ddpgx.policy import Policy, load_policy
from ddpgx.run import load_run_config
from ddpgx.runfiles import atomic_write_bytes
from ddpgx.version import __version__

TOLERANCE = 1e-5  # max |onnx - jax| over the check's actions, in the env's units
CHECK_ROWS = 1000
EXTRA = "pip install 'ddpgx[export]' (jax2onnx, onnx, onnxruntime)"


class ExportMismatch(Exception):
    """The ONNX model's actions differ from the JAX policy's by more than the tolerance (exit code 1)."""


@dataclass(frozen=True)
class ExportResult:
    path: Path
    max_diff: float
    checked: int
    check_source: str
    inputs: tuple[str, ...]


def _need_extra() -> tuple[Any, Any, Any]:
    try:
        import jax2onnx
        import onnx
        import onnxruntime
    except ImportError as e:
        raise UserError(f"ddpgx export needs the export extra ({e.name} is not installed): {EXTRA}") from None
    return jax2onnx, onnx, onnxruntime


def goal_layout_of(run_dir: Path) -> GoalLayout | None:
    """The goal layout config.json recorded, or the one of the run's env (runs older than the record)."""
    meta = json.loads((run_dir / "config.json").read_text())
    if "goal_layout" in meta:
        g = meta["goal_layout"]
        return None if g is None else GoalLayout(int(g[0]), int(g[1]))
    cfg = load_run_config(run_dir)
    env = make_env(cfg.env, None, cfg.env_kwargs, cfg.env_module)
    try:
        return goal_layout(env)
    finally:
        env.close()


def policy_function(policy: Policy, layout: GoalLayout | None):
    """The policy as a pure jax function of its ONNX inputs: (B, obs_dim), or three (B, k) goal-env parts."""
    low = jnp.asarray(policy.scaler.low, jnp.float32)
    high = jnp.asarray(policy.scaler.high, jnp.float32)
    variables, actor = policy.variables, policy.actor

    def act(flat: jnp.ndarray) -> jnp.ndarray:
        a = jnp.clip(actor.apply(variables, flat, train=False), -1.0, 1.0)
        return low + (a + 1.0) * 0.5 * (high - low)

    if layout is None:
        return act

    def act_goal(
        observation: jnp.ndarray, achieved_goal: jnp.ndarray, desired_goal: jnp.ndarray
    ) -> jnp.ndarray:
        flat = jnp.concatenate([observation, achieved_goal, desired_goal], axis=-1)
        return act(jnp.clip(flat, -RAW_CLIP, RAW_CLIP))

    return act_goal


def check_observations(
    run_dir: Path, policy: Policy, layout: GoalLayout | None, n: int
) -> tuple[np.ndarray, str]:
    """Up to ``n`` flat observations from the run's latest checkpoint's replay, else from the observation space."""
    rows = None
    try:
        replay = ckpt.load(run_dir).replay
        if "achieved" in replay:  # HER's episodes: [observation, achieved, desired] of every stored step
            length = replay["length"]
            parts = [
                np.concatenate([replay[k][e, :t] for e, t in enumerate(length) if t], axis=0)
                for k in ("obs", "achieved", "desired")
            ]
            rows = np.concatenate(parts, axis=-1)
        else:
            rows = replay["obs"]
    except (UserError, OSError, KeyError, ValueError):
        rows = None
    if rows is not None and len(rows):
        pick = np.random.default_rng(0).choice(len(rows), size=min(n, len(rows)), replace=False)
        return np.asarray(rows[np.sort(pick)], np.float32), "the run's replay buffer"
    cfg = policy.config
    env = make_env(cfg.env, None, cfg.env_kwargs, cfg.env_module)
    try:
        space = env.observation_space
        space.seed(0)
        rows = np.stack([space.sample() for _ in range(n)]).astype(np.float32)
    finally:
        env.close()
    return rows, "the observation space"


def split_inputs(
    rows: np.ndarray, layout: GoalLayout | None, names: tuple[str, ...]
) -> dict[str, np.ndarray]:
    if layout is None:
        return {names[0]: rows}
    return {
        "observation": rows[:, : layout.obs_dim],
        "achieved_goal": rows[:, layout.achieved],
        "desired_goal": rows[:, layout.desired],
    }


def export_onnx(
    run_dir: Path | str, out: Path | str | None = None, params_file: Path | str | None = None
) -> ExportResult:
    """Write the run's policy as ONNX to ``out`` (default RUN/policy.onnx), checked against ``load_policy``."""
    jax2onnx, onnx, ort = _need_extra()
    run_dir = Path(run_dir)
    policy = load_policy(run_dir, params_file)
    out = Path(out) if out is not None else run_dir / "policy.onnx"
    if out.is_dir():
        raise UserError(f"--out {out} is a directory; give a file name such as {out / 'policy.onnx'}")
    if not out.parent.is_dir():
        raise UserError(f"cannot write {out}: the directory {out.parent} does not exist")
    layout = goal_layout_of(run_dir)
    fn = policy_function(policy, layout)
    if layout is None:
        names, shapes = ("observation",), [("B", policy.obs_dim)]
    else:
        names = KEYS
        shapes = [("B", layout.obs_dim), ("B", layout.goal_dim), ("B", layout.goal_dim)]
    model = jax2onnx.to_onnx(fn, shapes, model_name="ddpgx_policy", input_names=list(names),
                             output_names=["action"])  # fmt: skip
    cfg = policy.config
    props = {
        "ddpgx_version": __version__,
        "env_id": cfg.env,
        "env_kwargs": json.dumps(list(cfg.env_kwargs)),
        "preset": cfg.preset,
        "step": str(policy.step),
        "source": policy.source.name,
        "observation_space": json.dumps(
            {"shape": [policy.obs_dim]}
            if layout is None
            else {
                "observation": [layout.obs_dim],
                "achieved_goal": [layout.goal_dim],
                "desired_goal": [layout.goal_dim],
            }
        ),  # fmt: skip
        "action_space": json.dumps(
            {
                "low": policy.scaler.low.tolist(),
                "high": policy.scaler.high.tolist(),
                "shape": [policy.action_dim],
            }
        ),
    }
    onnx.helper.set_model_props(model, props)
    data = model.SerializeToString()
    rows, source = check_observations(run_dir, policy, layout, CHECK_ROWS)
    session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    got = session.run(None, split_inputs(rows, layout, names))[0]
    want = policy(rows)
    diff = float(np.max(np.abs(got.astype(np.float64) - want.astype(np.float64)))) if len(rows) else 0.0
    if not np.isfinite(diff) or diff > TOLERANCE:
        raise ExportMismatch(
            f"the ONNX model's actions differ from the JAX policy's by up to {diff:.3g} (> {TOLERANCE:g}) on "
            f"{len(rows)} observations from {source}; nothing was written"
        )
    try:
        atomic_write_bytes(out, data)
    except OSError as e:
        raise UserError(f"cannot write {out}: {e.strerror or e}") from None
    return ExportResult(out, diff, len(rows), source, tuple(names))


class OnnxPolicy:
    """An exported model run by onnxruntime, called as the Evaluator calls policies: flat observations in, actions
    in the env's units out (``env_units``).

    Its inputs must fit the run it is evaluated on: one ``(batch, obs_dim)`` input for a flat env, the three
    ``observation``, ``achieved_goal`` and ``desired_goal`` inputs of the run's goal layout for a goal env. Given
    ``obs_dim`` (or made by ``for_run``) this is checked when it is loaded, else at its first call; a model that
    does not fit (one exported from another env) is one UserError. ``description`` names it for a result line:
    ``ONNX model policy.onnx, exported from final.msgpack at step 1200``."""

    env_units = True

    def __init__(
        self, path: Path | str, layout: GoalLayout | None, obs_dim: int | None = None, env: str = ""
    ) -> None:
        _, _, ort = _need_extra()
        path = Path(path)
        if not path.is_file():
            raise UserError(f"--onnx {path}: no such file (write one with `ddpgx export RUN --out {path}`)")
        try:
            self.session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        except Exception as e:  # onnxruntime raises its own types for files that are not models
            raise UserError(
                f"--onnx {path} is not an ONNX model onnxruntime can load ({type(e).__name__})"
            ) from None
        self.path, self.layout, self.env = path, layout, env
        inputs = self.session.get_inputs()
        self.names = tuple(i.name for i in inputs)
        # the last dimension of each input (None where the model leaves it open)
        self.widths = {
            i.name: (i.shape[-1] if i.shape and isinstance(i.shape[-1], int) else None) for i in inputs
        }
        self.meta = dict(self.session.get_modelmeta().custom_metadata_map)
        self.checked = False
        if layout is not None or obs_dim is not None:
            self.check(layout.size if layout is not None else int(obs_dim))  # type: ignore[arg-type]

    @classmethod
    def for_run(cls, path: Path | str, run_dir: Path | str) -> OnnxPolicy:
        """The model at ``path``, checked against the run's observation size and goal layout (config.json)."""
        run_dir = Path(run_dir)
        meta = json.loads((run_dir / "config.json").read_text())
        obs_dim = meta.get("obs_dim")
        env = str(meta.get("config", {}).get("env", ""))
        return cls(path, goal_layout_of(run_dir), None if obs_dim is None else int(obs_dim), env)

    @property
    def description(self) -> str:
        """``ONNX model PATH, exported from final.msgpack at step 1200`` (as its metadata says): the model is the
        source of the actions it is evaluated with."""
        src, step = self.meta.get("source", ""), self.meta.get("step", "")
        text = f"ONNX model {self.path}"
        if src:
            text += f", exported from {src}"
        if step not in ("", "-1"):
            text += f" at step {step}"
        return text

    def _inputs_text(self) -> str:
        return ", ".join(
            f"{n} of width {self.widths[n] if self.widths[n] is not None else '?'}" for n in self.names
        )

    def check(self, flat_dim: int) -> None:
        """The model's inputs fit observations of ``flat_dim`` values split by the run's goal layout; else one line
        saying what the model takes, what the run's env gives, and how to make a model that fits."""
        if self.layout is None:
            want = {self.names[0]: flat_dim} if len(self.names) == 1 else {"observation": flat_dim}
            gives = f"flat observations of {flat_dim} values"
        else:
            want = dict(
                zip(KEYS, (self.layout.obs_dim, self.layout.goal_dim, self.layout.goal_dim), strict=True)
            )
            gives = "a goal Dict (" + ", ".join(f"{k} of width {v}" for k, v in want.items()) + ")"
        fits = set(self.names) == set(want) and all(self.widths[n] in (None, w) for n, w in want.items())
        if not fits:
            src = self.meta.get("env_id")
            made = f" (it was exported from a run of {src})" if src else ""
            env = f" {self.env}" if self.env else ""
            raise UserError(
                f"--onnx {self.path} takes {self._inputs_text()}{made}, but this run's env{env} gives {gives}; "
                f"export this run's policy with `ddpgx export RUN_DIR --out FILE.onnx` and evaluate that"
            )
        self.checked = True

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        rows = np.asarray(obs, np.float32)
        if not self.checked:
            self.check(rows.shape[-1])
        return self.session.run(None, split_inputs(rows, self.layout, self.names))[0]
