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
import itertools
import json
import os
import socket
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ddpgx.config import Config, parse_field, preset_config, validate
from ddpgx.errors import UserError

SPEC_FILE = "sweep.json"
RUNS_FILE = "runs.json"  # each run's status, and where it ran (node, host, pid, cores) or why it failed
STOP_FILE = ".stop"
EXECUTION = ("address", "cpus_per_run", "gpus_per_run", "max_parallel", "max_retries", "out")


@dataclass
class SweepSpec:
    """What to run (the grid) and how (Ray). Only the grid's fields identify a sweep; the rest may change
    between invocations on the same ``out``."""

    env: list[str] = field(default_factory=list)
    preset: list[str] = field(default_factory=lambda: [""])
    seeds: list[int] = field(default_factory=lambda: [0])
    set: dict[str, list[Any]] = field(default_factory=dict)
    variant: list[dict[str, Any]] = field(default_factory=list)
    """Named configurations that are not a grid (TOML ``[[variant]]``): ``{"name": "td3", "preset": "td3"}``,
    ``{"name": "big", "actor_hidden": [400, 300], "layer_norm": True}``; each is crossed with env x --set x seeds."""
    total_steps: int | None = None
    out: str = ""
    address: str = ""
    cpus_per_run: float = 1.0
    gpus_per_run: float = 0.0
    max_parallel: int = 0
    max_retries: int = 3

    def identity(self) -> dict[str, Any]:
        """The grid's definition: what must match for a re-run on the same ``out``."""
        d = dataclasses.asdict(self)
        return json.loads(json.dumps({k: v for k, v in d.items() if k not in EXECUTION}))


@dataclass
class Cell:
    name: str
    cfg: Config


def read_toml(path: str | Path) -> dict[str, Any]:
    """A TOML file as a dict; an unreadable or invalid file is one line."""
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib  # type: ignore[no-redef]
    try:
        return tomllib.loads(Path(path).read_text())
    except OSError as e:
        raise UserError(f"cannot read {path}: {e.strerror}") from None
    except tomllib.TOMLDecodeError as e:
        raise UserError(f"{path} is not valid TOML: {e}") from None


def parse_seeds(text: str | int | list) -> list[int]:
    """``0-4`` -> [0, 1, 2, 3, 4]; ``0,3,7``; ``0-2,10``; a list or an int as they are."""
    if isinstance(text, int):
        return [text]
    if isinstance(text, list):
        bad = [s for s in text if isinstance(s, bool) or not isinstance(s, int)]
        if bad:
            raise UserError(
                f'seeds must be whole numbers, got {bad[0]!r} in {text} (e.g. seeds = [0, 1, 2] or "0-4")'
            )
        return list(text)
    seeds: list[int] = []
    try:
        for part in str(text).replace(" ", "").split(","):
            if not part:
                continue
            lo, sep, hi = part.partition("-")
            seeds += list(range(int(lo), int(hi) + 1)) if sep else [int(lo)]
    except ValueError:
        raise UserError(f"--seeds takes ranges and lists like 0-4 or 0,3,7, got '{text}'") from None
    if len(set(seeds)) != len(seeds):
        raise UserError(f"--seeds {text} lists a seed twice")
    return seeds


def parse_set(items: list[str]) -> dict[str, list[str]]:
    """``["tau=0.005,0.01", "actor_hidden=400 300"]`` -> ``{"tau": ["0.005", "0.01"], "actor_hidden": ["400 300"]}``."""
    out: dict[str, list[str]] = {}
    for item in items:
        name, sep, values = item.partition("=")
        if not sep or not name.strip():
            raise UserError(f"--set takes FIELD=VALUE[,VALUE...], got '{item}' (e.g. --set tau=0.005,0.01)")
        name = name.strip().replace("-", "_")
        parts = [v.strip() for v in values.split(",")]
        if not all(parts):
            raise UserError(f"--set {item}: an empty value; separate values with commas")
        out[name] = parts
    return out


TOML_TYPES: dict[str, tuple[tuple[type, ...], str]] = {  # key -> (accepted types, what to write)
    "env": ((str, list), 'an env id or a list of them, e.g. env = ["Hopper-v5"]'),
    "preset": ((str, list), 'a preset or a list of them, e.g. preset = "modern"'),
    "seeds": ((str, int, list), 'a range or a list, e.g. seeds = "0-4" or [0, 3]'),
    "total_steps": ((int,), "a whole number of env steps, e.g. total_steps = 200000"),
    "out": ((str,), 'a directory, e.g. out = "sweeps/hopper"'),
    "address": ((str,), 'HOST:PORT of a Ray cluster, e.g. address = "10.0.0.1:6379"'),
    "cpus_per_run": ((int, float), "a number of cores, e.g. cpus_per_run = 1"),
    "gpus_per_run": ((int, float), "a number of GPUs, e.g. gpus_per_run = 0.5"),
    "max_parallel": ((int,), "a whole number of runs (0: as many as fit), e.g. max_parallel = 2"),
    "max_retries": ((int,), "a whole number, e.g. max_retries = 3"),
}


def check_toml_types(path: Path, flat: dict[str, Any]) -> None:
    """Each top-level value of a sweep file has the type its key takes (one line naming the key otherwise): a
    TOML float for a step count is refused, not truncated."""
    for key, (types, what) in TOML_TYPES.items():
        if key not in flat:
            continue
        v = flat[key]
        ok = isinstance(v, types) and not isinstance(v, bool)
        if ok and isinstance(v, list) and key in ("env", "preset"):
            ok = all(isinstance(x, str) for x in v)
        if ok and isinstance(v, int | float) and v < 0:
            ok = False
        if not ok:
            raise UserError(f"{path}: {key} = {v!r} is not {what}")


def load_toml(path: Path) -> SweepSpec:
    """A sweep written as a file (keys as the flags; [set] holds the grid's fields)::

    env = ["Hopper-v5", "HalfCheetah-v5"]
    preset = ["modern"]
    seeds = "0-4"
    total_steps = 200000
    out = "sweeps/hopper-tau"

    [set]
    tau = [0.005, 0.01]
    actor_hidden = [[400, 300]]

    [[variant]]            # optional: named configurations, each crossed with the rest
    name = "big-ln"
    actor_hidden = [400, 300]
    layer_norm = true
    """
    data = read_toml(path)
    names = {f.name for f in dataclasses.fields(SweepSpec)}
    flat = {k.replace("-", "_"): v for k, v in data.items()}
    unknown = set(flat) - names
    if unknown:
        raise UserError(f"{path}: unknown keys {sorted(unknown)}; use {', '.join(sorted(names))}")
    check_toml_types(path, flat)
    spec = SweepSpec(**{k: v for k, v in flat.items() if k not in ("env", "preset", "seeds", "set")})
    spec.env = [flat["env"]] if isinstance(flat.get("env"), str) else list(flat.get("env", []))
    spec.preset = [flat["preset"]] if isinstance(flat.get("preset"), str) else list(flat.get("preset", [""]))
    spec.seeds = parse_seeds(flat.get("seeds", [0]))
    grid = flat.get("set", {})
    if not isinstance(grid, dict):
        raise UserError(f"{path}: [set] must be a table of FIELD = [values]")
    spec.set = {k.replace("-", "_"): (v if isinstance(v, list) else [v]) for k, v in grid.items()}
    variants = flat.get("variant", [])
    if not isinstance(variants, list) or not all(isinstance(v, dict) for v in variants):
        raise UserError(f"{path}: variants are [[variant]] tables, each with a name and its fields")
    spec.variant = [{k.replace("-", "_"): v for k, v in v.items()} for v in variants]
    return spec


def _text(v: Any) -> str:
    """A value as it appears in a run's name and in ``--set`` (tuples as ``400-300``)."""
    if isinstance(v, (list, tuple)):
        return "-".join(map(str, v))
    return str(v).replace(" ", "-")


def build_grid(spec: SweepSpec) -> list[Cell]:
    """Every cell x seed as a validated Config (all refused up front, before anything runs)."""
    from ddpgx.config import env_name, resolve

    if not spec.out:
        raise UserError("a sweep needs --out DIR (where its run directories go)")
    if not spec.env:
        raise UserError("a sweep needs at least one --env")
    if not spec.seeds:
        raise UserError("a sweep needs at least one seed (--seeds 0-4)")
    for name, values in spec.set.items():
        if not values:
            raise UserError(f"--set {name} has no values: the grid would be empty")
        if name in ("seed", "env", "preset", "run_dir"):
            raise UserError(f"--set {name}: use --{name.replace('_', '-')}s / --{name} for that")
    typed = {name: [parse_field(name, v) for v in values] for name, values in spec.set.items()}
    out = Path(
        spec.out
    ).absolute()  # workers on other nodes (or in another directory) write to the same place
    variants = [_check_variant(v) for v in spec.variant] or [("", {})]
    names = [name for name, _ in variants]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise UserError(f"two variants are named {twice[0]!r}; each [[variant]] needs a name of its own")
    cells = []
    for env, preset, (vname, vover) in itertools.product(spec.env, spec.preset, variants):
        base = preset_config(vover.get("preset", preset), env)
        for combo in itertools.product(*(list(zip(spec.set[n], typed[n], strict=True)) for n in typed)):
            over = {k: v for k, v in vover.items() if k != "preset"}
            over.update({n: v for n, (_, v) in zip(typed, combo, strict=True)})
            if spec.total_steps is not None:
                over.setdefault("total_steps", int(spec.total_steps))
            tag = "".join(  # named from what differs: the fields given more than one value
                f"__{n}={_text(raw)}"
                for n, (raw, _) in zip(typed, combo, strict=True)
                if len(spec.set[n]) > 1
            )
            for seed in spec.seeds:
                name = f"{env_name(env)}__{vname or base.preset}{tag}__s{seed}"
                cfg = base.replace(**over, seed=seed, run_dir=str(out / name), progress=False)
                cells.append(Cell(name, validate(resolve(cfg))))
    # seed-major: every configuration gets its first seed before any gets its second, so a sweep stopped half-way
    # (or run on a small machine) has covered all of its configurations evenly
    order = {seed: i for i, seed in enumerate(spec.seeds)}
    cells.sort(key=lambda c: order[c.cfg.seed])
    if not cells:
        raise UserError(
            f"the sweep's grid is empty: {len(spec.env)} env(s) x {len(spec.preset)} preset(s) x {len(variants)} "
            f"variant(s) x {len(spec.seeds)} seed(s); give each at least one value"
        )
    return cells


def _check_variant(v: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """A variant table -> (its name, its fields typed as Config values)."""
    v = dict(v)
    name = str(v.pop("name", "")).strip()
    if not name or any(ch in name for ch in "/ _"):
        raise UserError(
            f"each [[variant]] needs a name without spaces, slashes or underscores (it names its runs), got {name!r}"
        )
    bad = [k for k in v if k in ("seed", "env", "run_dir")]
    if bad:
        raise UserError(f"variant {name}: {bad[0]} is set by the sweep itself, not by a variant")
    over = {k: (str(x) if k == "preset" else parse_field(k, x)) for k, x in v.items()}
    return name, over


def check_envs(cells: list[Cell]) -> None:
    """Make each distinct env once, so an unknown env or a bad env kwarg is refused before any run starts."""
    from ddpgx.envs import make_run_env

    seen = set()
    for c in cells:
        key = (c.cfg.env, c.cfg.env_kwargs, c.cfg.env_module)
        if key not in seen:
            seen.add(key)
            make_run_env(c.cfg).close()


def check_spec_file(out: Path, spec: SweepSpec, cells: list[Cell]) -> None:
    """Record the sweep in ``out/sweep.json``; on a re-run, refuse a different spec, naming the difference."""
    from ddpgx import __version__
    from ddpgx.runfiles import write_json

    path = out / SPEC_FILE
    ident = spec.identity()
    if path.is_file():
        try:
            data = json.loads(path.read_text())
            old = data["spec"]
        except (json.JSONDecodeError, KeyError, OSError) as e:
            raise UserError(
                f"{path} is not a ddpgx sweep file ({type(e).__name__}); use another --out"
            ) from None
        diffs = [
            f"{k} was {json.dumps(old.get(k))}, now {json.dumps(ident.get(k))}"
            for k in sorted(set(old) | set(ident))
            if old.get(k) != ident.get(k)
        ]
        if diffs and _extends(old, ident, data.get("grid", []), cells):
            write_json(path, {"spec": ident, "grid": [c.name for c in cells], "ddpgx": __version__})
            return
        if diffs:
            raise UserError(
                f"{out} holds a different sweep ({'; '.join(diffs)}); use another --out, or the same spec to "
                "continue it"
            )
        return
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} is an existing file, not a directory")
    names = {c.name for c in cells}
    adoptable = (
        {p.name for p in out.iterdir() if p.name in names and (p / "config.json").is_file()}
        if (out.is_dir())
        else set()
    )  # runs made before the sweep (ddpgx train --run-dir OUT/NAME) join it under their names
    if out.is_dir() and any(
        p.name not in (STOP_FILE, ".lock") and p.name not in adoptable for p in out.iterdir()
    ):
        raise UserError(
            f"--out {out} exists and is not a sweep directory (no {SPEC_FILE}); use another --out"
        )
    out.mkdir(parents=True, exist_ok=True)
    write_json(path, {"spec": ident, "grid": [c.name for c in cells], "ddpgx": __version__})


GROWABLE = ("env", "preset", "seeds", "variant")  # lists a sweep may add to and go on


def _extends(old: dict[str, Any], new: dict[str, Any], old_grid: list[str], cells: list[Cell]) -> bool:
    """True when the new spec only adds envs, presets, seeds or variants to the old one and keeps every old run's
    name: the sweep goes on with the runs it has and adds the new ones."""
    for k in set(old) | set(new):
        if old.get(k) == new.get(k):
            continue
        if k not in GROWABLE or not all(x in (new.get(k) or []) for x in (old.get(k) or [])):
            return False
    return set(old_grid) <= {c.name for c in cells}


def run_status(run_dir: Path) -> str:
    """``finished`` (its last checkpoint is the run's end), ``started`` (it has a checkpoint), or ``new``."""
    from ddpgx import checkpoint as ckpt

    name = ckpt.latest_name(run_dir)
    if name is None:
        return "new"
    try:
        manifest = json.loads((run_dir / ckpt.DIRNAME / name / "manifest.json").read_text())
    except (OSError, json.JSONDecodeError):
        return "started"
    return "finished" if manifest.get("finished") else "started"


# ------------------------------------------------------------------ one run, inside a Ray worker


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

    from ddpgx.run import LOCK_NAME, RunLock

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
    import ray

    from ddpgx.run import config_from_dict
    from ddpgx.train import Interrupted, train

    cfg = config_from_dict(cfg_dict)
    run_dir = Path(cfg.run_dir)
    where = {
        "node": ray.get_runtime_context().get_node_id(),
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "cores": cores,
    }
    status = run_status(run_dir)
    if status == "finished":  # finished just before a retry: nothing to do
        return {"status": "done", **where, **summary(run_dir)}
    if status == "new" and run_dir.is_dir() and any(run_dir.iterdir()):
        _clear_unstarted(run_dir)
    try:
        # the sweep's (or tune's) stop file, and this run's own (a pruned tune trial)
        stop = lambda: os.path.exists(stop_file) or bool(own_stop and os.path.exists(own_stop))  # noqa: E731
        train(cfg, resume=status == "started", stop=stop)
    except Interrupted as e:
        return {"status": "stopped", "step": e.step, **where}
    return {"status": "done", **where, **summary(run_dir)}


def summary(run_dir: Path) -> dict[str, Any]:
    """Last step, last eval and wall time of a run, from its CSV logs (what the live table and report show)."""
    from ddpgx.plots import read_rows

    ev = read_rows(run_dir / "eval.csv")
    ep = read_rows(run_dir / "episodes.csv")
    last_ev = ev[-1] if ev else {}
    return {
        "step": max([int(float(rows[-1]["step"])) for rows in (ep, ev) if rows], default=0),
        "eval": float(last_ev["mean_return"]) if last_ev else None,
        "wall_s": float(last_ev.get("wall_s", 0.0)) if last_ev else None,
    }


# ------------------------------------------------------------------ the driver


@dataclass
class RunState:
    cell: Cell
    status: str = "queued"  # queued, running, done, failed, stopped
    error: str = ""
    result: dict[str, Any] = field(default_factory=dict)
    started: float = 0.0


@dataclass
class SweepResult:
    out: Path
    runs: list[RunState]
    report: Path | None

    @property
    def failed(self) -> list[RunState]:
        return [r for r in self.runs if r.status == "failed"]


def _import_ray(address: str = ""):
    if address.rpartition(":")[0] in ("127.0.0.1", "localhost") and "ray" not in sys.modules:
        # Ray rewrites a loopback address to the machine's outward IP before connecting, where a cluster started on
        # loopback does not listen; Ray's own switch for local-only clusters keeps it on loopback (read on import)
        os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    try:
        import ray
    except ModuleNotFoundError:
        raise UserError(
            "ddpgx sweep runs on Ray, which is not installed: pip install 'ddpgx[cluster]'"
        ) from None
    return ray


def _check_address(address: str) -> None:
    """An unreachable --address fails here in a second, not after Ray's own minute of retries."""
    if address == "auto":
        return
    host, _, port = address.rpartition(":")
    try:
        with socket.create_connection((host or "127.0.0.1", int(port)), timeout=3):
            pass
    except (OSError, ValueError) as e:
        raise UserError(
            f"cannot reach a Ray cluster at --address {address} ({getattr(e, 'strerror', None) or e}); "
            "start one with `ray start --head` and pass the address it prints (HOST:6379)"
        ) from None


def _error_line(e: BaseException) -> str:
    cause = getattr(e, "cause", None) or e
    text = str(cause).strip().splitlines()
    return f"{type(cause).__name__}: {text[-1] if text else ''}"[:300]


def run_sweep(spec: SweepSpec, live: bool = True) -> SweepResult:
    """Validate the whole grid, then run every unfinished run as a Ray task; returns each run's state."""
    cells = build_grid(spec)
    check_envs(cells)
    if spec.cpus_per_run <= 0 or spec.gpus_per_run < 0 or spec.max_parallel < 0 or spec.max_retries < 0:
        raise UserError("--cpus-per-run must be > 0; --gpus-per-run, --max-parallel and --max-retries >= 0")
    ray = _import_ray(spec.address)
    if spec.address:
        _check_address(spec.address)
    out = Path(spec.out)
    check_spec_file(out, spec, cells)
    from ddpgx.run import RunLock, RunLocked

    lock = RunLock(out)  # one driver per sweep: a second would start the same runs again
    try:
        lock.acquire()
    except RunLocked:
        from ddpgx.run import lock_holder

        raise UserError(
            f"--out {out} is being swept by process {lock_holder(out) or '?'}; wait for it, or stop it with "
            f"`touch {out / STOP_FILE}` (its runs checkpoint and it exits), then run this again"
        ) from None
    try:
        return _sweep_locked(ray, spec, cells, out, live)
    finally:
        lock.release()


def _sweep_locked(ray, spec: SweepSpec, cells: list[Cell], out: Path, live: bool) -> SweepResult:
    stop_file = out.absolute() / STOP_FILE
    stop_file.unlink(missing_ok=True)
    runs = [RunState(c) for c in cells]
    for r in runs:
        if run_status(Path(r.cell.cfg.run_dir)) == "finished":
            r.status, r.result = "done", summary(Path(r.cell.cfg.run_dir))
    # every run of the grid with its status as this driver finds it: one that finished while no driver watched (an
    # earlier driver was killed) is listed as done, and a deleted runs.json is rebuilt
    record_runs(out, runs)
    todo = [r for r in runs if r.status == "queued"]
    if todo:
        _execute(ray, spec, todo, runs, stop_file, live)
    report_path = None
    if any(r.status == "done" for r in runs):
        from ddpgx.report import write_report

        report_path = write_report(
            [Path(r.cell.cfg.run_dir) for r in runs if r.status == "done"], out / "report.md"
        )
    return SweepResult(out, runs, report_path)


def start_ray(ray, address: str) -> bool:
    """Join the cluster at ``address``, or start an embedded local Ray on loopback (one worker per core); True if
    this call started or joined it (the caller shuts it down)."""
    import logging

    if ray.is_initialized():
        return False
    kwargs: dict[str, Any] = dict(include_dashboard=False, logging_level=logging.ERROR, log_to_driver=False)
    if address:
        host = address.rpartition(":")[0]
        if host in ("127.0.0.1", "localhost"):  # a cluster on loopback: this driver's node is on loopback too
            kwargs["_node_ip_address"] = "127.0.0.1"
        ray.init(address=address, **kwargs)
    else:  # an embedded local Ray on loopback only, one worker per core
        ray.init(address="local", num_cpus=os.cpu_count() or 1, _node_ip_address="127.0.0.1", **kwargs)
        from ddpgx import reaper

        reaper.watch()  # its agents would outlive a killed driver
    return True


def remote_run_task(ray, cpus_per_run: float, gpus_per_run: float, max_retries: int):
    """``run_task`` as a Ray task: a fresh process per run (``max_calls=1``), so its core pinning and thread limits
    hold from its first op; a killed worker's run is retried and resumes from its checkpoint."""
    cpus = max(1, int(cpus_per_run))
    env_vars = {v: str(cpus) for v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}
    if gpus_per_run > 0:  # several runs share a GPU: jax must not preallocate most of its memory
        env_vars["XLA_PYTHON_CLIENT_MEM_FRACTION"] = f"{max(0.05, 0.9 * min(1.0, gpus_per_run)):.2f}"
    return ray.remote(max_calls=1)(run_task).options(
        num_cpus=cpus_per_run,
        num_gpus=gpus_per_run or None,
        max_retries=max_retries,
        retry_exceptions=False,
        runtime_env={"env_vars": env_vars},
    )


def _execute(
    ray, spec: SweepSpec, todo: list[RunState], runs: list[RunState], stop_file: Path, live: bool
) -> None:

    started_here = start_ray(ray, spec.address)
    cpus = max(1, int(spec.cpus_per_run))
    task = remote_run_task(ray, spec.cpus_per_run, spec.gpus_per_run, spec.max_retries)
    queue = list(todo)
    pending: dict[Any, RunState] = {}
    limit = spec.max_parallel or len(queue)
    table = _LiveTable(runs, live)
    # Ray's blocking calls may swallow a KeyboardInterrupt; a flag checked every second cannot
    ctrl_c = _CtrlC()
    try:
        with table, ctrl_c:
            while queue or pending:
                if ctrl_c.count:
                    raise KeyboardInterrupt
                if (
                    queue and stop_file.exists()
                ):  # `touch OUT/.stop`: the running runs checkpoint; start no more
                    for r in queue:
                        r.status = "stopped"
                    record_runs(stop_file.parent, queue)  # runs.json lists every run of the grid
                    queue.clear()
                while queue and len(pending) < limit:
                    r = queue.pop(0)
                    r.status, r.started = "running", time.time()
                    cfg = dataclasses.asdict(r.cell.cfg)
                    pending[task.remote(cfg, str(stop_file), cpus, os.getcwd())] = r
                ready, _ = ray.wait(list(pending), num_returns=1, timeout=1.0)
                for ref in ready:
                    r = pending.pop(ref)
                    try:
                        r.result = ray.get(ref)
                        r.status = r.result["status"]
                    except Exception as e:  # noqa: BLE001 - a run that fails for good is marked, the rest go on
                        r.status, r.error = "failed", _error_line(e)
                    record_runs(stop_file.parent, [r])
                table.update()
    except KeyboardInterrupt:
        stop_file.write_text("stop\n")
        for r in queue:
            r.status = "stopped"
        print(
            "ddpgx: stopping: each running run checkpoints at its next episode end (Ctrl-C again to abandon)"
        )
        try:
            for ref, r in pending.items():
                try:
                    r.result = ray.get(ref)
                    r.status = r.result["status"]
                except Exception as e:  # noqa: BLE001
                    r.status, r.error = "failed", _error_line(e)
        except KeyboardInterrupt:
            for ref in pending:
                ray.cancel(ref, force=True)
        record_runs(stop_file.parent, list(pending.values()))
        raise
    finally:
        if started_here:
            ray.shutdown()


class _CtrlC:
    """SIGINT sets a flag the driver's loop checks (its first Ctrl-C stops the sweep gracefully); a second one
    raises KeyboardInterrupt at once (abandon the running runs)."""

    def __init__(self) -> None:
        self.count = 0
        self.previous: Any = None

    def __enter__(self) -> _CtrlC:
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


def record_runs(out: Path, runs: list[RunState]) -> None:
    """Merge these runs' outcomes into ``out/runs.json`` (rewritten atomically); what an earlier record said of a
    run that this one does not (where it ran) is kept."""
    from ddpgx.runfiles import write_json

    path = out / RUNS_FILE
    try:
        data = json.loads(path.read_text()) if path.is_file() else {}
    except (OSError, json.JSONDecodeError):
        data = {}
    for r in runs:
        data[r.cell.name] = {**data.get(r.cell.name, {}), "status": r.status, "error": r.error, **r.result}
    write_json(path, data)


class _LiveTable:
    """One rich table: runs done / running / queued / failed, total steps/s, ETA, each running run's step and last
    eval (read from its CSV logs)."""

    def __init__(self, runs: list[RunState], live: bool) -> None:
        self.runs, self.enabled = runs, live
        self.t0 = time.time()
        self.live = None

    def __enter__(self) -> _LiveTable:
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

        count = {
            s: sum(r.status == s for r in self.runs)
            for s in ("done", "running", "queued", "failed", "stopped")
        }
        steps_done = total = 0
        rate = 0.0
        rows = []
        for r in self.runs:
            total += r.cell.cfg.total_steps
            if r.status == "done":
                steps_done += r.cell.cfg.total_steps
            elif r.status == "running":
                s = summary(Path(r.cell.cfg.run_dir)) if Path(r.cell.cfg.run_dir, "eval.csv").exists() else {}
                step = s.get("step", 0)
                steps_done += step
                rate += step / max(time.time() - r.started, 1e-9)
                ev = s.get("eval")
                rows.append(
                    (r.cell.name, f"{step}/{r.cell.cfg.total_steps}", "-" if ev is None else f"{ev:.1f}")
                )
        eta = (total - steps_done) / rate if rate > 0 else float("nan")
        title = (
            f"sweep: {count['done']} done, {count['running']} running, {count['queued']} queued, "
            f"{count['failed']} failed  |  {rate:.0f} steps/s  |  ETA "
            + ("-" if eta != eta else time.strftime("%H:%M:%S", time.gmtime(eta)))
        )
        table = Table(title=title, title_justify="left")
        for col in ("running run", "step", "last eval"):
            table.add_column(col)
        for row in rows:
            table.add_row(*row)
        for r in self.runs:
            if r.status == "failed":
                table.add_row(f"[red]{r.cell.name}[/]", "failed", r.error[:80])
        return table
