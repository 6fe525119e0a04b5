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

TESTS = Path(__file__).parent
ENV = {**os.environ, "PYTHONPATH": str(TESTS)}


def kill_after_first_checkpoint(flags: list[str], run: Path, jitter: float = 1.5, wait: float = 180,
                                inside: str = "") -> None:  # fmt: skip
    """Train ``flags`` into ``run`` and SIGKILL it up to ``jitter`` seconds after its first checkpoint, trying
    again (with less delay) until the kill lands before the run ends. ``inside``: the run directory within
    ``run`` whose checkpoints count (one seed of a group)."""
    cmd = [sys.executable, "-m", "ddpgx.cli", "train", *flags, "--run-dir", str(run)]
    for attempt in range(4):
        shutil.rmtree(run, ignore_errors=True)
        p = subprocess.Popen(cmd, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        t0 = time.time()
        while not (run / inside / "checkpoints" / "latest").exists():
            assert p.poll() is None, p.communicate()
            assert time.time() - t0 < wait
            time.sleep(0.02)
        time.sleep(random.uniform(0.0, jitter) / (attempt + 1))
        p.send_signal(signal.SIGKILL)
        p.wait(timeout=60)
        if not (run / inside / "final.msgpack").exists():
            return
    pytest.fail("could not kill the run before it finished")


def resume(run: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ddpgx.cli", "train", "--resume", str(run), "--no-tensorboard"],
                          env=ENV, capture_output=True, text=True, timeout=600)  # fmt: skip


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie (exited, not yet reaped by its parent) is gone for our purposes
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False
