"""The host: the cadence every engine shares, written once.

An *engine* advances training and holds its state (the Python engine: collector, learner, replay, N envs; the
compiled engine: the Program, its ring and env states, S seeds). The host drives any engine through the small
``Engine`` protocol below and owns everything around it, for each of the engine's runs (one run directory each):

- the counters, the loggers (set up fresh or restored on resume), the progress bar;
- log rows, and the divergence check: a NaN or inf loss stops the run with one line naming the step and the
  checkpoint to resume from, and the best policy stays on disk;
- the evaluation cadence, the best policy, and ``--target-return`` / ``--target-success``;
- the checkpoint cadence, SIGINT / SIGTERM and the ``stop`` callable (sweeps' stop files);
- the final checkpoint with its finished marker, the final parameters, the plot and the ``TrainResult``.

The host never asks which engine it drives, nor how many envs or seeds it steps: it asks the engine to advance
towards the next step where it has something to do, then does it.
"""

from __future__ import annotations

import dataclasses
import math
import signal
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import jax
import numpy as np

from ddpgx import checkpoint as ckpt
from ddpgx.callbacks import as_list, name_of
from ddpgx.collect import EnvProcessDied
from ddpgx.config import Config
from ddpgx.errors import TrainingDiverged, UserError, describe
from ddpgx.logs import RunLogger
from ddpgx.plots import plot_runs
from ddpgx.run import RunDir
from ddpgx.schedule import crossed
from ddpgx.trackers import open_tracker

TICK_EVERY = 250  # env steps between progress-bar refreshes


# ------------------------------------------------------------------------------------------ what engines report


@dataclass(frozen=True)
class Episode:
    """A training episode that ended: in run ``run``, at env step ``step``."""

    run: int
    step: int
    ret: float
    length: int
    success: float | None = None
    env: int = 0


@dataclass(frozen=True)
class LossRow:
    """One run's losses from its last update (a train.csv row without the step and the rate)."""

    critic_loss: float
    actor_loss: float
    mean_q: float
    update_frac: float | None = None
    clip_share: dict[str, float] | None = None


@dataclass(frozen=True)
class EvalRow:
    """One run's noise-free evaluation: mean and std of the returns (and the success rate of goal envs)."""

    mean: float
    std: float
    success: float | None = None
    length: float | None = (
        None  # the mean episode length: a Hopper standing on its alive bonus ends early or not
    )


@dataclass(frozen=True)
class Snapshot:
    """What a checkpoint of one run holds besides the host's counters: the state tree, the replay, the engine's own
    manifest entries, and the engine's values the counters carry (``metrics``, ``clip_share``)."""

    state: Any
    replay: Mapping[str, Any]  # read once, by the checkpoint writer (it may make its arrays when read)
    manifest: dict[str, Any]
    counters: dict[str, Any]


@dataclass(frozen=True)
class LogColumns:
    """The optional columns of the runs' CSV logs."""

    success: bool = False  # goal envs: success in episodes.csv and eval.csv
    clip_groups: tuple[str, ...] = ()  # --obs-norm: clip share per input group in train.csv
    env_column: bool = False  # several envs: which env each episode ran in


class Engine(Protocol):
    """What the host needs from an engine. ``step`` is the env steps done (the same for all of its runs)."""

    step: int
    safe: bool  # its state can be checkpointed now (the Python engine with one env: at episode ends only)
    columns: LogColumns

    def advance(self, until: int) -> list[Episode]:
        """Advance at least one iteration and at most to the first iteration that reaches ``until``; returns the
        episodes that ended. Raises TrainingDiverged for non-finite env data, EnvProcessDied for a lost env."""
        ...

    def losses(self, interval_s: float) -> list[LossRow | None]:
        """Each run's losses from its last update; None for a run that has not updated yet."""
        ...

    def evaluate(self, step: int) -> list[EvalRow]:
        """A noise-free evaluation of each run's policy."""
        ...

    def policy(self, i: int) -> tuple[Any, Any]:
        """Run ``i``'s policy: (actor variables, critic variables), as best.msgpack and final.msgpack hold them."""
        ...

    def snapshots(self) -> list[Snapshot]:
        """Every run's checkpoint content, now."""
        ...

    def end_episodes(self) -> None:
        """Close the episodes in progress (before the final checkpoint: an extension starts new ones)."""
        ...


# ------------------------------------------------------------------------------------------ the host's own state


@dataclass(frozen=True)
class TrainResult:
    run_dir: Path
    final_eval_mean: float
    final_eval_std: float
    steps: int
    wall_s: float
    params_path: Path
    runs: tuple[Path, ...] = ()  # --num-seeds > 1: each seed's run directory (run_dir is their group's)
    finished: str = "total_steps"  # or "target_return" / "target_success": what ended the run
    final_eval_success: float | None = None  # goal envs: the final evaluation's success rate (mean over runs)


class Interrupted(Exception):
    """SIGINT/SIGTERM arrived (``signum``; 0 when ``train``'s ``stop`` asked); a checkpoint was saved at ``step``."""

    def __init__(self, step: int, run_dir: Path, signum: int) -> None:
        super().__init__(f"saved at step {step}; resume with: ddpgx train --resume {run_dir}")
        self.step, self.run_dir, self.signum = step, run_dir, signum


@dataclass
class Counters:
    """A run's progress, saved in every checkpoint."""

    step: int = 0
    episode: int = 0
    wall_s: float = 0.0
    last_eval: list[float] | None = None
    last_return: float = float("nan")
    metrics: list[float] | None = None  # the engine's last losses (it restores them)
    next_checkpoint: int = 0
    csv_sizes: dict[str, int] = field(default_factory=dict)
    clip_share: dict[str, float] = field(default_factory=dict)  # --obs-norm: of the last batch before a log
    best: list[float] | None = None  # [step, mean return] of the best noise-free evaluation (best.msgpack)


def counters_of(loaded: ckpt.Loaded | None, cfg: Config) -> Counters:
    """A new run's counters, or a checkpoint's with its next checkpoint after its step by this run's
    --checkpoint-every (a resume may change it; the run's final checkpoint did not move it on, so an extension
    would otherwise checkpoint at once)."""
    if loaded is None:
        return Counters(next_checkpoint=cfg.checkpoint_every)
    c = Counters(**loaded.manifest["counters"])
    c.next_checkpoint = next_multiple(c.step, cfg.checkpoint_every)
    return c


def counters_problem(manifest: dict[str, Any]) -> str | None:
    """Why a checkpoint's counters cannot be the host's (None when they can): part of every engine's check."""
    try:
        Counters(**manifest["counters"])
    except (KeyError, TypeError) as e:
        return f"manifest.json lacks the loop's counters ({describe(e)})"
    return None


class Signals:
    """SIGINT/SIGTERM set a flag the host checks where the engine is safe to checkpoint; a second one stops at
    once."""

    def __init__(self) -> None:
        self.received: int | None = None
        self.previous: dict[int, Any] = {}

    def __enter__(self) -> Signals:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self.previous[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        if self.received is not None:
            raise KeyboardInterrupt
        self.received = signum

    def __exit__(self, *exc: Any) -> None:
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)


def next_multiple(step: int, every: int) -> int:
    return (step // every + 1) * every


def check_eval_returns(returns: np.ndarray, step: int, who: str = "") -> None:
    """NaN/inf evaluation returns are an env or a policy gone non-finite, never a result: TrainingDiverged (the
    host adds where the run continues from)."""
    bad = returns[~np.isfinite(returns)]
    if bad.size:
        raise TrainingDiverged(
            f"{who}the noise-free evaluation at step {step} returned {bad[0]}: the env's observations or rewards went "
            "NaN or inf, or overflowed float32, under the policy; check the env's parameters (--env-kwargs)"
        )


def first_non_finite(state: Any) -> str | None:
    """The name of the first part of a checkpoint's state (``actor``, ``critic_opt``, ...) with a NaN or inf in a
    float leaf, else None. The compiled loop's ``loop`` part (env states, episode returns, the last metrics, where
    a NaN actor loss is normal with --policy-delay) is the engine's to check."""
    tree = {k: v for k, v in state.items() if k != "loop"} if isinstance(state, dict) else state
    for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]:
        a = np.asarray(leaf)
        if a.dtype.kind == "f" and not np.isfinite(a).all():
            top = path[0] if path else None  # a dict key, or a TrainState field
            return str(getattr(top, "key", getattr(top, "name", "state")))
    return None


def mean_of(values: Sequence[float]) -> float:
    """The mean of the finite values (nan when there is none)."""
    ok = [v for v in values if math.isfinite(v)]
    return float(np.mean(ok)) if ok else float("nan")


# ------------------------------------------------------------------------------------------ the host


class Host:
    """Drives ``engine`` to ``cfg.total_steps`` for its runs (``runs[i]`` is run ``i``'s directory, ``loaded[i]``
    the checkpoint it resumed from or None); ``result_dir`` is what TrainResult and Interrupted name."""

    def __init__(
        self,
        cfg: Config,
        engine: Engine,
        runs: Sequence[RunDir],
        loaded: Sequence[ckpt.Loaded | None],
        result_dir: Path,
        stop: Callable[[], bool] | None = None,
        t_start: float | None = None,
        callback: Any = None,
    ) -> None:
        self.cfg, self.engine, self.runs, self.result_dir = cfg, engine, list(runs), result_dir
        self.stop = stop
        self.callbacks = as_list(
            callback
        )  # callbacks.py: called at log rows, episodes, evaluations, checkpoints
        self.stop_asked = False  # a callback returned False
        self.t_start = time.perf_counter() if t_start is None else t_start
        self.counters = [counters_of(ld, cfg) for ld in loaded]
        self.step = self.counters[0].step
        cols = engine.columns
        self.trackers = [
            open_tracker(r.cfg, r.path, ld is not None) for r, ld in zip(self.runs, loaded, strict=True)
        ]
        self.loggers = [
            RunLogger(r.path, cfg.total_steps, c.step, cfg.tensorboard, cfg.progress and i == 0,
                      wall_offset=c.wall_s, purge_step=c.step + 1 if ld is not None else None,
                      success=cols.success, clip_groups=cols.clip_groups, env_column=cols.env_column, tracker=tr)
            for i, (r, c, ld, tr) in enumerate(zip(self.runs, self.counters, loaded, self.trackers, strict=True))
        ]  # fmt: skip
        for lg, c in zip(self.loggers, self.counters, strict=True):
            lg.last_return = c.last_return
            if c.last_eval is not None:
                lg.last_eval = c.last_eval[0]
                lg.last_success = c.last_eval[2] if len(c.last_eval) > 2 else float("nan")
        self.solved: str | None = None  # the early stop that ended the run
        self.t_tick, self.s_tick, self.sps = time.perf_counter(), self.step, 0.0

    # -- the loop
    def run(self) -> TrainResult:
        try:
            try:
                self._loop()
            finally:
                for lg in self.loggers:
                    lg.close()
            return self._finish()
        finally:
            for tr in self.trackers:
                tr.close()

    def _loop(self) -> None:
        cfg, engine = self.cfg, self.engine
        with Signals() as signals:
            while self.step < cfg.total_steps:
                before = self.step
                try:
                    episodes = engine.advance(self._next_stop())
                except (TrainingDiverged, EnvProcessDied) as e:  # this step's state is torn: keep the last
                    replays = isinstance(e, TrainingDiverged)
                    raise type(e)(f"{e}; {self._where_to_continue(replays)}") from None
                self.step = step = engine.step
                self._log_episodes(episodes)
                if crossed(before, step, cfg.log_every):
                    self._log_losses(step)
                if crossed(before, step, cfg.eval_every) or step == cfg.total_steps:
                    self.solved = self._evaluate(step)
                    if self.solved:
                        break
                if crossed(before, step, TICK_EVERY) or step == cfg.total_steps:
                    self._tick(step)
                if step < cfg.total_steps and engine.safe:
                    stopping = signals.received or self.stop_asked or (self.stop is not None and self.stop())
                    if step >= self.counters[0].next_checkpoint or stopping:
                        for c in self.counters:
                            c.next_checkpoint = next_multiple(step, cfg.checkpoint_every)
                        self._save_checkpoints(step)
                        if stopping:
                            raise Interrupted(step, self.result_dir, signals.received or 0)
        engine.end_episodes()
        self._save_checkpoints(self.step, finished=self.solved or "total_steps")

    def _next_stop(self) -> int:
        """The next step where the host has something to do: a log row, an evaluation, a checkpoint, the end."""
        s, cfg = self.step, self.cfg
        return min(next_multiple(s, cfg.log_every), next_multiple(s, cfg.eval_every), cfg.total_steps,
                   max(s + 1, self.counters[0].next_checkpoint))  # fmt: skip

    # -- callbacks
    def _row(self, i: int, row: dict[str, Any]) -> dict[str, Any]:
        n = len(self.runs)
        return {**row, "seed": self.runs[i].cfg.seed, "seeds": n} if n > 1 else row

    def _call(self, hook: str, *args: Any) -> None:
        """Every callback's ``hook``; False from one asks the run to stop, an exception stops it at once."""
        for cb in self.callbacks:
            fn = getattr(cb, hook, None)
            if fn is None:
                continue
            try:
                answer = fn(*args)
            except Exception as e:  # noqa: BLE001 - the user's code: one line naming it, the checkpoint kept
                text = (str(e).strip().splitlines() or [""])[0][:200]
                raise UserError(
                    f"callback {name_of(cb)}.{hook} raised {type(e).__name__}: {text}; {self._where_to_continue()}"
                ) from e  # one line on the command line; in Python the callback's own traceback stays attached
            if answer is False:
                self.stop_asked = True

    # -- what happens at those steps
    def _log_episodes(self, episodes: list[Episode]) -> None:
        for e in episodes:
            c = self.counters[e.run]
            c.episode += 1
            self.loggers[e.run].episode(e.step, c.episode, e.ret, e.length, e.success, env=e.env)
            if self.callbacks:
                row = {"step": e.step, "episode": c.episode, "return": e.ret, "length": e.length}
                row.update({"success": e.success} if e.success is not None else {})
                self._call("on_episode", self._row(e.run, {**row, "env": e.env}))

    def _log_losses(self, step: int) -> None:
        now = time.perf_counter()
        interval = max(now - self.t_tick, 1e-9)
        self.sps = (step - self.s_tick) / interval  # each run's env steps per second
        self.t_tick, self.s_tick = now, step
        rows = self.engine.losses(interval)
        for i, row in enumerate(rows):
            if row is None:
                continue
            if not (math.isfinite(row.critic_loss) and math.isfinite(row.mean_q)):
                who = f"seed {self.runs[i].cfg.seed}: " if len(self.runs) > 1 else ""
                raise TrainingDiverged(
                    f"{who}critic loss became {row.critic_loss} by step {step} (lower --critic-lr or --actor-lr, "
                    f"or raise --batch-size, in a new run); {self._where_to_continue(replays=True)}"
                )
        for i, (lg, row) in enumerate(zip(self.loggers, rows, strict=True)):
            if self.callbacks:
                info: dict[str, Any] = {"step": step, "sps": self.sps}
                if row is not None:
                    info.update(critic_loss=row.critic_loss, actor_loss=row.actor_loss, mean_q=row.mean_q)
                self._call("on_step", step, self._row(i, info))
            if row is not None:
                lg.losses(step, row.critic_loss, row.actor_loss, row.mean_q, self.sps, row.update_frac,
                          row.clip_share)  # fmt: skip

    def _evaluate(self, step: int) -> str | None:
        """Evaluate, keep each run's best policy, and say whether a target was reached (the early stop's name)."""
        try:
            rows = self.engine.evaluate(step)
        except TrainingDiverged as e:  # a NaN/inf evaluation is no result: stop, say where to continue
            raise TrainingDiverged(f"{e}; {self._where_to_continue(replays=True)}") from None
        for i, (r, c, lg, row) in enumerate(zip(self.runs, self.counters, self.loggers, rows, strict=True)):
            c.last_eval = [row.mean, row.std] + ([row.success] if row.success is not None else [])
            lg.evaluation(step, *c.last_eval, length=row.length)
            if c.best is None or row.mean > c.best[1]:  # the best policy so far, kept on disk
                c.best = [step, row.mean]
                r.save_best(*self.engine.policy(i), step)
            if self.callbacks:
                ev = {
                    "step": step,
                    "mean_return": row.mean,
                    "std_return": row.std,
                    "wall_s": round(lg.wall(), 3),
                    **({"mean_length": row.length} if row.length is not None else {}),
                }
                ev.update({"success": row.success} if row.success is not None else {})
                self._call("on_eval", step, self._row(i, ev))
        first = rows[0]  # targets need one run (validate refuses them for several)
        if self.cfg.target_return is not None and first.mean >= self.cfg.target_return:
            return "target_return"
        target_s = self.cfg.target_success
        if target_s is not None and first.success is not None and first.success >= target_s:
            return "target_success"
        return None

    def _tick(self, step: int) -> None:
        head = self.loggers[0]  # its progress bar shows the runs' means and all their steps per second
        if len(self.loggers) == 1:
            head.tick(step, self.sps)
            return
        # the group's means, shown for this tick only: the first seed's own values (its checkpoint's counters, the
        # means' next inputs) stay its own
        fields = ("last_return", "last_eval", "last_length", "last_success")
        own = [getattr(head, f) for f in fields]
        for f in fields:
            setattr(head, f, mean_of([getattr(lg, f) for lg in self.loggers]))
        try:
            head.tick(step, self.sps, runs=len(self.loggers))
        finally:
            for f, v in zip(fields, own, strict=True):
                setattr(head, f, v)

    def _save_checkpoints(self, step: int, finished: str | None = None) -> None:
        """Each run's checkpoint: the engine's snapshot, and in the manifest the host's counters. A state gone
        NaN or inf is never saved (a resume would load it): the run stops, naming the last good checkpoint."""
        snaps = self.engine.snapshots()
        for i, snap in enumerate(snaps):  # every run's before any is written: a group's seeds stay together
            bad = first_non_finite(snap.state)
            if bad is not None:
                who = f"seed {self.runs[i].cfg.seed}: " if len(self.runs) > 1 else ""
                raise TrainingDiverged(
                    f"{who}the training state's {bad} went NaN or inf by step {step}, so it was not checkpointed "
                    f"(lower --critic-lr or --actor-lr, or raise --batch-size, in a new run); "
                    f"{self._where_to_continue(replays=True)}"
                )
        for r, c, lg, snap in zip(self.runs, self.counters, self.loggers, snaps, strict=True):
            lg.flush()
            c.step, c.wall_s, c.last_return = step, lg.wall(), lg.last_return
            c.metrics, c.clip_share = snap.counters.get("metrics"), snap.counters.get("clip_share", {})
            c.csv_sizes = lg.csv_sizes()
            manifest = {"env": self.cfg.env, "preset": self.cfg.preset, "counters": dataclasses.asdict(c),
                        **snap.manifest}  # fmt: skip
            r.save_checkpoint(step, snap.state, snap.replay, manifest, finished)
        if self.callbacks:
            for r in self.runs:
                self._call("on_checkpoint", step, r.path / ckpt.DIRNAME / (ckpt.latest_name(r.path) or ""))

    def _where_to_continue(self, replays: bool = False) -> str:
        """Where a run stopped by an error can continue from (its state at this step is torn). ``replays``: the
        error came from the run's own computation (a divergence, a NaN from the env), which a bitwise resume repeats
        unless its cause was changed; said, so that a resume is not offered as the cure."""
        path = self.runs[0].path
        last = ckpt.latest_name(path)
        if last is None:
            return f"no checkpoint was taken yet: the run in {self.result_dir} starts over"
        best = self.counters[0].best
        kept = f"; best.msgpack keeps the best policy (step {int(best[0])})" if best else ""
        if replays:
            return (f"the run stopped: its last checkpoint ({last}) is kept, but ddpgx train --resume "
                    f"{self.result_dir} replays the same steps and stops here again unless its cause (the env's "
                    f"code) was changed{kept}")  # fmt: skip
        return (f"the run stopped: its last checkpoint ({last}) continues with: ddpgx train --resume "
                f"{self.result_dir}{kept}")  # fmt: skip

    def _finish(self) -> TrainResult:
        """The final parameters (after the final checkpoint, which holds them too) and the plots."""
        paths = []
        for i, r in enumerate(self.runs):
            paths.append(r.finish(*self.engine.policy(i), self.step))
            if self.cfg.plot:
                plot_runs([r.path], r.path / "returns.png", metric="both")
            files = [r.path / f for f in ("returns.png", "best.msgpack", "final.msgpack", "config.json")]
            self.trackers[i].artifacts([f for f in files if f.is_file()])
        finals = [c.last_eval for c in self.counters]
        assert all(f is not None for f in finals)
        means = [f[0] for f in finals]  # type: ignore[index]
        return TrainResult(
            run_dir=self.result_dir,
            final_eval_mean=float(np.mean(means)),
            final_eval_std=float(finals[0][1]) if len(finals) == 1 else float(np.std(means)),  # type: ignore[index]
            steps=self.step,
            wall_s=time.perf_counter() - self.t_start,
            params_path=paths[0],
            runs=tuple(r.path for r in self.runs) if len(self.runs) > 1 else (),
            finished=self.solved or "total_steps",
            final_eval_success=float(np.mean([f[2] for f in finals])) if len(finals[0]) > 2 else None,  # type: ignore
        )
