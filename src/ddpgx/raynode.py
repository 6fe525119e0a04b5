"""Starting or joining Ray, shared by the many-run driver (sweeps, tunes) and the actors engine (one run's
collection on Ray actors): Ray itself is imported here only, with one line where it is not installed."""

from __future__ import annotations

import os
import socket
import sys
from typing import Any

from ddpgx import reaper
from ddpgx.errors import UserError


def import_ray(address: str = "", what: str = "ddpgx sweep"):
    if address.rpartition(":")[0] in ("127.0.0.1", "localhost") and "ray" not in sys.modules:
        # Ray rewrites a loopback address to the machine's outward IP before connecting, where a cluster started on
        # loopback does not listen; Ray's own switch for local-only clusters keeps it on loopback (read on import)
        os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    try:
        import ray
    except ModuleNotFoundError:
        raise UserError(f"{what} runs on Ray, which is not installed: pip install 'ddpgx[cluster]'") from None
    return ray


def check_address(address: str, flag: str = "--address") -> None:
    """An unreachable address (given as ``flag``) fails here in a second, not after Ray's own minute of retries."""
    if address == "auto":
        return
    host, _, port = address.rpartition(":")
    try:
        with socket.create_connection((host or "127.0.0.1", int(port)), timeout=3):
            pass
    except (OSError, ValueError) as e:
        raise UserError(
            f"cannot reach a Ray cluster at {flag} {address} ({getattr(e, 'strerror', None) or e}); "
            "start one with `ray start --head` and pass the address it prints (HOST:6379)"
        ) from None


def error_line(e: BaseException) -> str:
    cause = getattr(e, "cause", None) or e
    text = str(cause).strip().splitlines()
    return f"{type(cause).__name__}: {text[-1] if text else ''}"[:300]


def start_ray(ray, address: str, min_cpus: int = 0) -> bool:
    """Join the cluster at ``address``, or start an embedded local Ray on loopback (one worker per core, or
    ``min_cpus`` if more: the actors a run asked for on this machine); True if this call started or joined it (the
    caller shuts it down)."""
    import logging
    import warnings

    if ray.is_initialized():
        return False
    # Ray forks its node processes; in a process that has imported jax, Python warns about forking a threaded
    # process (the children exec at once, so it does not apply)
    warnings.filterwarnings("ignore", message=r"os\.fork\(\) was called", category=RuntimeWarning)
    kwargs: dict[str, Any] = dict(include_dashboard=False, logging_level=logging.ERROR, log_to_driver=False)
    if address:
        host = address.rpartition(":")[0]
        if host in ("127.0.0.1", "localhost"):  # a cluster on loopback: this driver's node is on loopback too
            kwargs["_node_ip_address"] = "127.0.0.1"
        ray.init(address=address, **kwargs)
    else:  # an embedded local Ray on loopback only, one worker per core
        ray.init(
            address="local",
            num_cpus=max(os.cpu_count() or 1, min_cpus),
            _node_ip_address="127.0.0.1",
            **kwargs,
        )
        reaper.watch()  # its agents would outlive a killed driver
    return True


def node_of_this_process() -> tuple[str, str]:
    """(address, id) of the Ray node this process runs on."""
    import ray

    return ray.util.get_node_ip_address(), ray.get_runtime_context().get_node_id()
