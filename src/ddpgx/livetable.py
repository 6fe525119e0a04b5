"""The live table of many runs (a sweep's, a tune's): how many are done, running, queued or failed, the total env
steps/s and ETA, and each running run's step and last eval, read from its CSV logs."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

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

    def __enter__(self) -> LiveTable:
        if self.enabled:
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

    def update(self) -> None:
        if self.live is not None:
            self.live.update(self.render())

    def render(self):
        from rich.table import Table

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
        table = Table(title=title, title_justify="left")
        for col in ("running run", "step", "last eval"):
            table.add_column(col)
        for row in rows:
            table.add_row(*row)
        for e in entries:
            if e.status == "failed":
                table.add_row(f"[red]{e.name}[/]", "failed", e.error[:80])
        return table
