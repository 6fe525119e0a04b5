"""Callbacks: user code the training host calls at the points it already has, as SB3's callbacks are.

A callback is any object with some of these methods (a missing one is not called); each may return ``False`` to
stop the run, which then checkpoints where it can and ends as the stop file ends it (``train`` raises
``Interrupted``; ``DDPG.learn`` returns):

- ``on_step(step, info)``: every ``log_every`` env steps; ``info`` is the train.csv row (step, sps and, once the
  learner has updated, critic_loss, actor_loss, mean_q);
- ``on_episode(row)``: every training episode, with its episodes.csv row (step, episode, return, length, ...);
- ``on_eval(step, row)``: every noise-free evaluation, with its eval.csv row (step, mean_return, std_return, ...,
  and success for goal envs);
- ``on_checkpoint(step, path)``: after every checkpoint is written (``path``: its directory).

With several runs at once (the compiled loop's seeds) every row also has ``seed`` and ``seeds`` (how many run), and
each hook is called once per seed; a False from any stops them all. ``StopOnReward`` and ``StopOnNoImprovement``
keep their state per seed and stop the group once every seed qualifies. A callback that raises stops the run with
one line naming it; the last checkpoint is kept.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any

HOOKS = ("on_step", "on_episode", "on_eval", "on_checkpoint")


class Callback:
    """A base class to subclass (any object with the methods works too); every hook does nothing."""

    def on_step(self, step: int, info: dict[str, Any]) -> bool | None:
        return None

    def on_episode(self, row: dict[str, Any]) -> bool | None:
        return None

    def on_eval(self, step: int, row: dict[str, Any]) -> bool | None:
        return None

    def on_checkpoint(self, step: int, path: Any) -> bool | None:
        return None


class StopOnReward(Callback):
    """Stop once a noise-free evaluation reaches ``threshold`` (``metric``: "mean_return", or "success" for goal
    envs), as SB3's ``StopTrainingOnRewardThreshold``. With several seeds at once: once every seed has reached it."""

    def __init__(self, threshold: float, metric: str = "mean_return") -> None:
        if metric not in ("mean_return", "success"):
            raise ValueError(
                f'StopOnReward(metric=...) is "mean_return" or "success" (goal envs), got {metric!r}'
            )
        self.threshold, self.metric = threshold, metric
        self.reached: set[Any] = set()  # the seeds (None: the one run) that reached the threshold
        self.stopped_at: int | None = None

    def on_eval(self, step: int, row: dict[str, Any]) -> bool | None:
        value = row.get(self.metric)
        if value is not None and math.isfinite(value) and value >= self.threshold:
            self.reached.add(row.get("seed"))
        if len(self.reached) >= row.get("seeds", 1):
            self.stopped_at = step
            return False
        return None


class StopOnNoImprovement(Callback):
    """Stop when ``patience`` evaluations in a row have not beaten the best mean return by more than ``min_delta``
    (SB3's ``StopTrainingOnNoModelImprovement``); the first ``min_evals`` evaluations never stop the run. With
    several seeds at once each seed is judged on its own evaluations, and the group stops once every seed has run
    out of patience."""

    def __init__(self, patience: int, min_delta: float = 0.0, min_evals: int = 0) -> None:
        self.patience, self.min_delta, self.min_evals = patience, min_delta, min_evals
        self.best: dict[Any, float] = {}  # per seed (None: the one run)
        self.evals: dict[Any, int] = {}
        self.since_best: dict[Any, int] = {}
        self.stopped_at: int | None = None

    def on_eval(self, step: int, row: dict[str, Any]) -> bool | None:
        seed, value = row.get("seed"), row["mean_return"]
        self.evals[seed] = self.evals.get(seed, 0) + 1
        if value > self.best.get(seed, -math.inf) + self.min_delta:
            self.best[seed], self.since_best[seed] = value, 0
        else:
            self.since_best[seed] = self.since_best.get(seed, 0) + 1
        done = [
            k for k in self.evals if self.evals[k] > self.min_evals and self.since_best[k] >= self.patience
        ]
        if len(done) >= row.get("seeds", 1):
            self.stopped_at = step
            return False
        return None


class every(Callback):  # noqa: N801 - named as the function it reads like: every(10_000, save)
    """Call ``fn(step)`` once per ``n`` env steps, at the first ``on_step`` (a log row) at or after each multiple of
    ``n`` (so its granularity is ``--log-every``); ``fn`` returning False stops the run."""

    def __init__(self, n: int, fn: Callable[[int], bool | None]) -> None:
        if n <= 0:
            raise ValueError(f"every(n, fn) needs n > 0, got {n}")
        self.n, self.fn, self.last = n, fn, 0

    def on_step(self, step: int, info: dict[str, Any]) -> bool | None:
        if step // self.n > self.last // self.n:
            self.last = step
            return self.fn(step)
        return None


def as_list(callback: Any) -> list[Any]:
    """None, one callback or an iterable of them, as a list; one the host would never call is refused (TypeError, one line)
    before anything runs (a class for an instance, a bare function, an object with none of ``HOOKS``)."""
    if callback is None:
        return []
    if isinstance(callback, Iterable) and not any(hasattr(callback, h) for h in HOOKS):
        items = list(callback)
    else:
        items = [callback]
    for cb in items:
        name = name_of(cb)
        if isinstance(cb, type):
            raise TypeError(f"callback {name} is a class: pass an instance, {name}(...)")
        if not any(callable(getattr(cb, h, None)) for h in HOOKS):
            what = "a function" if callable(cb) else f"{name}"
            raise TypeError(
                f"callback {what} has none of the hooks {', '.join(HOOKS)}, so it would never be called; a "
                "function of the step is every(n, fn), an object defines the hooks it needs (ddpgx.Callback)"
            )
    return items


def name_of(callback: Any) -> str:
    return getattr(callback, "__name__", None) or type(callback).__name__
