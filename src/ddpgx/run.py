"""A run directory's life: create or resume it, lock it, config.json, checkpoints in and out, final files.

Layout of a run directory::

    config.json        the resolved Config, package versions, observation/action shapes and bounds
    .lock              held (fcntl.flock) by the one process training in the directory; holds its PID
    episodes.csv, eval.csv, train.csv, tb/
    checkpoints/       atomic, checksummed, validated (see checkpoint.py); the last one is the run's end
    final.msgpack      the final actor and critic (written once the final checkpoint exists)
    returns.png        learning curves

Lifecycle: ``RunDir(cfg, resume)`` validates without touching the disk; ``open()`` creates (or, resuming, locks,
loads the newest valid checkpoint, cuts the logs back to it, forgets a stale final file) and only then records
the config; ``save_checkpoint`` / ``finish`` write; ``close`` releases the lock.
"""

from __future__ import annotations

import dataclasses
import errno
import fcntl
import json
import os
import shutil
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ddpgx import checkpoint as ckpt
from ddpgx import runfiles
from ddpgx.config import Config
from ddpgx.errors import UserError, warn
from ddpgx.fieldtypes import check_types

LOCK_NAME = ".lock"
# `touch OUT/.stop` (a sweep's or tune's OUT): each running run checkpoints at its next episode end, none starts
STOP_FILE = ".stop"
FINAL_PARAMS = "final.msgpack"
BEST_PARAMS = "best.msgpack"  # the policy of the best noise-free evaluation so far, with its step
# fields that may differ when a run is resumed: its length and how it is shown, never what it learns
RESUMABLE_CHANGES = {
    "total_steps",
    "chunk_steps",  # the compiled loop's chunk length changes no bit (tests/test_jaxloop.py)
    "progress",
    "tensorboard",
    "plot",
    "checkpoint_every",
    "keep_checkpoints",
    "run_dir",
    "compile_cache",
    "tracker",
    "tracking_uri",
    "target_return",  # a run stopped by its target continues with a higher one, or none
    "target_success",
    "actor_address",  # where the actors run, not what they collect
    "actor_cpus",
}


class FinalRecovered(Exception):  # noqa: N818 - not an error: the run is complete and its final file written
    """Resuming a run that finished but was stopped before final.msgpack: the file was written from the final
    checkpoint (``loaded``, checked against the config); there is nothing to train. For a seed group
    (``group``: the group's directory), ``manifests`` are every seed's final checkpoint manifests and ``runs``
    their directories, in seed order."""

    def __init__(self, loaded: ckpt.Loaded, path: Path, group: Path | None = None,
                 manifests: tuple[dict[str, Any], ...] = (), runs: tuple[Path, ...] = ()) -> None:  # fmt: skip
        super().__init__(f"wrote {path} from the final checkpoint")
        self.loaded, self.path = loaded, path
        self.group, self.manifests, self.runs = group, manifests, runs


def finished_for_good(manifest: dict[str, Any], total_steps: int) -> bool:
    """A checkpoint written when its run ended (its finished marker) that a resume with ``total_steps`` cannot
    extend: the run reached its target, or ``total_steps`` is no more than where it ended."""
    reached = manifest.get("finished") in ("target_return", "target_success")
    return bool(manifest.get("finished")) and (reached or manifest["counters"]["step"] >= total_steps)


class RunLocked(UserError):
    """Another process is training in this run directory."""


class RunLock:
    """An exclusive ``fcntl.flock`` on ``<run_dir>/.lock``, which holds the owner's PID.

    flock (not a PID file checked by hand): the kernel releases it when the owner exits, however it exits
    (SIGKILL, crash, power loss on a local disk), so a stale lock can never block the next resume, and there is
    no race between checking and taking it. It is per open file, so a second ``train`` in the same process is
    refused too. POSIX only; on NFS it needs a server with lock support (NFSv4)."""

    def __init__(self, run_dir: Path) -> None:
        self.path = run_dir / LOCK_NAME
        self.fd: int | None = None

    def acquire(self) -> None:
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as e:  # a read-only mount, a directory the user may not write to
            raise UserError(
                f"cannot write to run directory {self.path.parent}: {e.strerror}; training there (a new run, a "
                "resume or an extension) needs a writable directory: copy it elsewhere, or pass another --run-dir"
            ) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            os.close(fd)
            if e.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise UserError(f"cannot lock {self.path}: {e.strerror}") from None
            holder = lock_holder(self.path.parent)
            who = f"process {holder}" if holder else "another process"
            raise RunLocked(
                f"run directory {self.path.parent} is in use by {who}; wait for it to end or stop it "
                f"(kill {holder or 'PID'}), then resume with: ddpgx train --resume {self.path.parent}"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        os.fsync(fd)
        self.fd = fd

    def release(self) -> None:
        if self.fd is not None:
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = None


def lock_holder(run_dir: Path) -> int | None:
    """PID written in the run's lock file by its last holder (None when unknown)."""
    try:
        return int((run_dir / LOCK_NAME).read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def busy_holder(run_dir: Path) -> int | None:
    """The PID of a live process holding ``run_dir``'s lock now (0 when it holds it but its PID is unknown), or
    None when nobody does. Only tries the lock; creates nothing."""
    try:
        fd = os.open(run_dir / LOCK_NAME, os.O_RDONLY)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError:
        return lock_holder(run_dir) or 0
    finally:
        os.close(fd)
    return None


def run_status(run_dir: Path) -> str:
    """``finished`` (its newest checkpoint is the run's end), ``started`` (it has a checkpoint), or ``new``. The
    newest ``step_*`` directory counts even where ``latest`` does not name it yet (a process killed between the
    checkpoint's rename into place and the pointer's update), as it does for a resume."""
    found = ckpt.candidates(run_dir)
    name = found[0].name if found else ckpt.latest_name(run_dir)
    if name is None:
        return "new"
    try:
        manifest = json.loads((run_dir / ckpt.DIRNAME / name / "manifest.json").read_text())
    except (OSError, json.JSONDecodeError):
        return "started"
    return "finished" if manifest.get("finished") else "started"


def run_complete(run_dir: Path) -> bool:
    """Finished, and its final.msgpack written (a run stopped between the two is completed by ``--resume``)."""
    return run_status(run_dir) == "finished" and (run_dir / FINAL_PARAMS).is_file()


def config_from_dict(d: dict) -> Config:
    """Rebuild a Config from config.json (lists back to tuples; unknown keys rejected)."""
    names = {f.name for f in dataclasses.fields(Config)}
    unknown = set(d) - names
    if unknown:
        raise UserError(f"config.json has unknown fields {sorted(unknown)}; was it written by a newer ddpgx?")
    cfg = Config(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})
    check_types(cfg)  # a hand-edited config.json: one line naming the field, not a failure deep in the run
    return cfg


def load_run_config(run_dir: Path | str) -> Config:
    path = Path(run_dir) / "config.json"
    if not path.is_file():
        if not Path(run_dir).exists():
            raise UserError(f"{run_dir} does not exist; pass the directory `ddpgx train` wrote (--run-dir)")
        raise UserError(f"{run_dir} is not a ddpgx run directory (no config.json)")
    try:
        data = json.loads(path.read_text())
        cfg = config_from_dict(data["config"])
    except (json.JSONDecodeError, KeyError, TypeError) as e:
        raise UserError(f"{path} is not a valid ddpgx config: {e}") from None
    except UserError as e:
        raise UserError(f"{path}: {e}") from None
    find_env_modules(data.get("env_paths"))
    return cfg


def find_env_modules(paths: Any) -> None:
    """Where the run's env modules were imported from (config.json's env_paths), searched last: a ``module:Class``
    run is evaluated, recorded or resumed from any directory."""
    for p in paths if isinstance(paths, list) else []:
        if isinstance(p, str) and p not in sys.path and Path(p).is_dir():
            sys.path.append(p)


def check_resume_config(saved: Config, asked: Config) -> None:
    """Only the run length and cosmetic options may change on resume; anything else would not be the same run."""
    # the actors engine's env slots are the same whichever actor holds them: a pipelined run may continue on
    # another number of actors with as many envs in all (--actors 2 --num-envs 2 -> --actors 4), to the same bits
    respread = (
        saved.actors > 0 and asked.actors > 0 and saved.collect == asked.collect
        and saved.actors * saved.num_envs == asked.actors * asked.num_envs
    )  # fmt: skip
    m = saved.actors * saved.num_envs
    if (
        saved.actors
        and asked.actors
        and not respread
        and (saved.actors, saved.num_envs) != (asked.actors, asked.num_envs)
    ):
        raise UserError(
            f"cannot resume with --actors {asked.actors} --num-envs {asked.num_envs}: the run steps {m} envs in all "
            f"(--actors {saved.actors} x --num-envs {saved.num_envs}); resume on any --actors K with --num-envs {m}/K"
        )
    for f in dataclasses.fields(Config):
        a, b = getattr(saved, f.name), getattr(asked, f.name)
        if respread and f.name in ("actors", "num_envs"):
            continue
        if f.name not in RESUMABLE_CHANGES and a != b:
            raise UserError(
                f"cannot resume with --{f.name.replace('_', '-')} {b}: the run was started with {a}; "
                "only --total-steps, the targets (and display options) may change on resume"
            )


def check_new_run_dir(path: Path) -> None:
    """A new run needs an absent or empty directory (checked before anything is written). A lone ``.lock`` counts
    as empty: it is what a run stopped before it wrote anything leaves (a sweep stopped with runs queued)."""
    if path.exists() and not path.is_dir():
        raise UserError(f"--run-dir {path} is an existing file, not a directory; pass another --run-dir")
    if path.is_dir() and (holder := busy_holder(path)) is not None:
        raise UserError(
            f"run directory {path} is being trained by {f'process {holder}' if holder else 'another process'} "
            "now; pass another --run-dir (resuming it would collide with that process)"
        )
    if path.is_dir() and any(p.name != LOCK_NAME for p in path.iterdir()):
        raise UserError(
            f"run directory {path} already exists and is not empty; pass another --run-dir, "
            f"or continue it with: ddpgx train --resume {path}"
        )


class RunDir:
    """One run directory, from validation to release. See the module docstring for the order of things."""

    def __init__(self, cfg: Config, resume: bool) -> None:
        self.cfg, self.resume = cfg, resume
        self.path = Path(cfg.run_dir)
        self.lock = RunLock(self.path)
        if resume:
            check_resume_config(load_run_config(self.path), cfg)
        else:
            check_new_run_dir(self.path)

    def open(
        self,
        manifest: dict[str, Any],
        check: Any = None,
    ) -> ckpt.Loaded | None:
        """Create the directory (or lock and load the run being resumed), then write config.json.

        ``check(loaded) -> reason or None`` validates a checkpoint's trees against the config; a checkpoint that
        fails it is skipped like a corrupt one. Returns the checkpoint to resume from (None for a new run)."""
        loaded = None
        if self.resume:
            self.lock.acquire()
            try:
                if self._never_checkpointed():
                    self._start_over()
                else:
                    loaded = self._load(check)
            except BaseException:
                self.lock.release()
                raise
        else:
            self._create()
        # the new target is recorded only now: the lock is held, the checkpoint to continue from is valid and the
        # final file of a shorter run is gone, so an interrupted extension resumes like any other run
        runfiles.write_json(self.path / "config.json", manifest)
        return loaded

    def _create(self) -> None:
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            self.lock.acquire()
        except OSError as e:
            raise UserError(
                f"cannot write to run directory {self.path}: {e.strerror}; pass a writable --run-dir"
            ) from None
        entries = {p.name for p in self.path.iterdir()} - {LOCK_NAME}
        if entries:  # another process created it between the check and now
            self.lock.release()
            raise UserError(f"run directory {self.path} was filled by another process meanwhile")

    def _never_checkpointed(self) -> bool:
        """A run stopped before its first checkpoint (a signal during start-up or compilation, a disk that filled at
        the first write): config.json and perhaps logs, but no checkpoint and no final file. Nothing was kept that
        could be continued, so --resume starts it again from its config.json."""
        root = self.path / ckpt.DIRNAME
        steps = list(root.glob("step_*")) if root.is_dir() else []
        if steps or (self.path / FINAL_PARAMS).exists():
            return False
        try:  # written by RunDir.open (the whole manifest), not a config.json put there by hand
            manifest = json.loads((self.path / "config.json").read_text())
        except (OSError, ValueError):
            return False
        return isinstance(manifest, dict) and {"versions", "obs_dim", "action_dim"} <= set(manifest)

    def _start_over(self) -> None:
        for p in self.path.iterdir():
            if p.name not in (LOCK_NAME, "config.json"):
                shutil.rmtree(p) if p.is_dir() else p.unlink()
        warn(
            f"{self.path} was stopped before its first checkpoint: it starts again from step 0, with its config.json"
        )

    def _load(self, check: Any) -> ckpt.Loaded:
        cfg = self.cfg
        for p in ckpt.remove_temporaries(self.path):
            warn(f"removed {p.relative_to(self.path)}, left by a write that was interrupted")
        loaded = ckpt.load(self.path, check=check)
        m = loaded.manifest
        if (m.get("env"), m.get("preset")) != (cfg.env, cfg.preset):
            raise UserError(
                f"checkpoint {loaded.path} is from env {m.get('env')} preset {m.get('preset')}, "
                f"but the run is {cfg.env} preset {cfg.preset}; it cannot be resumed here"
            )
        for reason in loaded.skipped:
            warn(f"skipped invalid checkpoint {reason}; using {loaded.path.name}")
        step = m["counters"]["step"]
        final = self.path / FINAL_PARAMS
        if finished_for_good(m, cfg.total_steps) and not final.exists() and not loaded.skipped:
            runfiles.save_params(final, ckpt.policy_actor(loaded.state), loaded.state["critic"], step)
            warn(f"{self.path} had finished at step {step} but was stopped before writing {FINAL_PARAMS}; wrote it "
                 "from the run's final checkpoint")  # fmt: skip
            raise FinalRecovered(loaded, final)
        reached = m.get("finished") if m.get("finished") in ("target_return", "target_success") else None
        # config.json still holds the target the run stopped on (the resumed config is written only after this)
        if reached and getattr(cfg, reached) == getattr(load_run_config(self.path), reached):
            flag = reached.replace("_", "-")
            raise UserError(
                f"the run in {self.path} is complete: it stopped at step {step} on reaching its --{flag} "
                f"{getattr(cfg, reached)}; to train it further, resume with a higher target or none: ddpgx train "
                f"--resume {self.path} --{flag} None"
            )
        if reached and step >= cfg.total_steps:
            raise UserError(
                f"the run in {self.path} stopped at step {step} on its target; pass a --total-steps above {step} "
                "to train it further"
            )
        if m.get("finished") and step >= cfg.total_steps:
            raise UserError(
                f"the run in {self.path} is already complete ({step} steps); "
                "pass a larger --total-steps to extend it"
            )
        if step >= cfg.total_steps:
            raise UserError(f"the run already reached step {step}; pass a larger --total-steps to extend it")
        self._cut_logs(m["counters"].get("csv_sizes", {}), step)
        # from here on the run continues: a final file of the shorter run must not pass for its result
        (self.path / FINAL_PARAMS).unlink(missing_ok=True)
        return loaded

    def _cut_logs(self, sizes: dict[str, int], step: int) -> None:
        """Drop CSV rows written after the checkpoint. A log that is missing or shorter than the checkpoint
        recorded is started again with its header (never padded)."""
        for name, size in sizes.items():
            path = self.path / name
            have = path.stat().st_size if path.is_file() else -1
            if have >= size:
                with open(path, "r+b") as f:
                    f.truncate(size)
                continue
            what = "is missing" if have < 0 else f"has {have} bytes, fewer than the {size} at the checkpoint"
            warn(f"{name} {what}; its rows up to step {step} are lost and it starts again with its header")
            path.write_bytes(b"")

    def save_checkpoint(
        self,
        step: int,
        state: Any,
        replay: Mapping[str, Any],
        manifest: dict[str, Any],
        finished: str | None = None,
    ) -> None:
        """``finished``: None while the run goes on; "total_steps", "target_return" or "target_success" for its
        final checkpoint."""
        # a full disk or a quota: ckpt.save says so in one line, and the last complete checkpoint stays
        ckpt.save(
            self.path, step, state, replay, {**manifest, "finished": finished}, self.cfg.keep_checkpoints
        )

    def save_best(self, actor: Any, critic: Any, step: int) -> None:
        """The policy of a new best evaluation (atomic; a resumed run rewrites the same bits where it passes the
        same evaluation again)."""
        runfiles.save_params(self.path / BEST_PARAMS, actor, critic, step)

    def finish(self, actor: Any, critic: Any, step: int) -> Path:
        """The final parameters, written after the final checkpoint (which holds them too)."""
        path = self.path / FINAL_PARAMS
        runfiles.save_params(path, actor, critic, step)
        return path

    def close(self) -> None:
        self.lock.release()

    def __enter__(self) -> RunDir:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
