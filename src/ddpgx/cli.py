"""The `ddpgx` command (its commands are the keys of ``COMMANDS``, listed by ``ddpgx --help``): parse, call the
library, turn user errors into one line.

Modules that ``import ddpgx`` loads anyway (the training code, through ``ddpgx/__init__``) are imported at the
top. The ones only some commands need (sweep, tune, grid, report, record, export) are imported inside those
commands, so the other commands start without them; nothing else in the package imports lazily."""

from __future__ import annotations

import contextlib
import dataclasses
import difflib
import io
import os
import platform
import select
import signal
import sys
import typing
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import tyro
from rich.console import Console
from rich.table import Table

from ddpgx.config import Config, field_docs
from ddpgx.envs import make_run_env
from ddpgx.errors import UserError
from ddpgx.evaluate import Evaluator
from ddpgx.fieldtypes import flag_value, parse_field
from ddpgx.jaxloop import group_config
from ddpgx.plots import plot_runs
from ddpgx.policy import load_policy, params_for
from ddpgx.presets import (
    PRESET_HELP,
    PRESET_SOURCES,
    PRESETS,
    default_preset,
    default_preset_line,
    preset_config,
)
from ddpgx.run import STOP_FILE, load_run_config
from ddpgx.runfiles import versions
from ddpgx.train import Interrupted, train

USAGE = """usage: ddpgx COMMAND [ARGS]

commands:
  train     train DDPG:  ddpgx train --env Hopper-v5 [--preset NAME] [--seed N] [--FIELD VALUE...]
            no --preset: crossq256 on MuJoCo, her / her8 on sparse Fetch, pendulum on Pendulum-v1, else modern;
            the paper's hyperparameters: --preset paper  (all of them: ddpgx presets)
            continue a stopped run:  ddpgx train --resume RUN_DIR [--total-steps N]
            collect on Ray actors while the learner learns:  ddpgx train --env FetchPush-v4 --actors 2 --num-envs 4
            JAX-native envs, the whole loop compiled, seeds vmapped:  ddpgx train --env gymnax:Pendulum-v1 --seeds 0-7
  eval      noise-free episodes of a trained run:  ddpgx eval RUN_DIR [--episodes N] [--onnx policy.onnx]
  presets   print the presets and every hyperparameter
  plot      learning curves:  ddpgx plot RUN_DIR... [--out FILE.png] [--metric episode|eval|success|both] [--smooth N]
  record    the learned policy as a GIF/MP4:  ddpgx record RUN_DIR [--out policy.gif] [--episodes N]
  sweep     many seeds and configs on Ray:  ddpgx sweep --env Hopper-v5 --preset modern --seeds 0-4
            --set tau=0.005,0.01 --total-steps 200000 --out sweeps/tau [--address HOST:PORT]   (or: ddpgx sweep FILE.toml)
  report    compare runs across seeds (CIs, IQM):  ddpgx report DIR... [--out report.md] [--metric eval|episode|success]
  tune      hyperparameter search (Optuna, trials are runs on Ray):  ddpgx tune --env Hopper-v5 --trials 50
            --total-steps 100000 --out tunes/hopper [--space space.toml] [--seeds 0-1] [--storage URL]
  export    the policy as ONNX, checked against JAX:  ddpgx export RUN_DIR [--out policy.onnx]  (then: ddpgx eval RUN_DIR --onnx policy.onnx)

`ddpgx COMMAND --help` lists a command's flags.  `ddpgx --version` prints the versions a run records."""


def _flag_value(args: list[str], flag: str) -> str | None:
    """Value of ``--flag X`` or ``--flag=X`` in args (last one wins), without consuming it."""
    value = None
    for i, a in enumerate(args):
        if a == flag and i + 1 < len(args):
            value = args[i + 1]
        elif a.startswith(flag + "="):
            value = a.split("=", 1)[1]
    return value


def check_flags(args: list[str], cls: type, extra: tuple[str, ...] = ()) -> None:
    """Refuse an unknown ``--flag`` of dataclass ``cls`` in one line, suggesting the closest real one."""
    valid = {"-h", "--help", *extra, *_aliases(cls)}
    for f in dataclasses.fields(cls):
        name = "--" + f.name.replace("_", "-")
        valid.add(name)
        if f.type in (bool, "bool"):
            valid.add("--no-" + f.name.replace("_", "-"))
    for a in args:
        if a.startswith("--"):
            flag = a.split("=", 1)[0]
            if flag not in valid:
                close = difflib.get_close_matches(flag, sorted(valid), n=1, cutoff=0.6)
                hint = f"did you mean {close[0]}?" if close else "see the flags with --help"
                raise UserError(f"unknown flag {flag}; {hint}")


def _aliases(cls: type) -> dict[str, str]:
    """Each alias of a field's flag (``tyro.conf.arg(aliases=...)``, e.g. --checkpoint for --params) -> the flag."""
    out = {}
    for name, hint in typing.get_type_hints(cls, include_extras=True).items():
        for m in getattr(hint, "__metadata__", ()):
            for alias in getattr(m, "aliases", None) or ():
                out[alias] = "--" + name.replace("_", "-")
    return out


def _fields_of(cls: type) -> dict[str, tuple[Any, bool]]:
    """Each field's flag -> (its type without tyro's markers, whether it is a required positional argument) of
    dataclass ``cls``."""
    hints = typing.get_type_hints(cls, include_extras=True)
    out = {}
    for f in dataclasses.fields(cls):
        hint, positional = hints[f.name], False
        while typing.get_origin(hint) is Annotated:
            positional |= any(m is tyro.conf.Positional or "Positional" in repr(m) for m in hint.__metadata__)
            hint = typing.get_args(hint)[0]
        required = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        out["--" + f.name.replace("_", "-")] = (hint, positional and required)
    return out


def _sequence(hint: Any) -> Any:
    """The list or tuple type a field's flag takes several words of (its optional one too), or None."""
    if typing.get_origin(hint) in (list, tuple):
        return hint
    return next((h for h in typing.get_args(hint) if typing.get_origin(h) in (list, tuple)), None)


def check_values(args: list[str], cls: type, prog: str) -> list[str]:
    """The typed half of every command's parsing, before tyro sees the words: each ``--flag VALUE`` read as its
    field's type (one line naming the flag otherwise), integer-valued ``1e6`` and ``20_000`` rewritten as ints, and
    a missing positional argument named. Returns the words to hand to tyro."""
    fields = _fields_of(cls)
    fields.update({alias: fields[flag] for alias, flag in _aliases(cls).items()})
    out, i, positionals = list(args), 0, 0
    while i < len(out):
        flag, eq, inline = out[i].partition("=")
        if not out[i].startswith("--") or flag not in fields or fields[flag][0] is bool:
            positionals += not out[i].startswith("-")
            i += 1
            continue
        hint = fields[flag][0]
        j = i + 1
        while j < len(out) and not (out[j].startswith("--") or (out[j][:1] == "-" and out[j][1:].isalpha())):
            j += 1
        seq = _sequence(hint)
        words = [inline] if eq else out[i + 1 : j] if seq else out[i + 1 : i + 2][: j - i - 1]
        if not words and not (seq and typing.get_args(seq)[-1] is Ellipsis):  # `--flag` alone: an empty tuple
            raise UserError(f"{flag} needs a value (see `{prog} --help`)")
        if seq and not (words == ["None"] and type(None) in typing.get_args(hint)):
            values = [flag_value(flag, w, typing.get_args(seq)[0]) for w in words]
            fixed = [
                str(v) if isinstance(v, int) and not isinstance(v, bool) else w
                for v, w in zip(values, words, strict=True)
            ]
        else:
            value = flag_value(flag, words[0], hint)
            fixed = [str(value) if isinstance(value, int) and not isinstance(value, bool) else words[0]]
        new = [f"{flag}={' '.join(fixed)}"] if eq else [flag, *fixed]
        out[i : i + (1 if eq else 1 + len(words))] = new
        i += len(new)
    if not positionals:
        for flag, (hint, positional) in fields.items():
            if positional:
                name = flag[2:].upper().replace("-", "_")
                if typing.get_origin(hint) is list:
                    name = name.removesuffix("S") + "..."
                raise UserError(f"{prog} needs {name}: {prog} {name} [FLAGS] (see `{prog} --help`)")
    return out


def parse(cls: type, args: list[str], prog: str, default: Any = None, extra: tuple[str, ...] = (), **kw: Any):
    """Every command's parser: unknown flags and bad values refused in one line (``check_flags``, ``check_values``),
    then tyro. What tyro would still refuse is turned into one line too: no box, no help dump, exit 2."""
    check_flags(args, cls, extra)
    if default is not None:
        kw["default"] = default
    if "-h" in args or "--help" in args:
        return tyro.cli(cls, args=args, prog=prog, **kw)
    args = check_values(args, cls, prog)
    captured = io.StringIO()
    try:
        with contextlib.redirect_stdout(captured), contextlib.redirect_stderr(captured):
            return tyro.cli(cls, args=args, prog=prog, console_outputs=False, **kw)
    except SystemExit:
        pass
    said = " ".join(captured.getvalue().split())[:200]
    raise UserError(
        f"{prog} could not read {' '.join(args)!r}{': ' + said if said else ''}; see `{prog} --help`"
    )


def parse_train_args(args: list[str]):  # -> Config
    """Start from the preset (``--preset``, else the env's default) and let each flag override one field."""
    check_flags(args, Config, extra=("--resume",))
    env_id = _flag_value(args, "--env") or Config.env
    preset = _flag_value(args, "--preset") or ""
    base = preset_config(preset, env_id)
    cfg = parse(
        Config,
        args,
        "ddpgx train",
        default=base,
        description="Train DDPG. Flags override the preset's values; `ddpgx presets` shows them. The defaults below "
        "are those of --env's preset (without --env: Pendulum-v1's, `pendulum`): `ddpgx train --env Hopper-v5 --help` "
        "shows Hopper's. "
        "`--resume RUN_DIR [--total-steps N]` continues a stopped run (a larger N extends a finished one); "
        "`--seeds A-B` on a JAX-native env (gymnax:..., playground:...) trains those seeds in one compiled program.",
    )
    if not preset and (line := default_preset_line(env_id)):
        print(line, file=sys.stderr)
    return cfg


def cmd_train(args: list[str]) -> int:
    import signal

    args = seeds_flag(args)
    resume = _flag_value(args, "--resume")
    if "--resume" in args and (resume is None or resume.startswith("--")):
        raise UserError("--resume needs the run directory: ddpgx train --resume RUN_DIR [--total-steps N]")
    if resume is not None:
        rest = [a for i, a in enumerate(args) if a != "--resume" and (i == 0 or args[i - 1] != "--resume")]
        rest = [a for a in rest if not a.startswith("--resume=")]
        saved = group_config(resume) or load_run_config(resume)  # a group of vmapped seeds, or one run
        cfg = parse(Config, rest, "ddpgx train", default=saved).replace(run_dir=resume)
    else:
        cfg = parse_train_args(args)
    try:  # train() validates the config and the env before it writes anything
        res = train(cfg, resume=resume is not None)
    except Interrupted as e:
        print(f"ddpgx: {e}", file=sys.stderr)
        return 128 + (e.signum or signal.SIGINT)
    console = Console()
    why = {"target_return": f" (reached --target-return {cfg.target_return})",
           "target_success": f" (reached --target-success {cfg.target_success})"}.get(res.finished, "")  # fmt: skip
    success = "" if res.final_eval_success is None else f", success {res.final_eval_success:.2f}"
    console.print(
        f"[bold green]done[/]: {res.steps} steps in {res.wall_s:.1f} s{why}; final eval return "
        f"{res.final_eval_mean:.1f} +- {res.final_eval_std:.1f}{success}"
    )
    if len(res.runs) > 1:
        console.print(
            f"{len(res.runs)} seeds' run directories: {res.run_dir}/*  (ddpgx report {res.run_dir})"
        )
    else:
        console.print(f"run directory: {res.run_dir}")
    return 0


def seeds_flag(args: list[str]) -> list[str]:
    """``--seeds A-B`` on train: --seed A --num-seeds B-A+1 (seeds vmapped in the compiled loop of JAX envs)."""
    value = _flag_value(args, "--seeds")
    if value is None:
        return args
    # start-up: only this command loads it (`import ddpgx` does not)
    from ddpgx.grid import parse_seeds

    seeds = parse_seeds(value)
    if seeds != list(range(seeds[0], seeds[0] + len(seeds))):
        raise UserError(
            f"--seeds {value}: train vmaps a contiguous range of seeds (e.g. 0-7); for other lists use "
            f"ddpgx sweep --seeds {value}"
        )
    rest = [a for i, a in enumerate(args) if a != "--seeds" and (i == 0 or args[i - 1] != "--seeds")]
    rest = [a for a in rest if not a.startswith("--seeds=")]
    return [*rest, "--seed", str(seeds[0]), "--num-seeds", str(len(seeds))]


@dataclass
class EvalArgs:
    run_dir: tyro.conf.Positional[str]
    """Run directory written by `ddpgx train`."""
    episodes: int = 10
    """Noise-free episodes to run."""
    seed: int = 12345
    """Seed of the evaluation envs."""
    params: Annotated[str, tyro.conf.arg(aliases=("--checkpoint",))] = ""
    """Parameter file or checkpoint directory to load instead of <run_dir>/final.msgpack."""
    which: Literal["final", "best"] = "final"
    """The run's final policy, or the one of its best noise-free evaluation (best.msgpack)."""
    onnx: str = ""
    """Run this exported ONNX model (`ddpgx export`) with onnxruntime instead of the JAX policy."""


def cmd_eval(args: list[str]) -> int:
    from functools import partial

    import numpy as np

    a = parse(EvalArgs, args, "ddpgx eval")
    if a.episodes <= 0:
        raise UserError(f"--episodes must be a positive integer, got {a.episodes}")
    policy = load_policy(a.run_dir, a.params or None, a.which)
    onnx = None
    if a.onnx:
        # start-up: only this command loads it (`import ddpgx` does not)
        from ddpgx.export import OnnxPolicy

        onnx = OnnxPolicy.for_run(
            a.onnx, a.run_dir
        )  # a model that does not fit the run: one line, no env made
    ev = Evaluator(partial(make_run_env, policy.config), a.episodes, a.seed)
    returns = ev.run(onnx if onnx is not None else policy.normalized)
    ev.close()
    total = policy.config.total_steps
    where = f"{policy.source.name}, step {policy.step}" if policy.step >= 0 else policy.source.name
    if onnx is not None:  # the model is the source of the actions, whatever --which and --params say
        where = onnx.description
    elif a.which == "best":
        where = f"its best evaluation, {where}"
    elif not a.params and 0 <= policy.step < total and policy.source.name != "final.msgpack":
        where += f" of {total}: the run is unfinished, this is its latest checkpoint"
    success = (
        f", success rate {np.mean(ev.successes):.2f}" if not np.isnan(ev.successes).all() else ""
    )  # goal envs report info["is_success"]
    print(
        f"{policy.config.env}: mean return {returns.mean():.1f} +- {returns.std():.1f}{success} over {a.episodes} "
        f"episodes ({where})"
    )
    return 0


@dataclass
class ExportArgs:
    run_dir: tyro.conf.Positional[str]
    """Run directory written by `ddpgx train`."""
    out: str = ""
    """Where to write the ONNX model (default: <run_dir>/policy.onnx)."""
    params: Annotated[str, tyro.conf.arg(aliases=("--checkpoint",))] = ""
    """Parameter file or checkpoint directory to export instead of <run_dir>/final.msgpack."""
    which: Literal["final", "best"] = "final"
    """The run's final policy, or the one of its best noise-free evaluation (best.msgpack)."""


def cmd_export(args: list[str]) -> int:
    # start-up: only this command loads it (`import ddpgx` does not)
    from ddpgx.export import ExportMismatch, export_onnx

    a = parse(ExportArgs, args, "ddpgx export")
    load_run_config(a.run_dir)  # not a run directory: one line before the extra is even imported
    try:
        r = export_onnx(a.run_dir, a.out or None, params_for(a.run_dir, a.which, a.params or None))
    except ExportMismatch as e:
        print(f"ddpgx: error: {e}", file=sys.stderr)
        return 1
    print(
        f"wrote {r.path} (inputs {', '.join(r.inputs)}; output action): matches the JAX policy to {r.max_diff:.2g} "
        f"on {r.checked} observations from {r.check_source}"
    )
    return 0


def preset_value(v: object) -> str:
    """A preset's value as ``ddpgx train --flag`` takes it: integers in full, thousands grouped by ``_`` from 10_000
    on (1_000_000: the flags read ints with int(), which refuses 1e6), floats as Python prints them (0.0001, 1e-05:
    the flags read both), tuples space-separated (``--actor-hidden 400 300``), True/False, None."""
    if isinstance(v, bool) or v is None:
        return str(v)
    if isinstance(v, int):
        return f"{v:_}" if abs(v) >= 10_000 else str(v)
    if isinstance(v, tuple):
        return " ".join(map(preset_value, v))
    return str(v)


def _table_width(widths: list[int]) -> int:
    """Columns of a rich Table (default box, padding 1 each side) whose cells are ``widths`` wide."""
    return sum(widths) + 3 * len(widths) + 1


def presets_tables(width: int) -> list[Table]:
    """Every preset's values as tables that fit ``width`` columns without wrapping a cell: a flag, a preset name or
    a value is never split across lines (``1000 / 0`` for 10000 misread). Wide enough for all of them side by side
    (about 125 columns): one table, with each field's meaning where 40 more columns fit. Narrower: the fields on
    which the presets differ, the presets in as few side-by-side blocks as fit, then the fields every preset sets
    alike, in flag/value pairs."""
    docs = field_docs()
    names = list(PRESETS)
    rows = [
        (
            "--" + f.name.replace("_", "-"),
            [preset_value(getattr(p, f.name)) for p in PRESETS.values()],
            f.name,
        )
        for f in dataclasses.fields(Config)
        if f.name not in ("env", "preset", "run_dir")
    ]

    def widths(rows_: list) -> tuple[int, list[int]]:
        flag_w = max(len(r[0]) for r in rows_)
        return flag_w, [max(len(n), *(len(r[1][i]) for r in rows_)) for i, n in enumerate(names)]

    def side_by_side(rows_: list, cols: list[int], title: str, meaning: bool = False) -> Table:
        flag_w, col_w = widths(rows_)
        table = Table(title=title, title_justify="left")
        table.add_column("flag", style="bold", no_wrap=True, min_width=flag_w)  # flags are what users copy
        for i in cols:
            table.add_column(names[i], no_wrap=True, min_width=col_w[i])
        if meaning:
            table.add_column("meaning", overflow="fold", ratio=1)
        for flag, vals, name in rows_:
            doc = [" ".join(docs.get(name, "").split())] if meaning else []
            table.add_row(flag, *(vals[i] for i in cols), *doc)
        return table

    title = "ddpgx presets (every field is a `ddpgx train --flag`)"
    flag_w, col_w = widths(rows)
    full = _table_width([flag_w, *col_w])
    if full <= width:
        return [side_by_side(rows, list(range(len(names))), title, meaning=full + 43 <= width)]
    differ = [r for r in rows if len(set(r[1])) > 1]
    same = [r for r in rows if len(set(r[1])) == 1]
    flag_w, col_w = widths(differ)
    blocks: list[list[int]] = [[]]
    for i in range(len(names)):
        if blocks[-1] and _table_width([flag_w, *(col_w[j] for j in blocks[-1]), col_w[i]]) > width:
            blocks.append([])
        blocks[-1].append(i)
    tables = [
        side_by_side(
            differ,
            block,
            f"{title}: the {len(differ)} fields where they differ"
            + (f" ({k + 1}/{len(blocks)})" if len(blocks) > 1 else ""),
        )
        for k, block in enumerate(blocks)
    ]
    flag_w = max(len(r[0]) for r in same)
    value_w = max(len(r[1][0]) for r in same)
    pairs = max(1, min(3, (width - 1) // (flag_w + value_w + 6)))
    common = Table(title=f"the {len(same)} fields every preset sets alike", title_justify="left")
    for _ in range(pairs):
        common.add_column("flag", style="bold", no_wrap=True, min_width=flag_w)
        common.add_column("value", no_wrap=True, min_width=value_w)
    per_column = -(-len(same) // pairs)
    for k in range(per_column):
        cells: list[str] = []
        for c in range(pairs):
            j = c * per_column + k
            cells += [same[j][0], same[j][1][0]] if j < len(same) else ["", ""]
        common.add_row(*cells)
    return [*tables, common]


def cmd_presets(args: list[str]) -> int:
    """`ddpgx presets`: every preset, side by side where the terminal is wide enough, else the fields where they
    differ in blocks of presets that fit (``presets_tables``); `ddpgx presets NAME`: one preset, each field with its
    meaning and the preset's sources. No value is ever split across lines, and each is printed as its flag takes
    it (``preset_value``)."""
    if args and args[0] in ("-h", "--help"):
        print(
            "usage: ddpgx presets [NAME]\n\nWithout NAME: every preset's hyperparameters side by side (at narrow "
            "widths only the fields where they differ, then those they share). With NAME (one of "
            f"{', '.join(PRESETS)}): that preset, each field's meaning and the sources of its values."
        )
        return 0
    docs = field_docs()
    console = Console()
    if args:
        if len(args) > 1:
            raise UserError(f"ddpgx presets takes one preset name, got {len(args)}: ddpgx presets {args[0]}")
        name = args[0]
        if name not in PRESETS:
            close = difflib.get_close_matches(name, list(PRESETS), n=1)
            hint = f"did you mean {close[0]}? " if close else ""
            raise UserError(f"unknown preset '{name}'; {hint}choose one of: {', '.join(PRESETS)}")
        table = Table(title=f"preset {name}: {PRESET_HELP.get(name, '')}", title_justify="left")
        table.add_column("flag", style="bold", no_wrap=True)
        table.add_column("value", no_wrap=True)
        table.add_column("meaning", overflow="fold")
        for f in dataclasses.fields(Config):
            if f.name not in ("env", "preset", "run_dir"):
                v = getattr(PRESETS[name], f.name)
                table.add_row(
                    "--" + f.name.replace("_", "-"), preset_value(v), " ".join(docs.get(f.name, "").split())
                )
        console.print(table)
        for values, source in PRESET_SOURCES.get(name, {}).items():
            console.print(f"  {values}: {source}")
        console.print("True/False: --flag or --no-flag; None: --flag None; blank: empty")
        return 0
    tables = presets_tables(console.width)
    for table in tables:
        console.print(table)
    wide = len(tables) == 1 and len(tables[0].columns) == len(PRESETS) + 2  # with the meaning column
    for name, text in PRESET_HELP.items():
        console.print(f"[bold]{name}[/]: {text}")
        if wide:
            for values, source in PRESET_SOURCES.get(name, {}).items():
                console.print(f"    {values}: {source}")
    console.print("True/False: --flag or --no-flag; None: --flag None; blank: empty")
    if not wide:
        console.print("Each field's meaning and each preset's sources: ddpgx presets NAME")
    console.print(
        f"Default preset: {default_preset('Pendulum-v1')} for Pendulum-v1, {default_preset('Hopper-v5')} for "
        f"Gymnasium's MuJoCo envs (Hopper-v5, Walker2d-v5, ...), {default_preset('FetchReach-v4')} for "
        f"FetchReach, {default_preset('FetchPush-v4')} for FetchPush, FetchPickAndPlace and FetchSlide, "
        f"{default_preset('my_pkg:MyEnv-v0')} for every other env."
    )
    return 0


@dataclass
class PlotArgs:
    run_dirs: tyro.conf.Positional[list[str]]
    """One or more run directories; runs that differ only in the seed are one curve: their mean, and a 95% CI band."""
    out: str = "returns.png"
    """Output image (.png, .svg or .pdf); an existing directory gets returns.png inside it."""
    metric: Literal["episode", "eval", "success", "both"] = "episode"
    """Training episode returns, noise-free eval returns, eval success rates (goal envs), or both returns."""
    smooth: int = 1
    """Moving-average window over training episodes (trailing mean; the legend says so when it is above 1)."""
    width: float = 8.0
    """Figure width in inches (100 pixels per inch)."""
    height: float = 4.5
    """Figure height in inches."""


def cmd_plot(args: list[str]) -> int:
    from pathlib import Path

    a = parse(PlotArgs, args, "ddpgx plot")
    out = plot_runs([Path(d) for d in a.run_dirs], Path(a.out), a.metric, a.smooth, (a.width, a.height))
    print(f"wrote {out}")
    return 0


@dataclass
class RecordArgs:
    run_dir: tyro.conf.Positional[str]
    """Run directory written by `ddpgx train`."""
    out: str = ""
    """Output .gif or .mp4 (default: <run_dir>/policy.gif)."""
    episodes: int = 1
    """Episodes to record, one after another."""
    max_steps: int = 1000
    """At most this many frames per episode."""
    fps: int = 30
    """Frames per second of the output."""
    every: int = 1
    """Keep every n-th frame (smaller files)."""
    width: int = 240
    """Frame width in pixels at most (an env that renders at its own size is scaled to fit, its aspect kept)."""
    height: int = 240
    """Frame height in pixels at most (see --width). Fetch's goal is clearer at 480 x 480."""
    seed: int = 0
    """Seed of the recorded episodes."""
    params: Annotated[str, tyro.conf.arg(aliases=("--checkpoint",))] = ""
    """Parameter or checkpoint file to load instead of <run_dir>/final.msgpack."""
    which: Literal["final", "best"] = "final"
    """The run's final policy, or the one of its best noise-free evaluation (best.msgpack)."""
    overlay: bool = False
    """Write the step and the return so far in each frame's top-left corner."""
    camera: Literal["auto", "env"] = "auto"
    """auto: MuJoCo robots' tracking camera, Fetch's table from closer; env: the env's own default camera."""
    successful: bool = False
    """Goal envs (Fetch): record only episodes that end in success, the first from --seed on (at most 100 tried)."""


def cmd_record(args: list[str]) -> int:
    # start-up: only this command loads it (`import ddpgx` does not)
    from ddpgx.record import record

    a = parse(RecordArgs, args, "ddpgx record")
    res = record(
        a.run_dir,
        out=a.out or None,
        episodes=a.episodes,
        max_steps=a.max_steps,
        fps=a.fps,
        every=a.every,
        size=(a.width, a.height),
        seed=a.seed,
        params_file=params_for(a.run_dir, a.which, a.params or None),
        overlay=a.overlay,
        camera=a.camera,
        successful=a.successful,
    )
    returns = ", ".join(f"{r:.1f}" for r in res.returns)
    seeds = f" (successful episodes: seeds {', '.join(map(str, res.seeds))})" if a.successful else ""
    print(f"wrote {res.path} ({res.frames} frames rendered); episode return {returns}{seeds}")
    return 0


@dataclass
class SweepArgs:
    file: tyro.conf.Positional[Annotated[str, tyro.conf.arg(metavar="FILE.toml")]] = ""
    """A sweep written as TOML (docs/guides/sweeps.md); or give the grid with the flags below."""
    env: list[str] = dataclasses.field(default_factory=list)
    """Environments (one or more)."""
    preset: list[str] = dataclasses.field(default_factory=list)
    """Presets (one or more; default: each env's default preset)."""
    seeds: str = "0"
    """Seeds: a range and/or list, e.g. 0-4 or 0,3,7."""
    set: Annotated[list[str], tyro.conf.UseAppendAction] = dataclasses.field(default_factory=list)
    """FIELD=VALUE[,VALUE...], repeatable: every Config field, values as `ddpgx train` takes them."""
    total_steps: int | None = None
    """Env steps of every run (default: the preset's)."""
    out: str = ""
    """Directory of the sweep: one run directory per cell x seed, sweep.json, report.md."""
    address: str = ""
    """Ray cluster to join (HOST:PORT from `ray start --head`); empty: an embedded local Ray."""
    cpus_per_run: float = 1.0
    """CPU cores per run (its threads are limited and pinned to them)."""
    gpus_per_run: float = 0.0
    """GPUs per run; a fraction lets several runs share one GPU."""
    max_parallel: int = 0
    """Runs at once at most (0: as many as the cluster's CPUs/GPUs allow)."""
    max_retries: int = 3
    """Times a run whose worker died (killed, node lost) is retried from its last checkpoint."""
    exclude: Annotated[list[str], tyro.conf.UseAppendAction] = dataclasses.field(default_factory=list)
    """RUN-NAME or pattern, repeatable: runs of the grid not to run this time (finished on another machine), e.g.
    --exclude 'Ant-v5__modern__s0' --exclude '*__s4'; added to the TOML file's exclude list."""
    live: bool = True
    """Show the live progress table."""


def sweep_spec(a: SweepArgs):  # -> SweepSpec
    # start-up: only this command loads it (`import ddpgx` does not)
    from ddpgx.grid import SweepSpec, load_toml, parse_seeds, parse_set

    if a.file:
        if a.env or a.preset or a.set or a.seeds != "0" or a.total_steps is not None:
            raise UserError("give the grid in the TOML file or as flags, not both")
        spec = load_toml(a.file)
        spec.out = a.out or spec.out
    else:
        spec = SweepSpec(
            env=a.env, preset=a.preset or [""], seeds=parse_seeds(a.seeds), set=parse_set(a.set),
            total_steps=a.total_steps, out=a.out,
        )  # fmt: skip
    spec.address = a.address or spec.address
    spec.exclude = [*spec.exclude, *a.exclude]
    for name in ("cpus_per_run", "gpus_per_run", "max_parallel", "max_retries"):
        if getattr(a, name) != getattr(SweepArgs, name):
            setattr(spec, name, getattr(a, name))
    return spec


def cmd_sweep(args: list[str]) -> int:
    # start-up: only this command loads it (`import ddpgx` does not)
    from ddpgx.sweep import run_sweep

    a = parse(SweepArgs, args, "ddpgx sweep")
    spec = sweep_spec(a)
    try:
        res = run_sweep(spec, live=a.live)
    except KeyboardInterrupt:
        print(
            f"ddpgx: sweep stopped; continue it with the same command: ddpgx sweep {' '.join(args)}",
            file=sys.stderr,
        )
        return 130
    counts = {s: sum(r.status == s for r in res.runs) for s in ("done", "failed", "stopped", "excluded")}
    console = Console(soft_wrap=True)
    for r in res.failed:
        console.print(f"[red]failed[/]: {r.cell.name}: {r.error}")
    console.print(
        f"sweep {res.out}: {counts['done']} done, {counts['failed']} failed, {counts['stopped']} stopped"
        + (f", {counts['excluded']} excluded (not run: exclude)" if counts["excluded"] else "")
    )
    if res.report is not None:
        console.print(f"report: {res.report}")
    if counts["stopped"]:  # `touch OUT/.stop`: like Ctrl-C, not a finished sweep
        print(
            f"ddpgx: sweep stopped with {counts['stopped']} runs unfinished; continue it with the same command: "
            f"ddpgx sweep {' '.join(args)}",
            file=sys.stderr,
        )
        return 130
    return 1 if res.failed else 0


@dataclass
class TuneArgs:
    file: tyro.conf.Positional[Annotated[str, tyro.conf.arg(metavar="FILE.toml")]] = ""
    """A study written as TOML (the flags' names as keys, [space.FIELD] tables); or give it with the flags."""
    env: str = ""
    """Environment to tune on."""
    preset: str = ""
    """Preset the trials start from (default: the env's default preset)."""
    trials: int = 20
    """Trials to finish (complete, pruned or failed), counting those of earlier drivers of the same study."""
    total_steps: int = 100_000
    """Env steps of each trial's runs."""
    out: str = ""
    """Directory of the study: its trials' run directories, study.db, trials.csv."""
    space: str = ""
    """A TOML search space file (default: rl-zoo's TD3/DDPG space; docs/guides/tuning.md)."""
    sampler: Literal["tpe", "random"] = "tpe"
    """Optuna sampler."""
    pruner: Literal["median", "halving", "none"] = "median"
    """Optuna pruner, fed every evaluation of a trial (mean over its seeds)."""
    storage: str = ""
    """Optuna RDB storage URL (default: sqlite:///OUT/study.db; postgresql://... or mysql://... to share a study)."""
    address: str = ""
    """Ray cluster to join (HOST:PORT); empty: an embedded local Ray."""
    cpus_per_run: float = 1.0
    """CPU cores per run (pinned)."""
    seeds: str = "0"
    """Seeds each trial runs and averages: a range and/or list, e.g. 0-1."""
    eval_every: int = 0
    """Env steps between a trial's evaluations (0: total_steps / 10)."""
    objective_evals: int = 3
    """The objective: mean eval return over a trial's last this many evaluations (mean over its seeds)."""
    max_parallel: int = 0
    """Trials at once at most (0: as many as the cores allow)."""
    set: Annotated[list[str], tyro.conf.UseAppendAction] = dataclasses.field(default_factory=list)
    """FIELD=VALUE, repeatable: Config fields fixed for every trial."""
    live: bool = True
    """Show the live progress table (trials' runs, steps/s, ETA, the best so far)."""
    best: bool = False
    """Print the best trials of the study in FILE (its --out directory) instead of running it; write best.toml (a
    sweep variant), the train command, history.png and importance.png."""


def tune_spec(a: TuneArgs):  # -> TuneSpec
    from pathlib import Path

    # start-up: only this command loads it (`import ddpgx` does not)
    from ddpgx.grid import parse_seeds, read_toml
    from ddpgx.tune import TuneSpec, check_space, load_space

    spec = TuneSpec()
    if a.file:
        data = {k.replace("-", "_"): v for k, v in read_toml(a.file).items()}
        names = {f.name for f in dataclasses.fields(TuneSpec)}
        unknown = set(data) - names
        if unknown:
            raise UserError(f"{a.file}: unknown keys {sorted(unknown)}; use {', '.join(sorted(names))}")
        if "seeds" in data:
            data["seeds"] = parse_seeds(data["seeds"])
        if "space" in data:
            check_space(data["space"], a.file)
        for k, v in data.items():
            setattr(spec, k, v)
        spec.set = {k: parse_field(k, v) for k, v in spec.set.items()}
    defaults = TuneArgs(file="")
    for name in ("env", "preset", "trials", "total_steps", "out", "sampler", "pruner", "storage", "address",
                 "cpus_per_run", "eval_every", "objective_evals", "max_parallel"):  # fmt: skip
        if getattr(a, name) != getattr(defaults, name) or not a.file:
            setattr(spec, name, getattr(a, name))
    if a.seeds != "0" or not a.file:
        spec.seeds = parse_seeds(a.seeds)
    if a.space:
        spec.space = load_space(Path(a.space))
    for item in a.set:
        key, eq, value = item.partition("=")
        if not eq:
            raise UserError(f"--set {item}: write FIELD=VALUE")
        spec.set[key.strip().replace("-", "_")] = parse_field(key, value)
    return spec


def param_text(v: object) -> str:
    """A tuned parameter for the table: four significant digits, exponent kept (1.262e-05, never 1.262094)."""
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def tune_best(a: TuneArgs) -> int:
    # start-up: only this command loads it (`import ddpgx` does not)
    from ddpgx.tune import best_results

    out = a.out or a.file
    if not out:
        raise UserError("ddpgx tune OUT --best: name the study's directory")
    res = best_results(out, a.storage)
    table = Table(title=f"best trials of {out}")
    names = sorted({k for t in res["ranked"] for k in t.params})
    for col in ("trial", "objective", *names):
        table.add_column(col)
    for t in res["ranked"]:
        table.add_row(str(t.number), f"{t.value:.1f}", *(param_text(t.params.get(n)) for n in names))
    console = Console(soft_wrap=True)
    console.print(table)
    console.print(f"best config as a sweep variant: {res['toml']}  (ddpgx sweep {res['toml']})")
    console.print(f"train it: {res['command']}")
    for img in res["images"]:
        console.print(f"wrote {img}")
    return 0


def cmd_tune(args: list[str]) -> int:
    # start-up: only this command loads it (`import ddpgx` does not)
    from ddpgx.tune import all_failed, run_tune

    a = parse(TuneArgs, args, "ddpgx tune")
    if a.best:
        return tune_best(a)
    spec = tune_spec(a)
    try:
        study = run_tune(spec, live=a.live)
    except KeyboardInterrupt:
        print(
            f"ddpgx: tune stopped; continue it with the same command: ddpgx tune {' '.join(args)}",
            file=sys.stderr,
        )
        return 130
    from pathlib import Path

    if (Path(spec.out) / STOP_FILE).exists():
        print(
            f"ddpgx: tune stopped (OUT/.stop); its running trials checkpointed; continue with the same command: "
            f"ddpgx tune {' '.join(args)}",
            file=sys.stderr,
        )
        return 1
    done = [t for t in study.get_trials(deepcopy=False) if t.value is not None]
    states: dict[str, int] = {}
    for t in study.get_trials(deepcopy=False):
        states[t.state.name.lower()] = states.get(t.state.name.lower(), 0) + 1
    print(f"study {spec.out}: " + ", ".join(f"{v} {k}" for k, v in sorted(states.items())))
    if done:
        best = study.best_trial
        print(f"best: trial {best.number}, objective {best.value:.1f}, params {best.params}")
    failed = all_failed(study, spec.out)
    if failed:  # nothing to rank: not a study that worked
        print(f"ddpgx: error: {failed}", file=sys.stderr)
        return 1
    return 0


@dataclass
class ReportArgs:
    dirs: tyro.conf.Positional[list[str]]
    """Run directories, or folders of runs (a sweep's --out)."""
    out: str = "report.md"
    """Markdown report; report.csv and report.png (and report_aggregate.png) are written beside it."""
    metric: Literal["eval", "episode", "success"] = "eval"
    """Final noise-free eval return, or the mean of the last 10 training episodes."""


def cmd_report(args: list[str]) -> int:
    # start-up: only this command loads it (`import ddpgx` does not)
    from ddpgx.report import write_report

    a = parse(ReportArgs, args, "ddpgx report")
    out = write_report(a.dirs, a.out, a.metric)
    print(f"wrote {out} (and {out.with_suffix('.csv').name}, {out.with_suffix('.png').name})")
    return 0


COMMANDS = {
    "train": cmd_train,
    "eval": cmd_eval,
    "presets": cmd_presets,
    "plot": cmd_plot,
    "record": cmd_record,
    "sweep": cmd_sweep,
    "report": cmd_report,
    "export": cmd_export,
    "tune": cmd_tune,
}


def version_text() -> str:
    """`ddpgx --version`: ddpgx's version, then the versions every run's config.json records, and Python's."""
    v = versions()
    others = ", ".join(f"{k} {x}" for k, x in v.items() if k != "ddpgx")
    return f"ddpgx {v['ddpgx']}\n{others}, python {platform.python_version()}"


def main(argv: list[str] | None = None) -> int:
    try:
        code = run_command(argv)
        sys.stdout.flush()  # here, not at exit: a buffered write to a closed pipe fails on this flush
        return code
    except BrokenPipeError:
        if not stdout_is_broken():  # another pipe or socket (a tracker's): a real error
            raise
        # `ddpgx --help | head`: the reader is gone; end as a shell tool does, without a traceback, and with
        # standard output on /dev/null, where Python's flush at exit does not raise again
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 128 + signal.SIGPIPE


def stdout_is_broken() -> bool:
    """Whether standard output is a pipe whose reader has gone (poll reports an error on its write end)."""
    try:  # a stream without a descriptor (captured output): io.UnsupportedOperation, an OSError and ValueError
        fd = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):
        return False
    poller = select.poll()
    poller.register(fd, select.POLLOUT)
    return any(event & select.POLLERR for _, event in poller.poll(0))


def run_command(argv: list[str] | None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE)
        return 0 if argv else 2
    cmd, rest = argv[0], argv[1:]
    if cmd in ("-V", "--version"):
        print(version_text())
        return 0
    if cmd not in COMMANDS:
        close = difflib.get_close_matches(cmd, list(COMMANDS), n=1)
        hint = f"; did you mean `ddpgx {close[0]}`?" if close else f"; choose one of {', '.join(COMMANDS)}"
        print(f"ddpgx: error: unknown command '{cmd}'{hint}", file=sys.stderr)
        return 2
    try:
        return COMMANDS[cmd](rest)
    except UserError as e:
        print(f"ddpgx: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("ddpgx: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
