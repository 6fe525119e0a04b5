"""Experiment trackers (MLflow, W&B): what goes to a run directory, mirrored to a tracker.

The host opens one ``Tracker`` per run (``open_tracker``) and hands it to the run's ``RunLogger``, which mirrors
every scalar it writes; at the end the host gives the tracker the run's files as artifacts, and it closes the
tracker however the run ends. ``--tracker mlflow,wandb`` opens both behind one ``Tracker``.

- The run directory stays the record: a tracker is a copy. ``<run_dir>/tracker.json`` holds the tracker runs' ids,
  so ``--resume`` continues the same tracker run. On opening, a resumed run reads back from the tracker the last
  step it holds of each key; values at or below it are not sent again (a resume replays the steps after its
  checkpoint bit for bit), and what the tracker lacks up to the checkpoint (a SIGKILL loses what MLflow's batch
  and W&B's writer had not yet stored) is sent from the CSV logs, which hold it (to their 6 significant digits).
- MLflow: ``--tracking-uri``, else ``$MLFLOW_TRACKING_URI``, else the SQLite file ``mlflow.db`` beside the run
  directory (artifacts in ``mlartifacts/`` beside it). Metrics go in batches (at most every ``FLUSH_S`` seconds,
  and at the end); a batch the store refuses is kept and sent again, with one warning.
- W&B: offline (files under ``<run_dir>/wandb``) unless ``WANDB_MODE`` is set. One history row per env step:
  values of one key at one step (episodes of several envs that end together) keep the last.
- Sweeps and tunes: the experiment (W&B project) is the sweep's or the study's name (its out directory's), and each
  run is tagged with it, its variant and its seed; a lone run's experiment is ``ddpgx``.

``check_tracker(cfg)`` (``validate()`` calls it) refuses an unknown tracker or a missing package in one line, before
the run directory exists. mlflow and wandb are optional extras: they are imported only where a tracker is opened.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import importlib.util
import json
import logging
import math
import os
import re
import secrets
import shlex
import shutil
import string
import struct
import sys
import time
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ddpgx.config import Config, env_name
from ddpgx.errors import UserError, warn
from ddpgx.logs import tracker_scalars

TRACKERS = ("mlflow", "wandb")
STATE_FILE = "tracker.json"  # in the run directory: {"mlflow": {"run_id": ..., "tracking_uri": ...}, "wandb": {"id": ...}}
DEFAULT_EXPERIMENT = "ddpgx"
FLUSH_S = 5.0  # MLflow: seconds between metric batches
BATCH = 1000  # MLflow's most metrics in one log_batch call
MAX_PENDING = 200_000  # MLflow: metrics kept for a store that keeps refusing them (older ones are dropped)


class Tracker:
    """The interface the host and the logger call; this base class tracks nothing."""

    def scalars(self, step: int, values: dict[str, float]) -> None:
        """Scalars at an env step (``{"eval/mean_return": -150.0}``)."""

    def artifacts(self, paths: list[Path]) -> None:
        """Files of the run (the plot, the policy files, a GIF)."""

    def close(self) -> None:
        """Flush and end the tracker's run (it can be continued by a resume)."""


# -- which trackers, checked before anything is written


def tracker_names(spec: str) -> list[str]:
    """``"mlflow,wandb"`` -> ``["mlflow", "wandb"]``; ``"none"`` or ``""`` -> ``[]``; anything else: UserError."""
    names = [n.strip().lower() for n in spec.split(",") if n.strip()]
    if names in ([], ["none"]):
        return []
    bad = [n for n in names if n not in TRACKERS]
    if bad:
        raise UserError(f"unknown --tracker {bad[0]!r}; choose none, mlflow, wandb or mlflow,wandb")
    return list(dict.fromkeys(names))


def _needs(name: str, cfg: Config) -> tuple[str, ...]:
    """The modules tracker ``name`` imports (MLflow's SQLite store needs SQLAlchemy and Alembic besides)."""
    if name == "wandb":
        return ("wandb",)
    uri = cfg.tracking_uri or os.environ.get("MLFLOW_TRACKING_URI", "")
    return ("mlflow", "sqlalchemy", "alembic") if not uri or uri.startswith("sqlite:") else ("mlflow",)


def _missing(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is None
    except (ImportError, ValueError):  # a parent package that fails to import, or a module without a spec
        return True


def check_tracker(cfg: Config) -> None:
    """Refuse an unknown ``--tracker`` or one whose package is not installed, in one line naming the extra."""
    for name in tracker_names(cfg.tracker):
        missing = [m for m in _needs(name, cfg) if _missing(m)]
        if missing:
            raise UserError(
                f"--tracker {name} needs the {missing[0]} package, which is not installed: "
                f"pip install 'ddpgx[{name}]' (or run with --tracker none)"
            )


# -- what a run is: its experiment, tags, command line, and the tracker state in its directory


def experiment_of(run_dir: Path) -> str:
    """The sweep's or study's name (its out directory's) for a run of one, else ``ddpgx``."""
    kind, name, _ = _sweep_or_study(run_dir)
    return name if kind else DEFAULT_EXPERIMENT


def _sweep_or_study(run_dir: Path) -> tuple[str, str, str]:
    """(``sweep`` | ``study`` | ``""``, its name, the run's variant) from where the run directory is."""
    parent = run_dir.parent
    if (parent / "sweep.json").is_file():
        return "sweep", parent.name, ""
    m = re.fullmatch(r"trial_(\d+)__s\d+", run_dir.name)
    if m or (parent / "study.db").is_file() or (parent / "trials.csv").is_file():
        return "study", parent.name, f"trial_{m.group(1)}" if m else ""
    return "", "", ""


def run_tags(cfg: Config, run_dir: Path) -> dict[str, str]:
    """Tags of a run: env, preset, seed, run_dir; in a sweep or tune also the sweep's or study's name and the
    variant (a sweep cell ``<env>__<variant>[__k=v]__s<seed>``: what is between env and seed; a tune: the trial)."""
    tags = {"env": cfg.env, "preset": cfg.preset, "seed": str(cfg.seed), "run_dir": str(run_dir)}
    kind, name, variant = _sweep_or_study(run_dir)
    if kind:
        tags[kind] = name
        if kind == "study":
            tags["trial"] = str(int(variant.split("_")[1])) if variant else ""
        else:
            head, tail = f"{env_name(cfg.env)}__", f"__s{cfg.seed}"
            n = run_dir.name
            ok = n.startswith(head) and n.endswith(tail) and len(n) > len(head) + len(tail)
            variant = n[len(head) : -len(tail)] if ok else cfg.preset
        tags["variant"] = variant or cfg.preset
    return tags


def command_line() -> str:
    """The ``ddpgx`` command this process runs (``""`` when ddpgx is used as a library or in a worker)."""
    argv = sys.argv
    if not argv or not argv[0]:
        return ""
    prog = Path(argv[0])
    if prog.name == "ddpgx" or (prog.name in ("cli.py", "__main__.py") and prog.parent.name == "ddpgx"):
        return shlex.join(["ddpgx", *argv[1:]])
    return ""


def read_state(run_dir: Path) -> dict[str, Any]:
    """``<run_dir>/tracker.json`` (empty when there is none or it cannot be read)."""
    try:
        data = json.loads((Path(run_dir) / STATE_FILE).read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _write_state(run_dir: Path, name: str, value: dict[str, Any]) -> None:
    """Record one tracker's run in ``tracker.json`` (atomically: a kill leaves the old file or the new one)."""
    state = read_state(run_dir)
    state[name] = value
    path = run_dir / STATE_FILE
    tmp = path.with_name(f".{STATE_FILE}.tmp")
    with open(tmp, "w") as f:
        f.write(json.dumps(state, indent=2) + "\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _params(cfg: Config) -> dict[str, str]:
    """The resolved config as text: strings as they are, everything else as JSON (config.json's values)."""
    return {k: v if isinstance(v, str) else json.dumps(v) for k, v in dataclasses.asdict(cfg).items()}


class _Seen:
    """What a resumed tracker run already holds: per key, its last step and how many values it has there. A value
    at an earlier step, or one of the first that many at that step, was sent before the run was stopped."""

    def __init__(self, last: dict[str, tuple[int, int]]) -> None:
        self.last = dict(last)

    def new(self, key: str, step: int) -> bool:
        got = self.last.get(key)
        if got is None:
            return True
        last, count = got
        if step > last:
            del self.last[key]  # past what was sent: everything from here on is new
            return True
        if step < last:
            return False
        if count > 0:
            self.last[key] = (last, count - 1)
            return False
        return True


def _first_line(e: BaseException) -> str:
    return f"{type(e).__name__}: {(str(e).strip().splitlines() or [''])[0][:200]}"


# -- MLflow


def mlflow_uri(cfg: Config, run_dir: Path) -> str:
    """--tracking-uri, else $MLFLOW_TRACKING_URI, else ``sqlite:///<run_dir's parent>/mlflow.db``."""
    uri = cfg.tracking_uri or os.environ.get("MLFLOW_TRACKING_URI", "")
    return uri or f"sqlite:///{Path(run_dir).absolute().parent / 'mlflow.db'}"


def _sqlite_file(uri: str) -> Path | None:
    if not uri.startswith("sqlite:///"):
        return None
    return Path(uri[len("sqlite:///") :].split("?")[0]).absolute()


@contextlib.contextmanager
def _store_lock(uri: str) -> Iterator[None]:
    """One process at a time sets up a SQLite store (makes its tables, its experiment): runs of a sweep start
    together. The lock is flock on the database's directory (no lock file left behind); other stores: no lock."""
    db = _sqlite_file(uri)
    if db is None:
        yield
        return
    db.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(db.parent, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def _mlflow() -> Any:
    """MLflow's client class: its usage telemetry off (nothing leaves the machine unless MLFLOW_DISABLE_TELEMETRY
    says otherwise), its INFO lines (and Alembic's, a table per line) off the run's console."""
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    from mlflow.tracking import MlflowClient

    for name in ("mlflow", "alembic"):
        logging.getLogger(name).setLevel(logging.WARNING)
    return MlflowClient


class MlflowTracker(Tracker):
    """One MLflow run per run directory, continued on resume."""

    def __init__(self, cfg: Config, run_dir: Path, resumed: bool, tags: dict[str, str], command: str) -> None:
        self.uri = uri = mlflow_uri(cfg, run_dir)
        self.pending: list[Any] = []
        self.last_flush = time.monotonic()
        self.warned = False
        self.finished = False
        self.seen = _Seen({})
        client_class = _mlflow()  # imported before the lock: the runs of a sweep import at once
        from mlflow.entities import Metric, Param, RunTag

        self.metric = Metric

        with _store_lock(uri):
            self.client = client = client_class(tracking_uri=uri)

            prev = read_state(run_dir).get("mlflow") if resumed else None
            run = None
            if isinstance(prev, dict) and prev.get("tracking_uri") not in (None, uri):
                warn(f"the run's MLflow run is in {prev['tracking_uri']}; starting a new one in {uri}")
            elif isinstance(prev, dict):
                try:
                    run = client.get_run(prev["run_id"])
                    if run.info.lifecycle_stage == "deleted":
                        raise LookupError("it was deleted")
                except Exception as e:  # noqa: BLE001 - deleted, or another store at this URI: start a new run
                    run = None
                    warn(
                        f"MLflow run {prev.get('run_id')} is not in {uri} ({_first_line(e)}); starting a new one"
                    )
            if run is None:
                exp_id = self._experiment(client, experiment_of(run_dir), uri)
                run = client.create_run(
                    exp_id, run_name=run_dir.name, tags={**tags, **({"command": command} if command else {})}
                )
                _write_state(run_dir, "mlflow", {"run_id": run.info.run_id, "tracking_uri": uri,
                                                 "experiment_id": exp_id})  # fmt: skip
                have: dict[str, str] = {}
            else:
                client.update_run(run.info.run_id, status="RUNNING")
                have = dict(run.data.params)
                self.seen = _Seen(self._history(run))
                if command:
                    client.set_tag(run.info.run_id, "resume_command", command)
            self.run_id = run.info.run_id
            # a resume may change --total-steps: MLflow keeps a parameter's first value (it refuses a change)
            params = [Param(k, v[:6000]) for k, v in _params(cfg).items() if k not in have]
            for i in range(0, len(params), 100):
                client.log_batch(self.run_id, params=params[i : i + 100])
            if have:
                changed = [
                    RunTag(f"resumed.{k}", v) for k, v in _params(cfg).items() if k in have and have[k] != v
                ]
                if changed:
                    client.log_batch(self.run_id, tags=changed[:100])

    @staticmethod
    def _experiment(client: Any, name: str, uri: str) -> str:
        exp = client.get_experiment_by_name(name)
        if exp is not None:
            if exp.lifecycle_stage == "deleted":
                client.restore_experiment(exp.experiment_id)
            return exp.experiment_id
        db = _sqlite_file(uri)  # a SQLite store keeps its artifacts beside it, not in the working directory
        location = (db.parent / "mlartifacts").as_uri() if db is not None else None
        try:
            return client.create_experiment(name, artifact_location=location)
        except Exception:  # another process made it first (a server: no lock)
            exp = client.get_experiment_by_name(name)
            if exp is None:
                raise
            return exp.experiment_id

    def _history(self, run: Any) -> dict[str, tuple[int, int]]:
        last = {}
        for key in run.data.metrics:
            hist = self.client.get_metric_history(run.info.run_id, key)
            if hist:
                top = max(m.step for m in hist)
                last[key] = (top, sum(m.step == top for m in hist))
        return last

    def scalars(self, step: int, values: dict[str, float]) -> None:
        ms = int(time.time() * 1000)
        for k, v in values.items():
            v = float(v)
            if math.isfinite(v) and self.seen.new(k, step):
                self.pending.append(self.metric(k, v, ms, int(step)))
        if len(self.pending) >= BATCH or time.monotonic() - self.last_flush >= FLUSH_S:
            self.flush()

    def flush(self) -> None:
        self.last_flush = time.monotonic()
        while self.pending:
            batch = self.pending[:BATCH]
            try:
                self.client.log_batch(self.run_id, metrics=batch)
            except Exception as e:  # noqa: BLE001 - the run directory is the record: training goes on
                if not self.warned:
                    warn(
                        f"MLflow ({self.uri}) refused metrics ({_first_line(e)}); they are kept and sent again"
                    )
                    self.warned = True
                del self.pending[: max(len(self.pending) - MAX_PENDING, 0)]
                return
            del self.pending[: len(batch)]

    def artifacts(self, paths: list[Path]) -> None:
        self.finished = True  # the host gives the files at the run's end
        self.flush()
        for p in paths:
            try:
                self.client.log_artifact(self.run_id, str(p))
            except Exception as e:  # noqa: BLE001
                warn(f"MLflow could not store {p.name} ({_first_line(e)})")

    def close(self) -> None:
        self.flush()
        try:
            self.client.set_terminated(self.run_id, "FINISHED" if self.finished else "KILLED")
        except Exception as e:  # noqa: BLE001
            warn(f"MLflow could not end run {self.run_id} ({_first_line(e)})")


# -- W&B


def _wandb_files(run_dir: Path, run_id: str) -> list[Path]:
    """The transaction logs of W&B run ``run_id`` under ``<run_dir>/wandb`` (one per session: a resumed offline run
    starts a new directory with the same id)."""
    base = Path(run_dir) / "wandb"
    return sorted(
        p
        for p in base.glob(f"*-{run_id}/run-{run_id}.wandb")
        if p.parent.name != "latest-run" and not p.parent.is_symlink()
    )


_BLOCK = 32 * 1024  # the LevelDB log format W&B's transaction log (.wandb) is written in


def _log_records(path: Path) -> Iterator[bytes]:
    """The records of a .wandb file, up to the first torn or unreadable one (a killed run's last write)."""
    data = path.read_bytes()
    if data[:4] != b":W&B":
        return
    pos, parts = 7, b""
    while True:
        if _BLOCK - pos % _BLOCK < 7:  # a block's tail too short for a header is padding
            pos += _BLOCK - pos % _BLOCK
        if pos + 7 > len(data):
            return
        crc, length, kind = struct.unpack("<IHB", data[pos : pos + 7])
        chunk = data[pos + 7 : pos + 7 + length]
        if len(chunk) < length or zlib.crc32(chunk, zlib.crc32(bytes([kind]))) != crc:
            return
        pos += 7 + length
        if kind == 1:  # full
            yield chunk
        elif kind == 2:  # first
            parts = chunk
        elif kind == 3:  # middle
            parts += chunk
        elif kind == 4:  # last
            yield parts + chunk
        else:
            return


def wandb_history(run_dir: Path, run_id: str | None = None) -> list[dict[str, Any]]:
    """The history rows that W&B run ``run_id`` (default: the one in tracker.json) wrote under ``<run_dir>/wandb``,
    in order, each ``{"_step": 1000, "eval/mean_return": -150.2, ...}`` (values read from their JSON)."""
    from wandb.proto import wandb_internal_pb2 as pb

    run_id = run_id or read_state(run_dir).get("wandb", {}).get("id", "")
    rows = []
    for path in _wandb_files(run_dir, run_id):
        for data in _log_records(path):
            rec = pb.Record()
            try:
                rec.ParseFromString(data)
            except Exception:  # noqa: BLE001 - not a record: the end of what can be read
                break
            if rec.WhichOneof("record_type") == "history":
                rows.append(
                    {(i.key or "/".join(i.nested_key)): json.loads(i.value_json) for i in rec.history.item}
                )
    return rows


class WandbTracker(Tracker):
    """One W&B run per run directory (offline by default), continued on resume; one history row per env step."""

    def __init__(self, cfg: Config, run_dir: Path, resumed: bool, tags: dict[str, str], command: str) -> None:
        import wandb

        prev = read_state(run_dir).get("wandb") if resumed else None
        if isinstance(prev, dict) and prev.get("id"):
            run_id = str(prev["id"])
            steps = [int(r["_step"]) for r in wandb_history(run_dir, run_id) if "_step" in r]
            self.last = max(steps, default=-1)
        else:  # the id is recorded before the run starts: a kill in between still resumes it
            run_id = "".join(secrets.choice(string.ascii_lowercase + string.digits) for _ in range(8))
            _write_state(run_dir, "wandb", {"id": run_id})
            self.last = -1
        # W&B names a session's directory by its start, to the second: a session resumed within the second the last
        # one started (DDPG.learn again at once) waits for the next, rather than write into that one's directory
        while any((run_dir / "wandb").glob(f"*-{time.strftime('%Y%m%d_%H%M%S')}-{run_id}")):
            time.sleep(0.05)
        experiment = experiment_of(run_dir)
        kind = "sweep" if "sweep" in tags else "study" if "study" in tags else ""
        self.row: dict[str, float] = {}
        self.step: int | None = None
        self.finished = False
        self.warned = False
        self.run = wandb.init(
            project=os.environ.get("WANDB_PROJECT") or re.sub(r"[/\\#?%:]", "-", experiment)[:128],
            dir=str(run_dir),
            id=run_id,
            resume="allow",
            name=run_dir.name,
            group=tags[kind] if kind else None,
            job_type=tags.get("variant"),
            tags=[f"{k}={v}"[:64] for k, v in tags.items() if k != "run_dir"],
            notes=command or None,
            config=dataclasses.asdict(cfg),
            mode=None if os.environ.get("WANDB_MODE") else "offline",
            reinit="create_new",  # S seeds of one compiled program: S runs in one process
            settings=wandb.Settings(silent=True, console="off", x_disable_stats=True, save_code=False),
        )
        if resumed:  # a resume may change --total-steps
            self.run.config.update(dataclasses.asdict(cfg), allow_val_change=True)

    def scalars(self, step: int, values: dict[str, float]) -> None:
        if step <= self.last:  # sent before the run was stopped (W&B writes whole rows)
            return
        if self.step is not None and step != self.step:
            self._commit()
        self.step = step
        self.row.update({k: float(v) for k, v in values.items() if math.isfinite(float(v))})

    def _commit(self) -> None:
        row, self.row = self.row, {}
        if row and self.step is not None:
            try:
                self.run.log(row, step=self.step, commit=True)
            except Exception as e:  # noqa: BLE001 - the run directory is the record: training goes on
                if not self.warned:
                    warn(f"W&B refused a row ({_first_line(e)}); the run directory has it")
                    self.warned = True

    def artifacts(self, paths: list[Path]) -> None:
        self.finished = True
        self._commit()
        files = Path(self.run.dir)
        for p in paths:  # copied into the W&B run's files (a symlink would point out of it)
            try:
                shutil.copy2(p, files / p.name)
                self.run.save(str(files / p.name), base_path=str(files), policy="now")
            except Exception as e:  # noqa: BLE001
                warn(f"W&B could not store {p.name} ({_first_line(e)})")

    def close(self) -> None:
        try:
            self._commit()
            self.run.finish(exit_code=0 if self.finished else 1)
        except Exception as e:  # noqa: BLE001
            warn(f"W&B could not end run {self.run.id} ({_first_line(e)})")


# -- both


class Trackers(Tracker):
    """Several trackers as one (``--tracker mlflow,wandb``)."""

    def __init__(self, trackers: list[Tracker]) -> None:
        self.trackers = trackers

    def scalars(self, step: int, values: dict[str, float]) -> None:
        for t in self.trackers:
            t.scalars(step, values)

    def artifacts(self, paths: list[Path]) -> None:
        for t in self.trackers:
            t.artifacts(paths)

    def close(self) -> None:
        for t in self.trackers:
            t.close()


_OPEN = {"mlflow": MlflowTracker, "wandb": WandbTracker}
_NAMES = {"mlflow": "MLflow", "wandb": "W&B"}


def open_tracker(cfg: Config, run_dir: Path, resumed: bool, **tags: Any) -> Tracker:
    """The tracker ``cfg`` asks for, for the run in ``run_dir`` (``resumed``: continue its tracker run). ``tags``
    add to (or replace) the run's own (``run_tags``); ``command=...`` replaces the command line read from
    ``sys.argv``."""
    names = tracker_names(cfg.tracker)
    if not names:
        return Tracker()
    run_dir = Path(run_dir).absolute()
    command = str(tags.pop("command", "") or command_line())
    all_tags = {**run_tags(cfg, run_dir), **{k: str(v) for k, v in tags.items()}}
    made: list[Tracker] = []
    try:
        for name in names:
            try:
                made.append(_OPEN[name](cfg, run_dir, resumed, all_tags, command))
            except ImportError as e:
                raise UserError(
                    f"--tracker {name} cannot import {e.name or 'its package'}: pip install 'ddpgx[{name}]'"
                ) from None
            except UserError:
                raise
            except Exception as e:  # noqa: BLE001 - an unreachable server, a bad URI: one line
                where = f" at {mlflow_uri(cfg, run_dir)}" if name == "mlflow" else ""
                raise UserError(f"cannot open the {_NAMES[name]} run{where}: {_first_line(e)}") from None
    except BaseException:
        for t in made:
            t.close()
        raise
    tracker = made[0] if len(made) == 1 else Trackers(made)
    if resumed:  # the CSV logs hold every step up to the checkpoint: what the tracker lost, it gets from them
        for step, values in tracker_scalars(run_dir):
            tracker.scalars(step, values)
    return tracker


def attach_artifacts(cfg: Config, run_dir: Path, paths: list[Path]) -> None:
    """Add files made after the run (``ddpgx record``'s GIF) to the tracker runs in ``<run_dir>/tracker.json``,
    leaving their state as it is. Runs without a tracker: nothing."""
    run_dir = Path(run_dir).absolute()
    state = read_state(run_dir)
    for name in tracker_names(cfg.tracker):
        got = state.get(name)
        if not isinstance(got, dict):
            continue
        try:
            if name == "mlflow":
                client = _mlflow()(tracking_uri=got["tracking_uri"])
                for p in paths:
                    client.log_artifact(got["run_id"], str(p))
            else:
                t = WandbTracker(cfg, run_dir, True, run_tags(cfg, run_dir), "")
                t.artifacts(paths)
                t.close()
        except Exception as e:  # noqa: BLE001 - the files are in the run directory whatever happens here
            warn(f"{_NAMES[name]} could not store {', '.join(p.name for p in paths)} ({_first_line(e)})")


__all__ = [
    "Tracker",
    "open_tracker",
    "check_tracker",
    "tracker_names",
    "attach_artifacts",
    "wandb_history",
    "read_state",
    "STATE_FILE",
]
