"""Each field's declared type: checking a value against it, and reading a value from text as the command line
and TOML files give it."""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from typing import Any, Literal

from ddpgx.config import Config
from ddpgx.errors import UserError

_UNION_TYPE = getattr(types, "UnionType", None)  # ``float | None`` (Python 3.10+), beside typing.Union


def _type_ok(value: Any, hint: Any) -> bool:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is str:
        return isinstance(value, str)
    if origin is Literal:
        return value in args
    if origin is tuple:
        return isinstance(value, tuple) and all(_type_ok(v, args[0]) for v in value)
    if origin in (typing.Union, _UNION_TYPE):
        return any(_type_ok(value, a) for a in args)
    if hint is type(None):
        return value is None
    return True


def _type_name(hint: Any) -> str:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    names = {bool: "a bool (True or False)", int: "an int", float: "a number", str: "a string"}
    if hint in names:
        return names[hint]
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in args)
    if origin is tuple:
        return f"a tuple of {_type_name(args[0]).split(' ', 1)[1]}s"
    if hint is type(None):
        return "None"
    return " or ".join(_type_name(a) for a in args)


def check_types(cfg: Config) -> None:
    """Each field holds a value of its declared type: ``total_steps must be an int, got 300.0``."""
    hints = typing.get_type_hints(Config)
    for f in dataclasses.fields(Config):
        value = getattr(cfg, f.name)
        if not _type_ok(value, hints[f.name]):
            raise UserError(f"{f.name} must be {_type_name(hints[f.name])}, got {value!r}")


def parse_field(name: str, raw: Any) -> Any:
    """A field's value from text as ``ddpgx train`` reads it (``0.01``, ``true``, ``400 300``, ``None``); values that
    are not text (from a TOML file) pass through, lists as tuples. Unknown fields and bad values: UserError."""
    hints = typing.get_type_hints(Config)
    name = name.strip().replace("-", "_")
    if name not in hints:
        close = difflib.get_close_matches(name, list(hints), n=1, cutoff=0.6)
        hint = f"; did you mean {close[0]}?" if close else "; see `ddpgx presets` for the fields"
        raise UserError(f"unknown config field '{name}'{hint}")
    hint = hints[name]
    if not isinstance(raw, str):
        value = tuple(raw) if isinstance(raw, list) else raw
    else:
        value = _from_text(raw.strip(), hint)
    if not _type_ok(value, hint):
        raise UserError(f"{name}={raw} is not valid: {name} must be {_type_name(hint)}")
    return value


def _from_text(raw: str, hint: Any) -> Any:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    try:
        if hint is bool:
            words = {"true": True, "false": False, "1": True, "0": False, "yes": True, "no": False}
            return words.get(raw.lower(), raw)
        if hint is int:
            if raw.replace("_", "").lstrip("-").isdigit():
                return int(raw.replace("_", ""))
            f = float(raw)  # 1e6 is an int; 2.5 is not, and is left for the type check to refuse
            return int(f) if f.is_integer() else raw
        if hint is float:
            return float(raw)
        if origin is tuple:
            return tuple(_from_text(part, args[0]) for part in raw.replace(",", " ").split())
        if origin in (typing.Union, _UNION_TYPE):
            if raw.lower() == "none":
                return None
            return _from_text(raw, next(a for a in args if a is not type(None)))
    except (ValueError, OverflowError):
        return raw  # left for the type check to refuse
    return raw


__all__ = ["check_types", "parse_field"]


def flag_value(flag: str, raw: str, hint: Any) -> Any:
    """A command-line flag's value read as its declared type ``hint`` (``1e6`` and ``20_000`` are ints), or one
    UserError naming the flag, what was given and what to write: ``--total-steps '1e4.5': must be an int``."""
    value = _from_text(raw.strip(), hint)
    if not _type_ok(value, hint):
        eg = " (1e6 and 300_000 are read as ints)" if hint is int else ""
        raise UserError(f"{flag} {raw!r}: must be {_type_name(hint)}{eg}")
    return value
