"""Running mean and variance of the observations seen in training (``--obs-norm``), and the normalizer built on them.

Kept on the host in float64 and updated one observation at a time with Welford's algorithm; every network that
normalizes reads float32 copies (mean, std) from its ``obs_stats`` variables, which the loop writes every
``train.OBS_STATS_EVERY`` env steps and before every evaluation and the final save (see
``Learner.set_obs_stats``). The exact float64 state is part of every checkpoint, so a resumed run normalizes with
the same bits as the uninterrupted one.

For goal envs with HER, the normalizer can keep a second set of statistics for the desired-goal part of the input
(``--goal-stats relabelled``), fitted to the goals the learner trains on, as OpenAI baselines' HER fits its ``g``
statistics to HER-relabelled transitions of each new episode. Fitted to the real desired goals instead, a goal
coordinate that is constant in every real episode (FetchPush's goal height) gets a std near 0, and every relabelled
goal that differs from it by a fraction of a millimetre normalizes to the clip: the critic can tell hindsight goals
from real ones by that one input. ``--obs-std-floor`` (baselines' ``norm_eps`` 0.01) bounds the std from below.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from ddpgx.config import Config
    from ddpgx.goals import GoalLayout

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


class Normalizer:
    """What ``--obs-norm`` normalizes with: statistics of every observation seen (the whole input), optionally a
    separate set for the desired-goal part fitted to relabelled goals, and a floor under the std.

    ``mean_std()`` gives the float32 (mean, std) the networks read: the observation statistics, with the desired
    goal's slice taken from the goal statistics once they hold a goal, and std = max(sqrt(var + 1e-8), floor).
    With floor 0 and no goal statistics it is exactly ``RunningStats.mean_std`` (runs made before these options
    normalize with the same bits).
    """

    def __init__(
        self, dim: int, layout: GoalLayout | None = None, floor: float = 0.0, relabelled_goals: bool = False
    ) -> None:
        self.obs = RunningStats(dim)
        self.layout, self.floor = layout, floor
        self.goal = RunningStats(layout.goal_dim) if (layout is not None and relabelled_goals) else None

    @classmethod
    def for_config(cls, cfg: Config, dim: int, layout: GoalLayout | None) -> Normalizer:
        return cls(dim, layout, cfg.obs_std_floor, cfg.goal_stats == "relabelled")

    @property
    def changed(self) -> bool:
        return self.obs.changed or (self.goal is not None and self.goal.changed)

    @changed.setter
    def changed(self, value: bool) -> None:
        self.obs.changed = value
        if self.goal is not None:
            self.goal.changed = value

    def push(self, x: np.ndarray) -> None:
        """An observation the env returned (every one of them, in the order they came)."""
        self.obs.push(x)

    def push_goals(self, goals: np.ndarray) -> None:
        """Goals the learner trains on (rows of ``goal_dim``), into the goal statistics, one row at a time."""
        assert self.goal is not None
        for g in np.asarray(goals, np.float64):
            self.goal.push(g)

    def mean_std(self) -> tuple[np.ndarray, np.ndarray]:
        mean, var = self.obs.mean.copy(), self.obs.var.copy()
        if self.goal is not None and self.goal.count:
            d = self.layout.desired  # type: ignore[union-attr]
            mean[d], var[d] = self.goal.mean, self.goal.var
        std = np.sqrt(var + EPS)
        if self.floor > 0:
            std = np.maximum(std, self.floor)
        return mean.astype(np.float32), std.astype(np.float32)

    def groups(self) -> dict[str, slice]:
        """The input's parts, by name: observation / achieved_goal / desired_goal for goal envs, else input."""
        if self.layout is None:
            return {"input": slice(0, len(self.obs.mean))}
        lay = self.layout
        return {
            "observation": slice(0, lay.obs_dim),
            "achieved_goal": lay.achieved,
            "desired_goal": lay.desired,
        }

    def clip_share(self, x: np.ndarray, clip: float) -> dict[str, float]:
        """Share of the normalized inputs of the rows ``x`` at +-``clip`` (saturated), per input group, as the
        networks compute them from the float32 statistics."""
        mean, std = self.mean_std()
        x = np.asarray(x, np.float32).reshape(-1, len(mean))
        at = np.abs((x - mean) / std) >= clip
        return {name: float(at[:, s].mean()) for name, s in self.groups().items()}

    def state(self) -> dict[str, Any]:
        """The observation statistics as before these options (old checkpoints load), plus the goal statistics."""
        return {**self.obs.state(), **({"goal": self.goal.state()} if self.goal is not None else {})}

    def load_state(self, d: dict[str, Any]) -> None:
        self.obs.load_state(d)
        if self.goal is not None:
            if "goal" not in d:
                raise ValueError("the checkpoint's observation statistics have no goal statistics")
            self.goal.load_state(d["goal"])
