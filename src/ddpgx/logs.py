"""Run outputs: CSV files (the record), TensorBoard events (optional), and the rich progress bar; and the CSV
files read back (``read_rows``, ``read_summary``) by plots, reports and the live table of many runs."""

from __future__ import annotations

import csv
import io
import math
import sys
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

EPISODE_FIELDS = ("step", "episode", "return", "length", "wall_s")
EVAL_FIELDS = ("step", "mean_return", "std_return", "wall_s")  # then success (goal envs), mean_length
TRAIN_FIELDS = ("step", "critic_loss", "actor_loss", "mean_q", "sps", "update_frac")


def complete_lines(path: Path) -> str:
    """The text of a CSV log up to its last newline: a row half-written by a run killed mid-write is left out."""
    text = path.read_bytes().decode("utf-8", errors="replace")
    return text[: text.rfind("\n") + 1]


def read_rows(path: Path) -> list[dict[str, str]]:
    """The complete rows of a CSV log (none if it does not exist yet)."""
    if not path.is_file():
        return []
    return list(csv.DictReader(io.StringIO(complete_lines(path), newline="")))


def read_summary(run_dir: Path) -> dict[str, Any]:
    """Last step, last eval and wall time of a run, from its CSV logs (what the live table and report show)."""
    ev = read_rows(run_dir / "eval.csv")
    ep = read_rows(run_dir / "episodes.csv")
    last_ev = ev[-1] if ev else {}
    return {
        "step": max([int(float(rows[-1]["step"])) for rows in (ep, ev) if rows], default=0),
        "eval": float(last_ev["mean_return"]) if last_ev else None,
        "wall_s": float(last_ev.get("wall_s", 0.0)) if last_ev else None,
    }


# the scalar a RunLogger mirrors to its tracker for each CSV column (train.csv's clip_<g>: obs_norm/clip_share_<g>)
TRACKER_KEYS = {
    "episodes.csv": {"return": "episode/return", "length": "episode/length", "success": "episode/success"},
    "train.csv": {c: f"train/{c}" for c in ("critic_loss", "actor_loss", "mean_q", "sps")},
    "eval.csv": {
        "mean_return": "eval/mean_return",
        "std_return": "eval/std_return",
        "success": "eval/success_rate",
    },
}


def tracker_scalars(run_dir: Path) -> list[tuple[int, dict[str, float]]]:
    """What a RunLogger sent its tracker, read back from the run's CSV logs (their 6 significant digits): one
    ``(step, {key: value})`` per row, in the order sent (by step; at one step, episodes, losses, evaluation).
    A resumed tracker sends what its store lost (a run killed before the tracker flushed) from these."""
    out: list[tuple[int, dict[str, float]]] = []
    for name, keys in TRACKER_KEYS.items():
        for row in read_rows(Path(run_dir) / name):
            values = {}
            for col, text in row.items():
                key = keys.get(col) or (f"obs_norm/clip_share_{col[5:]}" if col.startswith("clip_") else None)
                try:
                    v = float(text)
                except (TypeError, ValueError):  # an empty cell (no value at this step)
                    continue
                if key is not None and math.isfinite(v):
                    values[key] = v
            try:
                out.append((int(float(row["step"])), values))
            except (KeyError, TypeError, ValueError):
                continue
    return sorted(out, key=lambda sv: sv[0])  # stable: episodes, then losses, then the evaluation at one step


class CsvLog:
    def __init__(self, path: Path, fields: tuple[str, ...]) -> None:
        self.path = path
        self.fields = fields
        self.file = open(path, "a", newline="")  # noqa: SIM115 - closed in close()
        self.writer = csv.writer(self.file)
        if path.stat().st_size == 0:
            self.writer.writerow(fields)
        else:  # a resumed run keeps the columns it was started with (a run older than a new column has none)
            with open(path, newline="") as f:
                self.fields = tuple(next(csv.reader(f), fields))

    def write(self, *row: Any) -> None:
        self.writer.writerow([f"{v:.6g}" if isinstance(v, float) else v for v in row])

    def flush(self) -> None:
        self.file.flush()

    def close(self) -> None:
        self.file.close()


PLAIN_EVERY_S = 30.0  # seconds between plain progress lines when stderr is not a terminal


class RunLogger:
    """episodes.csv, eval.csv, train.csv, TensorBoard scalars and the progress bar of one run."""

    def __init__(
        self,
        run_dir: Path,
        total_steps: int,
        start_step: int,
        tensorboard: bool,
        progress: bool,
        wall_offset: float = 0.0,
        purge_step: int | None = None,
        success: bool = False,
        clip_groups: tuple[str, ...] = (),
        env_column: bool = False,
        tracker: Any = None,
    ):
        self.success = (
            success  # goal envs: a success column in episodes.csv and eval.csv (rate over episodes)
        )
        extra = ("success",) if success else ()
        self.env_column = env_column  # --num-envs > 1: which env each episode ran in
        self.episodes = CsvLog(
            run_dir / "episodes.csv", EPISODE_FIELDS + extra + (("env",) if env_column else ())
        )
        self.evals = CsvLog(run_dir / "eval.csv", EVAL_FIELDS + extra + ("mean_length",))
        # --obs-norm: share of the normalized inputs at the clip, per input group (clip_observation, ...)
        self.train = CsvLog(run_dir / "train.csv", TRAIN_FIELDS + tuple(f"clip_{g}" for g in clip_groups))
        self.clip_groups = tuple(f[5:] for f in self.train.fields if f.startswith("clip_"))
        self.tb = None
        if tensorboard:
            from tensorboardX import SummaryWriter

            # purge_step: TensorBoard drops events at or after it from an interrupted earlier session
            self.tb = SummaryWriter(str(run_dir / "tb"), flush_secs=30, purge_step=purge_step)
        self.tracker = tracker  # trackers.Tracker: mirrors every scalar (None: no tracker)
        self.t0 = time.perf_counter() - wall_offset
        self.last_return = float("nan")
        self.last_eval = float("nan")
        self.last_success = float("nan")
        self.last_length = float("nan")  # the last evaluation's mean episode length
        self.progress: Progress | None = None
        self.total_steps, self.start_step = total_steps, start_step
        # no terminal (nohup, SLURM, CI, a sweep's log): a plain line every PLAIN_EVERY_S instead of a bar that would
        # print once, at the end
        self.plain = progress and not sys.stderr.isatty()
        self.last_plain = -math.inf
        if progress and not self.plain:
            self.progress = Progress(
                TextColumn("[bold]ddpgx"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[sps]:>6.0f} steps/s"),
                TimeRemainingColumn(),
                TextColumn("{task.fields[ret]}  {task.fields[ev]}"),
                *([TextColumn("{task.fields[succ]}")] if success else []),
                console=Console(stderr=True),
                refresh_per_second=4,
            )
            self.task = self.progress.add_task(
                "train", total=total_steps, completed=start_step, sps=0.0, ret="", ev="", succ="",
            )  # fmt: skip
            self.progress.start()

    def wall(self) -> float:
        return time.perf_counter() - self.t0

    def episode(
        self, step: int, episode: int, ret: float, length: int, success: float | None = None, env: int = 0
    ) -> None:
        self.last_return = ret
        extra = ((success,) if self.success else ()) + ((env,) if self.env_column else ())
        self.episodes.write(step, episode, ret, length, round(self.wall(), 3), *extra)
        if self.tracker is not None:
            self.tracker.scalars(step, {"episode/return": ret, "episode/length": length,
                                        **({"episode/success": success} if self.success else {})})  # fmt: skip
        if self.tb is not None:
            self.tb.add_scalar("episode/return", ret, step)
            self.tb.add_scalar("episode/length", length, step)
            if self.success:
                self.tb.add_scalar("episode/success", success, step)

    def evaluation(
        self, step: int, mean: float, std: float, success: float | None = None, length: float | None = None
    ) -> None:
        self.last_eval = mean
        if self.success:
            self.last_success = float(success)  # type: ignore[arg-type]
        if length is not None:
            self.last_length = length
        row = {"step": step, "mean_return": mean, "std_return": std, "wall_s": round(self.wall(), 3),
               "success": success, "mean_length": length}  # fmt: skip
        # by name: a run resumed from before a column existed keeps the columns it started with
        self.evals.write(*("" if row.get(f) is None else row[f] for f in self.evals.fields))
        self.evals.flush()
        if self.tracker is not None:
            self.tracker.scalars(step, {"eval/mean_return": mean, "eval/std_return": std,
                                        **({"eval/success_rate": success} if self.success else {})})  # fmt: skip
        if self.tb is not None:
            self.tb.add_scalar("eval/mean_return", mean, step)
            if self.success:
                self.tb.add_scalar("eval/success_rate", success, step)

    def losses(
        self,
        step: int,
        critic_loss: float,
        actor_loss: float,
        mean_q: float,
        sps: float,
        update_frac: float | None = None,
        clip_share: dict[str, float] | None = None,
    ) -> None:
        frac = "" if update_frac is None else round(update_frac, 4)
        clip = [(clip_share or {}).get(g, "") for g in self.clip_groups]
        self.train.write(step, critic_loss, actor_loss, mean_q, round(sps, 1), frac, *clip)
        self.episodes.flush()
        self.train.flush()
        if self.tracker is not None:
            values = {
                "train/critic_loss": critic_loss,
                "train/actor_loss": actor_loss,
                "train/mean_q": mean_q,
                "train/sps": sps,
                **{f"obs_norm/clip_share_{g}": v for g, v in (clip_share or {}).items()},
            }
            self.tracker.scalars(step, {k: v for k, v in values.items() if math.isfinite(v)})
        if self.tb is not None:
            for k, v in (
                ("critic_loss", critic_loss),
                ("actor_loss", actor_loss),
                ("mean_q", mean_q),
                ("sps", sps),
            ):
                if math.isfinite(
                    v
                ):  # no actor step yet (policy delay) is nan in train.csv, nothing in TensorBoard
                    self.tb.add_scalar(f"train/{k}", v, step)
            for g, v in (clip_share or {}).items():
                self.tb.add_scalar(f"obs_norm/clip_share_{g}", v, step)

    def flush(self) -> None:
        for log in (self.episodes, self.evals, self.train):
            log.flush()
        if self.tb is not None:
            self.tb.flush()

    def csv_sizes(self) -> dict[str, int]:
        """Bytes written to each CSV so far (call after flush), for checkpoints."""
        return {log.path.name: log.file.tell() for log in (self.episodes, self.evals, self.train)}

    def shown(self) -> tuple[str, str, str]:
        """The last return, eval and success as the progress shows them: nothing before there is one."""

        def field(name: str, v: float, fmt: str) -> str:
            return f"{name} {v:{fmt}}" if math.isfinite(v) else ""

        ev = field("eval", self.last_eval, ">8.1f")
        if ev and math.isfinite(self.last_length):
            ev += f" (length {self.last_length:.0f})"
        return (field("return", self.last_return, ">8.1f"), ev,
                field("success", self.last_success, ">4.2f") if self.success else "")  # fmt: skip

    def tick(self, step: int, sps: float, runs: int = 1) -> None:
        """The progress bar or plain line at ``step``: ``sps`` is each run's env steps per second, shown summed
        over the ``runs`` that share this step (a seed group); the ETA is one run's (each has its own steps)."""
        ret, ev, succ = self.shown()
        if self.progress is not None:
            self.progress.update(self.task, completed=step, sps=sps * runs, ret=ret, ev=ev, succ=succ)
        elif self.plain and (
            time.perf_counter() - self.last_plain >= PLAIN_EVERY_S or step >= self.total_steps
        ):
            self.last_plain = time.perf_counter()
            done = step - self.start_step
            eta = (self.total_steps - step) / sps if sps > 0 and done > 0 else math.nan
            parts = [
                f"step {step}/{self.total_steps} ({100 * step / self.total_steps:.0f}%)",
                f"{sps * runs:.0f} steps/s" if sps > 0 else "",  # measured from the first log row on
                f"ETA {eta / 60:.1f} min" if math.isfinite(eta) else "",
                ret.strip(),
                ev.strip(),
                succ.strip(),
            ]
            print("ddpgx: " + ", ".join(p for p in parts if p), file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.progress is not None:
            self.progress.stop()
        for log in (self.episodes, self.evals, self.train):
            log.close()
        if self.tb is not None:
            self.tb.close()
