"""Running mean and variance of the observations seen in training (``--obs-norm``).

Kept on the host in float64 and updated one observation at a time with Welford's algorithm; every network that
normalizes reads float32 copies (mean, sqrt(var + eps)) from its ``obs_stats`` variables, which the loop
writes every ``train.OBS_STATS_EVERY`` env steps and before every evaluation and the final save (see
``Learner.set_obs_stats``). The exact float64 state is part of every checkpoint, so a resumed run normalizes with
the same bits as the uninterrupted one.
"""

from __future__ import annotations

from typing import Any

import numpy as np

EPS = 1e-8  # std = sqrt(var + EPS): a constant observation dimension stays finite


class RunningStats:
    def __init__(self, dim: int) -> None:
        self.count = 0
        self.mean = np.zeros(dim, np.float64)
        self.m2 = np.zeros(dim, np.float64)  # sum of squared deviations from the mean
        self.changed = True

    def push(self, x: np.ndarray) -> None:
        """Add one observation (Welford's update)."""
        self.count += 1
        delta = x - self.mean
        self.mean += delta / self.count
        self.m2 += delta * (x - self.mean)
        self.changed = True

    @property
    def var(self) -> np.ndarray:
        """Population variance (numpy's ``var`` with ddof 0); 1 before any observation."""
        return self.m2 / self.count if self.count else np.ones_like(self.m2)

    def mean_std(self) -> tuple[np.ndarray, np.ndarray]:
        """float32 (mean, std) as the networks use them."""
        return self.mean.astype(np.float32), np.sqrt(self.var + EPS).astype(np.float32)

    def state(self) -> dict[str, Any]:
        """JSON-ready state (Python floats round-trip float64 exactly)."""
        return {"count": self.count, "mean": self.mean.tolist(), "m2": self.m2.tolist()}

    def load_state(self, d: dict[str, Any]) -> None:
        self.count = int(d["count"])
        self.mean = np.asarray(d["mean"], np.float64)
        self.m2 = np.asarray(d["m2"], np.float64)
        self.changed = True
