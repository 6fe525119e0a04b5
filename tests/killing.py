"""SIGKILL a `ddpgx train` subprocess at a random moment after its first checkpoint (shared by the resume tests)."""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ddpgx.run import run_status

TESTS = Path(__file__).parent
ENV = {**os.environ, "PYTHONPATH": str(TESTS)}


def kill_after_first_checkpoint(flags: list[str], run: Path, jitter: float = 1.5, wait: float = 180,
                                inside: str = "") -> None:  # fmt: skip
    """Train ``flags`` into ``run`` and SIGKILL it up to ``jitter`` seconds after its first checkpoint, trying
    again until the kill lands before the run's final checkpoint (a kill after it is a finished run, which a resume
    only completes). Each try that came too late bounds the next one's delay by half the time the run's rest took.
    ``inside``: the run directory within ``run`` whose checkpoints count (the last seed of a group)."""
    cmd = [sys.executable, "-m", "ddpgx.cli", "train", *flags, "--run-dir", str(run)]
    budget = jitter
    for _ in range(6):
        shutil.rmtree(run, ignore_errors=True)
        p = subprocess.Popen(cmd, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        t0 = time.time()
        while not (run / inside / "checkpoints" / "latest").exists():
            assert p.poll() is None, p.communicate()
            assert time.time() - t0 < wait
            time.sleep(0.02)
        t_first, delay = time.time(), random.uniform(0.0, budget)
        while time.time() - t_first < delay and p.poll() is None:
            time.sleep(0.01)
        ended = p.poll() is not None
        p.send_signal(signal.SIGKILL)  # nothing, where it has ended
        p.wait(timeout=60)
        if not ended and run_status(run / inside) != "finished":
            return
        budget = min(budget, time.time() - t_first) / 2
    pytest.fail("could not kill the run before it finished")


def resume(run: Path, one_core: bool = False) -> subprocess.CompletedProcess:
    """``ddpgx train --resume run`` in a fresh process (``one_core``: pinned to one of this machine's cores, as a
    resume on a smaller machine would be)."""
    args = ["train", "--resume", str(run), "--no-tensorboard"]
    # pinned in the child before jax starts (no preexec_fn: forking a process that has jax's threads is unsafe)
    pin = "import os; os.sched_setaffinity(0, {min(os.sched_getaffinity(0))}); " if one_core else ""
    code = f"{pin}import sys; from ddpgx.cli import main; sys.exit(main({args!r}))"
    return subprocess.run([sys.executable, "-c", code], env=ENV, capture_output=True, text=True, timeout=600)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie (exited, not yet reaped by its parent) is gone for our purposes
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False
