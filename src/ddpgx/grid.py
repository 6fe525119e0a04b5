"""A sweep's grid: envs x presets x ``--set`` values x named variants x seeds, each cell one run's ``Config``.

What a sweep runs, read from flags or a TOML file and checked before anything runs: every field's type, every
cell's config, every env id, and, on a re-run over the same ``out``, that the grid is the one recorded in
``out/sweep.json`` (or grows it by envs, presets, seeds or variants)."""

from __future__ import annotations

import dataclasses
import itertools
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ddpgx.config import Config, env_name
from ddpgx.envs import make_run_env
from ddpgx.errors import UserError
from ddpgx.fieldtypes import parse_field
from ddpgx.presets import preset_config, resolve
from ddpgx.run import LOCK_NAME, STOP_FILE
from ddpgx.runfiles import write_json
from ddpgx.validate import validate
from ddpgx.version import __version__

SPEC_FILE = "sweep.json"
EXECUTION = ("address", "cpus_per_run", "gpus_per_run", "max_parallel", "max_retries", "out", "exclude")


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
    exclude: list[str] = field(default_factory=list)
    """Runs of the grid not to run this time, by name or shell-style pattern (``Ant-v5__crossq-256__s0``,
    ``*__s2``): runs finished elsewhere, on a machine whose run directories are gone. Not part of the grid: the
    sweep is the same sweep with or without it, and a finished run it names is still reported."""

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
            if sep and int(hi) < int(lo):
                raise UserError(
                    f"--seeds {text}: the range {part} runs backwards; write it low-high, e.g. {hi}-{lo}"
                )
            seeds += list(range(int(lo), int(hi) + 1)) if sep else [int(lo)]
    except ValueError:
        raise UserError(f"--seeds takes ranges and lists like 0-4 or 0,3,7, got '{text}'") from None
    if not seeds:
        raise UserError(f"--seeds '{text}' names no seed; write a range or a list like 0-4 or 0,3,7")
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
    "exclude": ((list,), 'run names or patterns, e.g. exclude = ["Ant-v5__modern__s0", "*__s4"]'),
}


def check_toml_types(path: Path, flat: dict[str, Any]) -> None:
    """Each top-level value of a sweep file has the type its key takes (one line naming the key otherwise): a
    TOML float for a step count is refused, not truncated."""
    for key, (types, what) in TOML_TYPES.items():
        if key not in flat:
            continue
        v = flat[key]
        ok = isinstance(v, types) and not isinstance(v, bool)
        if ok and isinstance(v, list) and key in ("env", "preset", "exclude"):
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


def excluded(cells: list[Cell], patterns: list[str]) -> set[str]:
    """The names of the cells that ``patterns`` (run names or shell-style patterns) exclude; a pattern that names no
    run of the grid is refused (a typo would otherwise run what it meant to leave out)."""
    import fnmatch

    names = [c.name for c in cells]
    out: set[str] = set()
    for pat in patterns:
        if not isinstance(pat, str) or not pat:
            raise UserError(f"exclude takes run names or patterns (strings), got {pat!r}")
        hits = fnmatch.filter(names, pat)
        if not hits:
            raise UserError(
                f"exclude {pat!r} matches no run of the sweep; its runs are named like {names[0]} "
                "(ENV__VARIANT-OR-PRESET[__FIELD=VALUE]__sSEED)"
            )
        out.update(hits)
    return out


def check_envs(cells: list[Cell]) -> None:
    """Make each distinct env once, so an unknown env or a bad env kwarg is refused before any run starts."""
    seen = set()
    for c in cells:
        key = (c.cfg.env, c.cfg.env_kwargs, c.cfg.env_module)
        if key not in seen:
            seen.add(key)
            make_run_env(c.cfg).close()


def check_spec_file(out: Path, spec: SweepSpec, cells: list[Cell]) -> None:
    """Record the sweep in ``out/sweep.json``; on a re-run, refuse a different spec, naming the difference."""
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
    check_out(out, cells)
    out.mkdir(parents=True, exist_ok=True)
    write_json(path, {"spec": ident, "grid": [c.name for c in cells], "ddpgx": __version__})


def check_out(out: Path, cells: list[Cell]) -> None:
    """``out`` may hold a new sweep: it does not exist, or is a directory of nothing but this grid's runs made
    before the sweep (``ddpgx train --run-dir OUT/NAME``: they join it under their names) and a lock. Read only:
    ``sweep.run_sweep`` asks it before it takes the lock (nothing is made in a directory that is not a sweep's)
    while no driver has locked it, and ``check_spec_file`` again under the lock."""
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} is an existing file, not a directory; give a directory for the sweep")
    if not out.is_dir() or (out / SPEC_FILE).is_file():
        return
    names = {c.name for c in cells}
    foreign = [
        p.name
        for p in out.iterdir()
        if p.name not in (STOP_FILE, LOCK_NAME) and not (p.name in names and (p / "config.json").is_file())
    ]
    if foreign:
        raise UserError(
            f"--out {out} exists and is not a sweep directory (no {SPEC_FILE}; it holds {foreign[0]}); use another "
            "--out"
        )


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
