"""``train(cfg)``: validate the config, pick the engine, hand it to the host. Nothing else.

The engines (pyengine.py for Gymnasium envs, jaxloop.py for JAX-native envs) advance training and hold its state;
the host (host.py) does what every engine shares: logs, evaluations, checkpoints, stops and the final files.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from typing import Any

from ddpgx import jaxloop, pyengine
from ddpgx.config import Config
from ddpgx.errors import UserError
from ddpgx.host import Host, Interrupted, TrainResult
from ddpgx.jaxenvs import suite_of
from ddpgx.presets import resolve
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
    with contextlib.ExitStack() as closing:
        if suite_of(cfg.env) is not None:  # a JAX-native env: the whole loop is one compiled program
            cfg, engine, runs, loaded, result_dir = jaxloop.build(cfg, resume, closing)
        else:
            engine, run, ld = pyengine.build(cfg, resume, closing)
            runs, loaded, result_dir = [run], [ld], run.path
        return Host(cfg, engine, runs, loaded, result_dir, stop, t_start, callback).run()


__all__ = ["train", "TrainResult", "Interrupted"]
