"""The memory a run will allocate, checked against the memory of the device that holds it, before anything is made.

Each component states what it allocates as a ``Need`` (learner.memory_need: networks and optimizer state on jax's
device; replay.ReplayBuffer.need: numpy rows on the host; collect.Collector.need: env processes on the host;
jaxloop.ring_need: the compiled loop's ring on jax's device). An engine gathers its components' needs and calls
``check_memory``, which sums them per device and compares each sum with what that device has free.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import jax

from ddpgx.errors import UserError

HOST = "host"
GIB = 2**30


@dataclass(frozen=True)
class Need:
    """``nbytes`` that ``what`` allocates on ``device`` (HOST, or a jax platform such as "gpu"); ``fix`` says how
    to need less."""

    what: str
    nbytes: int
    device: str
    fix: str


def jax_device() -> str:
    """Where jax allocates: the host for the CPU backend, else the accelerator's platform name."""
    platform = jax.default_backend()
    return HOST if platform == "cpu" else platform


def mlp_params(sizes: list[int], extra_in: dict[int, int], norm: bool) -> int:
    """Weights and biases of a dense chain ``sizes[0] -> ... -> sizes[-1]`` (``extra_in[i]``: inputs joining
    layer i), plus 4 per hidden unit for a normalization layer's scale, bias and statistics."""
    n = 0
    for i, (a, b) in enumerate(zip(sizes, sizes[1:], strict=False)):
        n += (a + extra_in.get(i, 0)) * b + b
        if norm and i < len(sizes) - 2:
            n += 4 * b
    return n


def available(device: str) -> int | None:
    """Bytes free for a new allocation on ``device`` (None when unknown)."""
    if device != HOST:
        stats = jax.devices()[0].memory_stats() or {}
        if "bytes_limit" in stats:
            return int(stats["bytes_limit"]) - int(stats.get("bytes_in_use", 0))
        return None
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def check_memory(needs: list[Need], also: str = "") -> None:
    """One line when the needs of any device exceed what it has free (``also``: one more way to need less)."""
    for device in dict.fromkeys(n.device for n in needs):
        mine = [n for n in needs if n.device == device and n.nbytes > 0]
        need_b, have_b = sum(n.nbytes for n in mine), available(device)
        if have_b is None or need_b <= have_b:
            continue
        where = "host memory" if device == HOST else f"{device} memory"
        fixes = list(
            dict.fromkeys([n.fix for n in sorted(mine, key=lambda n: -n.nbytes)] + ([also] if also else []))
        )
        raise UserError(
            f"this run needs about {need_b / GIB:.1f} GiB of {where} ({', '.join(n.what for n in mine)}) but "
            f"{have_b / GIB:.1f} GiB is available; use {', '.join(fixes[:-1]) + ' or ' if len(fixes) > 1 else ''}"
            f"{fixes[-1]}"
        )
