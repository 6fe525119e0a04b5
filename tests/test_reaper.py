"""An embedded Ray's processes do not outlive a driver that is SIGKILLed: the reaper ends what it saw below the
driver (by Ray's command lines) and nothing else."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

pytestmark = pytest.mark.slow  # a driver subprocess, watched for seconds

DRIVER = textwrap.dedent(
    """
    import subprocess, sys, time
    from ddpgx import reaper
    reaper.watch()
    ray_like = subprocess.Popen(["bash", "-c", "exec -a ray::FakeAgent sleep 120"], start_new_session=True)
    other = subprocess.Popen(["sleep", "120"], start_new_session=True)
    print(ray_like.pid, other.pid, flush=True)
    time.sleep(120)
    """
)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as f:  # a zombie is gone for our purpose
        return f.read().rsplit(")", 1)[1].split()[0] != "Z"


def test_a_killed_driver_leaves_no_ray_process_and_ends_nothing_else():
    driver = subprocess.Popen([sys.executable, "-c", DRIVER], stdout=subprocess.PIPE, text=True)
    ray_like, other = map(int, driver.stdout.readline().split())
    try:
        # the reaper (a fresh Python) notes the driver's descendants at its start, then every second
        time.sleep(5.0)
        driver.send_signal(signal.SIGKILL)
        driver.wait()
        deadline = time.time() + 15
        while _alive(ray_like) and time.time() < deadline:
            time.sleep(0.2)
        assert not _alive(ray_like)
        assert _alive(other)  # not Ray's: left alone
    finally:
        for pid in (ray_like, other):
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
