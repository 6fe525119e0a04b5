"""Nothing of an embedded Ray outlives its driver, however the driver ends (kill -9 included).

Ray's own processes die with a driver that stops them (``ray.shutdown()``), and its raylet and workers die with a
killed one, but its dashboard and runtime-env agents are left running. ``watch()`` starts one small process per
driver (this file run as a script, ``python reaper.py PID``) that holds the read end of a pipe whose write end only the driver holds.
While the pipe is open it notes, every second, the driver's descendant processes that are Ray's (by command line);
when the pipe closes (the driver is gone, for any reason) it ends those still alive (SIGTERM, then SIGKILL after 3 s),
checking each one's start time so that a reused PID is never touched. It ends nothing it did not see below the
driver.
"""

from __future__ import annotations

import os
import select
import subprocess
import sys

_started: subprocess.Popen | None = None


def watch() -> None:
    """Start this driver's reaper (once per process)."""
    global _started
    if _started is not None and _started.poll() is None:
        return
    _started = subprocess.Popen(
        [sys.executable, os.path.abspath(__file__), str(os.getpid())],  # as a script: no jax to import first
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # a Ctrl-C to the driver's terminal must not end the reaper before the driver
    )


def _rays(driver: int, me: int) -> dict[int, float]:
    import psutil

    try:
        kids = psutil.Process(driver).children(recursive=True)
    except psutil.Error:
        return {}
    out = {}
    for p in kids:
        try:
            if p.pid != me and "ray" in " ".join(p.cmdline()):
                out[p.pid] = p.create_time()
        except psutil.Error:
            continue
    return out


def _end(seen: dict[int, float]) -> None:
    import psutil

    alive = []
    for pid, born in seen.items():
        try:
            p = psutil.Process(pid)
            if p.create_time() == born:
                p.terminate()
                alive.append(p)
        except psutil.Error:
            continue
    _, left = psutil.wait_procs(alive, timeout=3)
    for p in left:
        try:
            p.kill()
        except psutil.Error:
            pass


def main(driver: int) -> None:
    me, seen = os.getpid(), {}
    while True:  # a look at once, then every second: a driver killed early has its processes seen
        seen.update(_rays(driver, me))
        ready, _, _ = select.select([sys.stdin], [], [], 1.0)
        if ready and not os.read(sys.stdin.fileno(), 1):  # EOF: the driver is gone
            break
    _end(seen)


if __name__ == "__main__":
    main(int(sys.argv[1]))
