"""Checkpoints that never lose a run: atomic, checksummed, no pickle, and complete enough to resume bitwise.

Layout inside a run directory::

    checkpoints/
      step_000050123/            one checkpoint (a directory renamed into place when complete)
        manifest.json            format version, env, preset, step, counters, every RNG state, CSV offsets,
                                 and the sha256 of each file below
        state.msgpack            the whole TrainState (params, targets, batch stats, optimizer states, noise, key)
        replay.npz               the filled part of the replay buffer (numpy, allow_pickle=False)
      step_000100456/
      latest                     name of the newest complete checkpoint, replaced last

Checkpoints are taken at the end of an episode, so the simulator's internal state is never needed: resuming calls
``env.reset()`` with the env's random generator restored, which reproduces the next episode exactly.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import jax
import numpy as np
from flax import serialization

from ddpgx.errors import UserError

FORMAT_VERSION = 1
DIRNAME = "checkpoints"
LATEST = "latest"


class CheckpointError(UserError):
    """A checkpoint could not be written or read."""


@dataclass
class Loaded:
    path: Path
    manifest: dict[str, Any]
    state: dict[str, Any]  # TrainState as a state dict (numpy leaves)
    replay: dict[str, np.ndarray]
    skipped: list[str]  # newer checkpoints that were invalid, with the reason


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 22), b""):
            h.update(chunk)
    return h.hexdigest()


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_file(path: Path, write) -> None:
    with open(path, "wb") as f:
        write(f)
        f.flush()
        os.fsync(f.fileno())


def write_npz(f: BinaryIO, arrays: Mapping[str, Any]) -> None:
    """``np.savez``'s format (np.load reads it), each array read from ``arrays`` only as it is written: a mapping
    that makes its arrays when read (the compiled loop's rows, fetched from the device) holds one at a time,
    where ``np.savez(f, **arrays)`` would make them all first."""
    with zipfile.ZipFile(f, mode="w", compression=zipfile.ZIP_STORED, allowZip64=True) as z:
        for name in arrays:
            with z.open(f"{name}.npy", "w", force_zip64=True) as out:
                np.lib.format.write_array(out, np.asanyarray(arrays[name]), allow_pickle=False)


def save(
    run_dir: Path,
    step: int,
    state: Any,
    replay: Mapping[str, Any],
    manifest: dict[str, Any],
    keep: int = 2,
) -> Path:
    """Write a checkpoint atomically; only when it is complete does ``latest`` point to it. Keeps ``keep``."""
    root = run_dir / DIRNAME
    root.mkdir(exist_ok=True)
    name = f"step_{step:012d}"
    tmp = root / f".tmp-{name}-{os.getpid()}"
    final = root / name
    if tmp.exists():
        shutil.rmtree(tmp)
    try:
        tmp.mkdir()
        state_bytes = serialization.msgpack_serialize(to_numpy(serialization.to_state_dict(state)))
        _write_file(tmp / "state.msgpack", lambda f: f.write(state_bytes))
        _write_file(tmp / "replay.npz", lambda f: write_npz(f, replay))
        files = {n: sha256(tmp / n) for n in ("state.msgpack", "replay.npz")}
        full = {**manifest, "format_version": FORMAT_VERSION, "step": step, "files": files}
        _write_file(tmp / "manifest.json", lambda f: f.write(json.dumps(full, indent=1).encode()))
        _fsync_dir(tmp)
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
        _fsync_dir(root)
        pointer = root / f".{LATEST}.tmp"
        _write_file(pointer, lambda f: f.write(name.encode()))
        os.replace(pointer, root / LATEST)
        _fsync_dir(root)
    except BaseException as e:  # noqa: BLE001 - a half-written checkpoint is removed whatever stopped it
        shutil.rmtree(tmp, ignore_errors=True)
        if not isinstance(e, OSError):
            raise
        prev = latest_name(run_dir)
        kept = f"the previous checkpoint ({prev}) is intact" if prev else "no earlier checkpoint exists"
        raise CheckpointError(
            f"could not write the checkpoint at step {step} ({e.strerror or e}); {kept}; "
            f"free some space and resume with: ddpgx train --resume {run_dir}"
        ) from None
    for old in sorted(p for p in root.glob("step_*") if p.is_dir())[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def latest_name(run_dir: Path) -> str | None:
    p = run_dir / DIRNAME / LATEST
    try:
        return p.read_text().strip() or None
    except OSError:
        return None


def candidates(run_dir: Path) -> list[Path]:
    """Complete checkpoint directories, newest step first. A ``step_*`` directory exists only once its complete,
    synced copy was renamed into place, so the newest is the one to try first even where ``latest`` does not name
    it yet (a process killed between the rename and the pointer's update: for a seed group, its final checkpoint
    in one seed, which its resume needs)."""
    root = run_dir / DIRNAME
    return sorted((p for p in root.glob("step_*") if p.is_dir()), reverse=True)


def verify(path: Path) -> dict[str, Any]:
    """The manifest of checkpoint ``path`` once every file matches its sha256; else CheckpointError."""
    try:
        manifest = json.loads((path / "manifest.json").read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise CheckpointError(f"{path.name}: unreadable manifest ({e})") from None
    if manifest.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(
            f"{path.name}: checkpoint format version {manifest.get('format_version')} is not {FORMAT_VERSION}, "
            "the version this ddpgx reads"
        )
    for name, digest in manifest.get("files", {}).items():
        f = path / name
        if not f.is_file():
            raise CheckpointError(f"{path.name}: {name} is missing")
        if sha256(f) != digest:
            raise CheckpointError(f"{path.name}: {name} is corrupt or truncated (sha256 mismatch)")
    return manifest


def load(
    run_dir: Path,
    check: Callable[[Loaded], str | None] | None = None,
    replay: bool = True,
) -> Loaded:
    """The newest valid checkpoint of ``run_dir``; invalid newer ones are skipped and reported.

    Valid means: every file matches its sha256, the msgpack and npz files decode, and ``check`` (which compares
    the loaded trees with the ones the run's config implies) finds nothing wrong. ``replay=False`` skips reading
    the replay buffer (for evaluation)."""
    skipped: list[str] = []
    found = candidates(run_dir)
    if not found:
        raise CheckpointError(f"{run_dir} has no checkpoint to resume from (no {DIRNAME}/step_*)")
    for path in found:
        try:
            manifest = verify(path)
            loaded = Loaded(path, manifest, _read_state(path), _read_replay(path) if replay else {}, skipped)
            problem = check(loaded) if check is not None else None
            if problem:
                raise CheckpointError(f"{path.name}: {problem}")
        except CheckpointError as e:
            skipped.append(str(e))
            continue
        return loaded
    raise CheckpointError(f"no valid checkpoint in {run_dir}: " + "; ".join(skipped))


def _read_state(path: Path) -> dict[str, Any]:
    try:
        state = serialization.msgpack_restore((path / "state.msgpack").read_bytes())
    except Exception as e:  # msgpack raises several types on bytes it cannot decode
        raise CheckpointError(f"{path.name}: state.msgpack does not decode ({type(e).__name__})") from None
    if not isinstance(state, dict):
        raise CheckpointError(f"{path.name}: state.msgpack holds a {type(state).__name__}, not a state")
    return state


def _read_replay(path: Path) -> dict[str, np.ndarray]:
    try:
        with np.load(path / "replay.npz", allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except Exception as e:  # zipfile and numpy raise several types on a bad archive
        raise CheckpointError(f"{path.name}: replay.npz does not decode ({type(e).__name__})") from None


def tree_mismatch(template: Any, tree: Any) -> str | None:
    """Why ``tree`` (a state dict read from disk) does not fit ``template`` (the one the config implies): the
    first missing or unexpected key, or leaf of another shape or dtype; None when it fits."""
    from flax import traverse_util

    def flat(t: Any) -> dict[str, Any]:
        if not isinstance(t, dict):
            return {"": t}
        return traverse_util.flatten_dict(t, sep="/")

    want, got = flat(template), flat(tree)
    for k in want:
        if k not in got:
            return f"{k or 'the tree'} is missing"
    for k in got:
        if k not in want:
            return f"it has an unexpected entry {k}"
    for k, w in want.items():
        g = got[k]
        w_shape, w_dtype = tuple(np.shape(w)), np.dtype(getattr(w, "dtype", np.asarray(w).dtype))
        g_shape, g_dtype = tuple(np.shape(g)), np.asarray(g).dtype
        if g_shape != w_shape:
            return f"{k} has shape {g_shape}, the config implies {w_shape}"
        if g_dtype != w_dtype:
            return f"{k} has dtype {g_dtype}, the config implies {w_dtype}"
    return None


def remove_temporaries(run_dir: Path) -> list[Path]:
    """Delete what a killed write left behind: ``checkpoints/.tmp-*`` directories (up to a whole replay buffer
    each) and ``.NAME.tmp-PID`` files of atomic writes. Only the process holding the run's lock may call it."""
    gone = []
    for p in [
        *(run_dir / DIRNAME).glob(".tmp-*"),
        *(run_dir / DIRNAME).glob(f".{LATEST}.tmp"),
        *run_dir.glob(".*.tmp-*"),
    ]:
        if p.is_dir():
            shutil.rmtree(p, ignore_errors=True)
        else:
            p.unlink(missing_ok=True)
        gone.append(p)
    return gone


def policy_actor(state: dict[str, Any]) -> dict[str, Any] | None:
    """The policy's actor in a checkpoint's state dict: the averaged one with --policy-avg, else the actor."""
    return state.get("actor_avg") or state.get("actor")


def load_actor_state(
    path: Path, check: Callable[[dict[str, Any]], str | None] | None = None
) -> tuple[dict[str, Any], int]:
    """The actor variables (state dict) of a checkpoint directory, verified (and checked by ``check``), and the
    env step it was taken at."""
    manifest = verify(path)
    actor = policy_actor(_read_state(path))
    problem = "it holds no actor" if actor is None else (check(actor) if check is not None else None)
    if problem:
        raise CheckpointError(f"{path.name}: {problem}")
    return actor, int(manifest["step"])


def to_numpy(tree: Any) -> Any:
    """A tree of jax (or numpy) arrays as numpy arrays (what msgpack and the checks take)."""
    return jax.tree_util.tree_map(np.asarray, tree)
