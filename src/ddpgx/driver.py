"""The driver side of many runs on Ray, shared by ``ddpgx sweep`` and ``ddpgx tune``.

``Driver`` starts an embedded local Ray (or joins a cluster), submits runs as Ray tasks of the function its caller
gives it (``worker.run_task``), hands back what each returns, and stops them all on ``touch OUT/.stop`` or Ctrl-C:
each running run checkpoints at its next episode end. What to run next and what a result means (a sweep's grid, a
tune's trials) is the caller's; so is the task, and the driver never imports the training code.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ddpgx.raynode import error_line, import_ray, start_ray

# what the driver calls in a Ray worker: (config as a dict, stop file, cores, the driver's cwd[, the run's own stop
# file]) -> a result dict, as worker.run_task
Task = Callable[..., dict[str, Any]]


def holder_of(out: Path, wait_s: float = 1.0) -> int | None:
    """The PID in ``out``'s lock file (``run.lock_holder``), for the message to a driver refused the lock: the
    process that has just taken it writes its PID a moment after, so an empty file is read again for ``wait_s``."""
    from ddpgx.run import lock_holder

    deadline = time.monotonic() + wait_s
    while True:
        holder = lock_holder(out)
        if holder or time.monotonic() > deadline:
            return holder
        time.sleep(0.05)


def remote_run_task(ray, task: Task, cpus_per_run: float, gpus_per_run: float, max_retries: int):
    """``task`` (``worker.run_task``) as a Ray task: a fresh process per run (``max_calls=1``), so its core pinning
    and thread limits hold from its first op; a killed worker's run is retried and resumes from its checkpoint."""
    cpus = max(1, int(cpus_per_run))
    env_vars = {v: str(cpus) for v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}
    if gpus_per_run > 0:  # several runs share a GPU: jax must not preallocate most of its memory
        env_vars["XLA_PYTHON_CLIENT_MEM_FRACTION"] = f"{max(0.05, 0.9 * min(1.0, gpus_per_run)):.2f}"
    return ray.remote(max_calls=1)(task).options(
        num_cpus=cpus_per_run,
        num_gpus=gpus_per_run or None,
        max_retries=max_retries,
        retry_exceptions=False,
        runtime_env={"env_vars": env_vars},
    )


class CtrlC:
    """SIGINT sets a flag the driver's loop checks (its first Ctrl-C stops the runs gracefully); a second one
    raises KeyboardInterrupt at once (abandon the running runs)."""

    def __init__(self) -> None:
        self.count = 0
        self.previous: Any = None

    def __enter__(self) -> CtrlC:
        import signal
        import threading

        if threading.current_thread() is threading.main_thread():
            self.previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        self.count += 1
        if self.count > 1:
            raise KeyboardInterrupt

    def __exit__(self, *exc: Any) -> None:
        if self.previous is not None:
            import signal

            signal.signal(signal.SIGINT, self.previous)


class Driver:
    """Runs on Ray, each one a call of ``task`` (``worker.run_task``): ``submit`` a run's config under a tag of the
    caller's, ``poll`` for the ones that returned, ``drain`` after a Ctrl-C. Used as a context manager, which starts
    (or joins) Ray and shuts down what it started.

    A result is the task's dict (``status`` done or stopped, where it ran, its last step and eval), or, for a run
    that failed for good (an exception, or a worker lost more often than ``max_retries``),
    ``{"status": "failed", "error": one line}``."""

    def __init__(
        self,
        task: Task,
        address: str,
        cpus_per_run: float,
        gpus_per_run: float,
        max_retries: int,
        stop_file: Path,
    ) -> None:
        self.ray = import_ray(address)
        self.run_task, self.address, self.stop_file = task, address, stop_file
        self.cpus_per_run, self.gpus_per_run, self.max_retries = cpus_per_run, gpus_per_run, max_retries
        self.pending: dict[Any, Any] = {}  # Ray ref -> the caller's tag
        self.ctrl_c = CtrlC()
        self.started_here = False
        self.task: Any = None

    def __enter__(self) -> Driver:
        self.started_here = start_ray(self.ray, self.address)
        self.task = remote_run_task(
            self.ray, self.run_task, self.cpus_per_run, self.gpus_per_run, self.max_retries
        )
        # Ray's blocking calls may swallow a KeyboardInterrupt; a flag checked at every poll cannot
        self.ctrl_c.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.ctrl_c.__exit__(*exc)
        if self.started_here:
            self.ray.shutdown()

    def capacity(self) -> int:
        """How many runs the cluster holds at once now (its CPUs over --cpus-per-run, and its GPUs over
        --gpus-per-run where runs take GPUs), at least 1: more submitted than that wait in Ray's queue, where a
        stop cannot hold them back and runs.json would call them running."""
        have = self.ray.cluster_resources()
        fits = int(have.get("CPU", 0.0) // self.cpus_per_run)
        if self.gpus_per_run > 0:
            fits = min(fits, int(have.get("GPU", 0.0) // self.gpus_per_run))
        return max(1, fits)

    @property
    def stopping(self) -> bool:
        """True once ``OUT/.stop`` exists: start no more runs."""
        return self.stop_file.exists()

    def submit(self, cfg: dict[str, Any], tag: Any, own_stop: Path | None = None) -> None:
        """Start one run (``dataclasses.asdict`` of its Config); ``own_stop``: a file that stops this run alone."""
        extra = (str(own_stop),) if own_stop else ()
        cpus = max(1, int(self.cpus_per_run))
        ref = self.task.remote(cfg, str(self.stop_file), cpus, os.getcwd(), *extra)
        self.pending[ref] = tag

    def _result(self, ref: Any) -> dict[str, Any]:
        try:
            return self.ray.get(ref)
        except Exception as e:  # noqa: BLE001 - a run that fails for good is reported, the others go on
            return {"status": "failed", "error": error_line(e)}

    def poll(self, timeout: float = 1.0) -> list[tuple[Any, dict[str, Any]]]:
        """(tag, result) of the runs that returned within ``timeout`` seconds; KeyboardInterrupt on a Ctrl-C."""
        if self.ctrl_c.count:
            raise KeyboardInterrupt
        if not self.pending:
            return []
        ready, _ = self.ray.wait(list(self.pending), num_returns=1, timeout=timeout)
        if ready:  # and whatever else has returned by now
            ready, _ = self.ray.wait(list(self.pending), num_returns=len(self.pending), timeout=0)
        return [(self.pending.pop(ref), self._result(ref)) for ref in ready]

    def drain(self) -> list[tuple[Any, dict[str, Any]]]:
        """After a Ctrl-C: every running run checkpoints at its next episode end; returns their results. A second
        Ctrl-C abandons them (their results are then not known: the caller keeps them as stopped)."""
        self.stop_file.write_text("stop\n")
        print(
            "ddpgx: stopping: each running run checkpoints at its next episode end (Ctrl-C again to abandon)"
        )
        results = []
        try:
            for ref in list(self.pending):
                results.append((self.pending[ref], self._result(ref)))
                del self.pending[ref]
        except KeyboardInterrupt:
            for ref in self.pending:
                self.ray.cancel(ref, force=True)
        return results
