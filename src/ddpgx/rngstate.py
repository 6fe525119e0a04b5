"""numpy random generators' states as JSON-able dicts (what checkpoints keep) and back."""

from __future__ import annotations

from typing import Any

import numpy as np


def rng_state(gen: np.random.Generator) -> dict[str, Any]:
    return _jsonable(gen.bit_generator.state)


def set_rng_state(gen: np.random.Generator, state: dict[str, Any]) -> None:
    gen.bit_generator.state = state


def _jsonable(x: Any) -> Any:
    if isinstance(x, dict):
        return {k: _jsonable(v) for k, v in x.items()}
    if isinstance(x, np.ndarray):
        return x.tolist()
    if isinstance(x, np.integer):
        return int(x)
    return x
