"""Runs grouped as experiments: the same resolved config except the seed is one group, whatever its directory is
called. ``ddpgx plot`` (and every comparison across seeds) groups with this one function, so two different
configs are never averaged as seeds of one."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ddpgx.config import Config
from ddpgx.errors import UserError, describe
from ddpgx.presets import PRESETS

# fields that do not change what is learned: runs differing only in these are seeds of one experiment
NOT_THE_EXPERIMENT = frozenset(
    {
        "seed",
        "run_dir",
        "progress",
        "tensorboard",
        "plot",
        "compile_cache",
        "tracker",
        "tracking_uri",
        "profile",
        "log_every",
        "checkpoint_every",
        "keep_checkpoints",
    }
)


@dataclass
class Group:
    env: str
    preset: str
    config: dict[str, Any]  # the shared config, without the fields above
    runs: list[Path] = field(default_factory=list)
    seeds: list[int] = field(default_factory=list)
    label: str = ""


def run_config(run_dir: Path) -> dict[str, Any]:
    """The resolved config of a run, as config.json holds it; fields added to ddpgx after the run was made take
    their defaults (the run ran without them), so old and new runs of one experiment still group together."""
    try:
        saved = json.loads((Path(run_dir) / "config.json").read_text())["config"]
        cfg = {**_jsonable(Config()), **saved}
        cfg["env"], cfg["preset"], cfg["seed"] = str(cfg["env"]), str(cfg["preset"]), int(cfg["seed"])
        return cfg
    except (OSError, KeyError, ValueError, TypeError) as e:
        raise UserError(
            f"{run_dir} has no readable config.json ({describe(e)}); is it a ddpgx run directory?"
        ) from None


def _jsonable(cfg: Config) -> dict[str, Any]:
    return json.loads(json.dumps(dataclasses.asdict(cfg)))


def _fmt(v: Any) -> str:
    return " ".join(map(str, v)) if isinstance(v, list) else str(v)


def group_runs(run_dirs: Sequence[Path]) -> list[Group]:
    """Groups of runs whose configs are equal but for the seed (and display options), in order of first
    appearance; each labelled by its preset and the fields that tell it apart from the other groups of its env."""
    groups: dict[str, Group] = {}
    for d in run_dirs:
        cfg = run_config(Path(d))
        shared = {k: v for k, v in cfg.items() if k not in NOT_THE_EXPERIMENT}
        key = json.dumps(shared, sort_keys=True)
        g = groups.setdefault(key, Group(cfg["env"], cfg["preset"], shared))
        g.runs.append(Path(d))
        g.seeds.append(cfg["seed"])
    out = list(groups.values())
    for env in {g.env for g in out}:
        _label([g for g in out if g.env == env])
    return out


def _label(panel: list[Group]) -> None:
    """Label = preset, plus every field some group sets away from its preset's value and on which the groups
    of this panel do not all agree (so 'modern, tau=0.01' next to 'modern, tau=0.005')."""
    overridden: set[str] = set()
    for g in panel:
        base = _jsonable(PRESETS.get(g.preset, Config()))
        overridden |= {k for k, v in g.config.items() if k not in ("env", "preset") and base.get(k) != v}
    shown = sorted(k for k in overridden if len({json.dumps(g.config.get(k)) for g in panel}) > 1)
    for g in panel:
        g.label = ", ".join([g.preset, *(f"{k}={_fmt(g.config.get(k))}" for k in shown)])
