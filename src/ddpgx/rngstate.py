"""numpy random generators' states as JSON-able dicts (what checkpoints keep) and back."""

from __future__ import annotations

from typing import Any

import numpy as np


def rng_state(gen: np.random.Generator | np.random.RandomState) -> dict[str, Any]:
    """A Generator's state, or a legacy RandomState's (dm_control's envs through Shimmy keep one)."""
    if isinstance(gen, np.random.RandomState):
        return _jsonable(gen.get_state(legacy=False))
    return _jsonable(gen.bit_generator.state)


def set_rng_state(gen: np.random.Generator | np.random.RandomState, state: dict[str, Any]) -> None:
    if isinstance(gen, np.random.RandomState):
        inner = state["state"]
        gen.set_state({**state, "state": {**inner, "key": np.asarray(inner["key"], np.uint32)}})
        return
    gen.bit_generator.state = state


def _jsonable(x: Any) -> Any:
    if isinstance(x, dict):
        return {k: _jsonable(v) for k, v in x.items()}
    if isinstance(x, np.ndarray):
        return x.tolist()
    if isinstance(x, np.integer):
        return int(x)
    return x
