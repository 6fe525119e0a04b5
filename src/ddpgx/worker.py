"""One run inside a Ray worker process: pin it to free cores, then train or resume it to its end or to a stop.

The same task serves sweeps and tunes: it reads nothing from the driver but the run's config and the stop files,
and everything it does is in the run directory, so a retried task (its worker killed, its node lost) resumes the
run from its last checkpoint."""

from __future__ import annotations

import os
import socket
import sys
import tempfile
from pathlib import Path
from typing import Any

from ddpgx.logs import read_summary
from ddpgx.run import LOCK_NAME, RunLock, config_from_dict, run_complete, run_status
from ddpgx.train import Interrupted, train


def claim_cores(count: int) -> list[int]:
    """Pin this process to ``count`` of the cores it may use that no other ddpgx run on this machine holds.

    Each core has a lock file in ``$DDPGX_CORE_LOCKS`` (default ``$TMPDIR/ddpgx-core-locks``; ``fcntl.flock``,
    released by the kernel when the process ends, however it ends);
    a run takes the first free ones. XLA sizes its thread pool to the cores it sees, so this must happen before jax
    first computes. Returns the cores taken; none (and no pinning) where the OS has no affinity or all are held."""
    if count < 1 or not hasattr(os, "sched_setaffinity"):
        return []
    import fcntl

    allowed = sorted(os.sched_getaffinity(0))
    lock_dir = Path(os.environ.get("DDPGX_CORE_LOCKS") or Path(tempfile.gettempdir()) / "ddpgx-core-locks")
    lock_dir.mkdir(parents=True, exist_ok=True)
    taken: list[int] = []
    for core in allowed:
        fd = os.open(lock_dir / f"core{core}", os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            continue
        taken.append(core)  # the descriptor stays open (and locked) for the life of the process
        if len(taken) == count:
            break
    if len(taken) < count:
        return []  # more runs than cores: leave the scheduling to the OS rather than stack two runs on one core
    os.sched_setaffinity(0, taken)
    return taken


def _clear_unstarted(run_dir: Path) -> None:
    """A run killed before its first checkpoint starts again from nothing (its seed makes it the same run)."""
    import shutil

    lock = RunLock(run_dir)
    lock.acquire()  # refused if a stale twin of this task still trains here
    try:
        for p in run_dir.iterdir():
            if p.name != LOCK_NAME:
                shutil.rmtree(p) if p.is_dir() else p.unlink()
    finally:
        lock.release()


def run_task(
    cfg_dict: dict[str, Any], stop_file: str, cpus: int, driver_cwd: str = "", own_stop: str = ""
) -> dict[str, Any]:
    """One sweep run, in its own worker process: pin cores, then train (or resume) to the end or to a stop.
    An env module next to where the sweep was started is found as ``ddpgx train`` finds it there."""
    cores = claim_cores(cpus)
    if driver_cwd and driver_cwd not in sys.path:
        sys.path.append(driver_cwd)
    import ray  # the `cluster` extra, here: a driver without it gets import_ray's one-line error, not this import's

    cfg = config_from_dict(cfg_dict)
    run_dir = Path(cfg.run_dir)
    where = {
        "node": ray.get_runtime_context().get_node_id(),
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "cores": cores,
    }
    status = run_status(run_dir)
    if run_complete(run_dir):  # finished just before a retry: nothing to do
        return {"status": "done", **where, **read_summary(run_dir)}
    # the sweep was stopped while this run waited in Ray's queue: it does not start (nothing is written)
    stop = lambda: os.path.exists(stop_file) or bool(own_stop and os.path.exists(own_stop))  # noqa: E731
    if stop():
        return {"status": "stopped", **where}  # runs.json keeps the step it had
    if status == "new" and run_dir.is_dir() and any(run_dir.iterdir()):
        _clear_unstarted(run_dir)
    try:
        # stop: the sweep's (or tune's) stop file, or this run's own (a pruned tune trial)
        # a finished run without final.msgpack (its worker killed between the two) only writes it from its last
        # checkpoint (run.py's recovery)
        train(cfg, resume=status != "new", stop=stop)
    except Interrupted as e:
        return {"status": "stopped", "step": e.step, **where}
    return {"status": "done", **where, **read_summary(run_dir)}
