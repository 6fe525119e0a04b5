"""``train(cfg)``: validate the config, pick the engine, hand it to the host. Nothing else.

The engines (pyengine.py for Gymnasium envs, actors.py for Gymnasium envs stepped by Ray actors, jaxloop.py for
JAX-native envs) advance training and hold its state;
the host (host.py) does what every engine shares: logs, evaluations, checkpoints, stops and the final files.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from ddpgx import actors, jaxloop, pyengine
from ddpgx.callbacks import HOOKS, as_list
from ddpgx.config import Config
from ddpgx.errors import UserError, warn
from ddpgx.host import Host, Interrupted, TrainResult
from ddpgx.jaxenvs import suite_of
from ddpgx.presets import resolve
from ddpgx.run import FINAL_PARAMS, FinalRecovered
from ddpgx.schedule import UpdateSchedule
from ddpgx.validate import validate


def train(
    cfg: Config, resume: bool = False, stop: Callable[[], bool] | None = None, callback: Any = None
) -> TrainResult:
    """Train DDPG as ``cfg`` says; returns where everything went and the final noise-free evaluation.

    With ``resume=True``, ``cfg.run_dir`` must be an existing run: it continues from its latest valid checkpoint
    (``cfg.total_steps`` may be larger than the original, to extend it). Everything is validated (the config, the
    env, the memory the run needs) before the run directory is created or locked. ``stop`` is asked wherever the
    run can checkpoint; once it says True the run checkpoints and raises ``Interrupted``, as on SIGINT (sweeps use
    it). ``callback``: one callback or a list (callbacks.py); one that returns False stops the run the same way.
    """
    t_start = time.perf_counter()
    if not isinstance(cfg, Config):
        raise UserError(
            f"train() takes a Config (preset_config(...)), got {type(cfg).__name__} {str(cfg)[:60]!r}"
        )
    cfg = validate(resolve(cfg))
    if stop is not None and any(hasattr(stop, h) for h in HOOKS):
        raise TypeError(
            "train(cfg, resume, stop, callback): pass a callback by name, train(cfg, callback=...)"
        )
    callback = as_list(callback)  # one the host would never call is refused before any file is written
    with contextlib.ExitStack() as closing:
        try:
            if suite_of(cfg.env) is not None:  # a JAX-native env: the whole loop is one compiled program
                cfg, engine, runs, loaded, result_dir = jaxloop.build(cfg, resume, closing)
            else:  # Gymnasium envs: stepped in this process, or by Ray actors (--actors)
                build = actors.build if cfg.actors else pyengine.build
                engine, run, ld = build(cfg, resume, closing)
                runs, loaded, result_dir = [run], [ld], run.path
        except FinalRecovered as e:
            return recovered_result(e, t_start)
        # the engine holds the checkpoint's replay rows now: this copy would live as long as the run
        for ld in loaded:
            if ld is not None:
                ld.replay = {}
        first_update = UpdateSchedule.of(cfg).first  # said once the env and the config passed their checks
        if cfg.total_steps < first_update and not resume:
            warn(
                f"--total-steps {cfg.total_steps} is below the {first_update} steps before the first update "
                "(--learning-starts, a first --batch-size of data, --update-every): no gradient update will run"
            )
        return Host(cfg, engine, runs, loaded, result_dir, stop, t_start, callback).run()


def recovered_result(e: FinalRecovered, t_start: float) -> TrainResult:
    """The result of a finished run whose final.msgpack a resume wrote from its final checkpoint."""
    if e.group is not None:  # a seed group: its result as the host's for a group (host.Host._finish)
        lasts = [m["counters"]["last_eval"] for m in e.manifests]
        means = [float(last[0]) for last in lasts]
        return TrainResult(run_dir=e.group, final_eval_mean=float(np.mean(means)), final_eval_std=float(np.std(means)),
                           steps=int(e.manifests[0]["counters"]["step"]), wall_s=time.perf_counter() - t_start,
                           params_path=e.runs[0] / FINAL_PARAMS, runs=e.runs, finished=e.manifests[0]["finished"],
                           final_eval_success=float(np.mean([last[2] for last in lasts])) if len(lasts[0]) > 2 else None)  # fmt: skip
    m = e.loaded.manifest
    last = m["counters"]["last_eval"]
    return TrainResult(run_dir=e.path.parent, final_eval_mean=last[0], final_eval_std=last[1],
                       steps=int(m["counters"]["step"]), wall_s=time.perf_counter() - t_start, params_path=e.path,
                       finished=m["finished"], final_eval_success=last[2] if len(last) > 2 else None)  # fmt: skip


__all__ = ["train", "TrainResult", "Interrupted"]
