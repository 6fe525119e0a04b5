"""The live table of many runs (a sweep's, a tune's): how many are done, running, queued or failed, the total env
steps/s and ETA, and each running run's step and last eval, read from its CSV logs. The status line sits above the
table and wraps at the terminal's width. Without a terminal (nohup, SLURM, CI, a log file) a redrawn table would
print once, at the end: there the status line and the running runs are printed as plain lines every
``logs.PLAIN_EVERY_S`` seconds instead, as a single run's progress is."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

from ddpgx import logs
from ddpgx.logs import read_summary

FINISHED = ("done", "pruned", "failed")  # states whose steps are all done (or never will be)
STATES = ("done", "pruned", "running", "queued", "failed", "stopped")


class Entry(Protocol):
    """One run as the table shows it."""

    name: str
    status: str  # one of STATES
    error: str
    started: float  # time.time() when it started running

    @property
    def run_dir(self) -> Path: ...

    @property
    def total_steps(self) -> int: ...


class LiveTable:
    """A rich table on stderr, redrawn at ``update()``. ``entries`` gives the runs; ``planned_steps`` the env steps of
    runs not among them yet (a tune's trials still to ask); ``note`` a line after the counts (a tune's best)."""

    def __init__(
        self,
        entries: Callable[[], Sequence[Entry]],
        live: bool,
        label: str = "sweep",
        planned_steps: Callable[[], int] = lambda: 0,
        note: Callable[[], str] = lambda: "",
    ) -> None:
        self.entries, self.enabled, self.label = entries, live, label
        self.planned_steps, self.note = planned_steps, note
        self.live: Any = None
        self.plain = live and not sys.stderr.isatty()
        self.last_plain = -float("inf")

    def __enter__(self) -> LiveTable:
        if self.enabled and not self.plain:
            from rich.console import Console
            from rich.live import Live

            self.live = Live(
                self.render(), console=Console(stderr=True), refresh_per_second=1, transient=False
            )
            self.live.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.live is not None:
            self.live.update(self.render())
            self.live.__exit__(*exc)
        elif self.plain:
            self.print_plain()

    def update(self) -> None:
        if self.live is not None:
            self.live.update(self.render())
        elif self.plain and time.perf_counter() - self.last_plain >= logs.PLAIN_EVERY_S:
            self.print_plain()

    def print_plain(self) -> None:
        self.last_plain = time.perf_counter()
        title, rows, failed = self.status()
        running = "; ".join(f"{name} {step} eval {ev}" for name, step, ev in rows)
        print(
            f"ddpgx: {title}" + (f"  |  running: {running}" if running else ""), file=sys.stderr, flush=True
        )
        for name, error in failed:
            print(f"ddpgx: {self.label} run {name} failed: {error[:200]}", file=sys.stderr, flush=True)

    def render(self):
        from rich.console import Group
        from rich.table import Table
        from rich.text import Text

        title, rows, failed = self.status()
        table = Table()
        for col in ("running run", "step", "last eval"):
            table.add_column(col)
        for row in rows:
            table.add_row(*row)
        for name, error in failed:
            table.add_row(f"[red]{name}[/]", "failed", error[:80])
        return Group(Text(title), table)  # the status line wraps at the terminal, not at the table

    def status(self) -> tuple[str, list[tuple[str, str, str]], list[tuple[str, str]]]:
        """The status line (counts, steps/s, ETA, note), the running runs' rows, and the failed runs' errors."""
        entries = list(self.entries())
        count = {s: sum(e.status == s for e in entries) for s in STATES}
        steps_done, total, rate = 0, self.planned_steps(), 0.0
        rows = []
        for e in entries:
            total += e.total_steps
            if e.status in FINISHED:
                steps_done += e.total_steps
            elif e.status == "running":
                s = read_summary(e.run_dir) if (e.run_dir / "eval.csv").exists() else {}
                step = s.get("step", 0)
                steps_done += step
                rate += step / max(time.time() - e.started, 1e-9)
                ev = s.get("eval")
                rows.append((e.name, f"{step}/{e.total_steps}", "-" if ev is None else f"{ev:.1f}"))
        eta = (total - steps_done) / rate if rate > 0 else float("nan")
        counts = ", ".join(f"{count[s]} {s}" for s in STATES if s != "pruned" or count[s])
        note = self.note()
        title = (
            f"{self.label}: {counts}  |  {rate:.0f} steps/s  |  ETA "
            + ("-" if eta != eta else time.strftime("%H:%M:%S", time.gmtime(eta)))
            + (f"  |  {note}" if note else "")
        )
        return title, rows, [(e.name, e.error) for e in entries if e.status == "failed"]
