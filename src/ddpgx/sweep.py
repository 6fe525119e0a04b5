"""Many runs as Ray tasks: a grid of envs x presets x ``--set`` values x seeds, one ordinary run directory each.

A sweep is many ordinary runs. Each cell x seed is a ddpgx run directory under ``out`` (``eval``, ``plot``,
``record`` and ``train --resume`` read it like any other), trained by one Ray task that resumes from the run's own
last checkpoint when it is retried (a worker killed, a node gone). Nothing about a run lives only in Ray's memory:
``out/sweep.json`` records the spec and the grid, and a run's status is read from its directory, so re-running the
same command skips finished runs and resumes the others.

Run directories reach the driver through a shared filesystem: ``out`` must be the same path on every node (one
machine, or NFS and the like on a cluster). The driver reads the runs' CSV logs for its live table and the report.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ddpgx import worker
from ddpgx.driver import Driver, holder_of
from ddpgx.errors import UserError, describe
from ddpgx.grid import Cell, SweepSpec, build_grid, check_envs, check_out, check_spec_file, excluded
from ddpgx.livetable import LiveTable
from ddpgx.logs import read_summary
from ddpgx.raynode import check_address, import_ray
from ddpgx.report import write_report
from ddpgx.run import LOCK_NAME, STOP_FILE, RunLock, RunLocked, run_complete
from ddpgx.runfiles import write_json

RUNS_FILE = "runs.json"  # each run's status, and where it ran (node, host, pid, cores) or why it failed


@dataclass
class RunState:
    cell: Cell
    status: str = "queued"  # queued, running, done, failed, stopped, excluded (not run this time)
    error: str = ""
    result: dict[str, Any] = field(default_factory=dict)
    started: float = 0.0

    @property  # what the live table shows of it
    def name(self) -> str:
        return self.cell.name

    @property
    def run_dir(self) -> Path:
        return Path(self.cell.cfg.run_dir)

    @property
    def total_steps(self) -> int:
        return self.cell.cfg.total_steps

    def settle(self, result: dict[str, Any]) -> None:
        """Take what its task returned (done, stopped, or failed with an error line)."""
        self.status, self.error = result["status"], result.get("error", "")
        self.result = {k: v for k, v in result.items() if k not in ("status", "error")}


@dataclass
class SweepResult:
    out: Path
    runs: list[RunState]
    report: Path | None

    @property
    def failed(self) -> list[RunState]:
        return [r for r in self.runs if r.status == "failed"]


def run_sweep(spec: SweepSpec, live: bool = True) -> SweepResult:
    """Validate the whole grid, then run every unfinished run as a Ray task; returns each run's state."""
    cells = build_grid(spec)
    excluded(cells, spec.exclude)  # a pattern that names no run: refused before anything starts
    check_envs(cells)
    if spec.cpus_per_run <= 0 or spec.gpus_per_run < 0 or spec.max_parallel < 0 or spec.max_retries < 0:
        raise UserError("--cpus-per-run must be > 0; --gpus-per-run, --max-parallel and --max-retries >= 0")
    import_ray(spec.address)  # not installed: one line, before anything is written
    if spec.address:
        check_address(spec.address)
    out = Path(spec.out)
    lock = lock_sweep(out, spec, cells)
    try:
        return _sweep_locked(spec, cells, out, live)
    finally:
        lock.release()


def lock_sweep(out: Path, spec: SweepSpec, cells: list[Cell]) -> RunLock:
    """Take ``out``'s lock, then check and record the sweep under it (one driver per sweep: a second would start
    the same runs again). Lock first: two drivers started at once on one ``out`` cannot both pass the check, and
    the one that loses is told which process holds it, never that a half-made sweep directory is not one. A
    directory nobody has locked is checked before the lock file is made in it; what this call made is removed
    again when the check under the lock refuses."""
    try:
        check_out(out, cells)  # a file, a foreign directory: refused before anything is made there
    except UserError:
        # unless a driver has locked it: what it has made there since (its sweep.json half written) is judged
        # under the lock. A driver locks before it makes anything, so the lock is seen after anything it made.
        if not (out / LOCK_NAME).exists():
            raise
    try:
        out.mkdir(parents=True)
        created = True
    except FileExistsError:
        created = False
    except OSError as e:
        raise UserError(f"cannot make the sweep directory --out {out}: {describe(e)}") from None
    had_lock = (out / LOCK_NAME).exists()
    lock = RunLock(out)
    try:
        lock.acquire()
    except RunLocked:
        raise UserError(
            f"--out {out} is being swept by process {holder_of(out) or '?'}; wait for it, or stop it with "
            f"`touch {out / STOP_FILE}` (its runs checkpoint and it exits), then run this again"
        ) from None
    try:
        check_spec_file(out, spec, cells)
    except UserError:
        # what this call made goes while the lock is held: a driver that takes the lock after it never holds it
        # on a removed file, beside a third that makes a new one
        if created:
            shutil.rmtree(out, ignore_errors=True)
        elif not had_lock:
            (out / LOCK_NAME).unlink(missing_ok=True)
        lock.release()
        raise
    return lock


def _sweep_locked(spec: SweepSpec, cells: list[Cell], out: Path, live: bool) -> SweepResult:
    stop_file = out.absolute() / STOP_FILE
    stop_file.unlink(missing_ok=True)
    runs = [RunState(c) for c in cells]
    skip = excluded(cells, spec.exclude)
    for r in runs:
        if run_complete(Path(r.cell.cfg.run_dir)):
            r.status, r.result = "done", read_summary(Path(r.cell.cfg.run_dir))
        elif r.cell.name in skip:
            r.status = "excluded"
    # every run of the grid with its status as this driver finds it: one that finished while no driver watched (an
    # earlier driver was killed) is listed as done, and a deleted runs.json is rebuilt
    record_runs(out, runs)
    todo = [r for r in runs if r.status == "queued"]
    if todo:
        _execute(spec, todo, [r for r in runs if r.status != "excluded"], stop_file, live)
    report_path = None
    if any(r.status == "done" for r in runs):
        report_path = write_report(
            [Path(r.cell.cfg.run_dir) for r in runs if r.status == "done"], out / "report.md"
        )
    return SweepResult(out, runs, report_path)


def _execute(
    spec: SweepSpec, todo: list[RunState], runs: list[RunState], stop_file: Path, live: bool
) -> None:
    """Run ``todo`` in order, ``max_parallel`` at a time, recording each outcome in runs.json as it comes."""
    out = stop_file.parent
    queue = list(todo)
    # worker.run_task read here, at call time, not bound at import (tests put a stand-in in its place)
    driver = Driver(
        worker.run_task, spec.address, spec.cpus_per_run, spec.gpus_per_run, spec.max_retries, stop_file
    )
    with driver, LiveTable(lambda: runs, live) as table:
        try:
            while queue or driver.pending:
                # --max-parallel, or what the cluster holds now (it may grow as nodes join)
                limit = spec.max_parallel or driver.capacity()
                if queue and driver.stopping:  # `touch OUT/.stop`: the running runs checkpoint; start no more
                    for r in queue:
                        r.status = "stopped"
                    record_runs(out, queue)  # runs.json lists every run of the grid
                    queue.clear()
                while queue and len(driver.pending) < limit:
                    r = queue.pop(0)
                    r.status, r.started = "running", time.time()
                    record_runs(out, [r])  # runs.json says which runs are going (before the worker can look)
                    driver.submit(dataclasses.asdict(r.cell.cfg), r)
                for r, result in driver.poll():
                    r.settle(result)
                    record_runs(out, [r])
                table.update()
        except KeyboardInterrupt:
            for r in queue:
                r.status = "stopped"
            running = list(driver.pending.values())
            for r, result in driver.drain():
                r.settle(result)
            for r in running:
                if (
                    r.status == "running"
                ):  # abandoned by a second Ctrl-C: its last checkpoint is where it resumes
                    r.status = "stopped"
            record_runs(out, queue + running)
            raise


def record_runs(out: Path, runs: list[RunState]) -> None:
    """Merge these runs' outcomes into ``out/runs.json`` (rewritten atomically); what an earlier record said of a
    run that this one does not (where it ran) is kept."""
    path = out / RUNS_FILE
    try:
        data = json.loads(path.read_text()) if path.is_file() else {}
    except (OSError, json.JSONDecodeError):
        data = {}
    for r in runs:
        data[r.cell.name] = {**data.get(r.cell.name, {}), "status": r.status, "error": r.error, **r.result}
    write_json(path, data)
