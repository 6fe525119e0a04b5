"""Experiment trackers (MLflow, W&B): what goes to a run directory, mirrored to a tracker.

The host opens one ``Tracker`` per run (``open_tracker``) and hands it to the run's ``RunLogger``, which mirrors
every scalar it writes; at the end the host gives the tracker the run's files as artifacts.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ddpgx.config import Config


class Tracker:
    """The interface the host and the logger call; this base class tracks nothing."""

    def scalars(self, step: int, values: dict[str, float]) -> None:
        """Scalars at an env step (``{"eval/mean_return": -150.0}``)."""

    def artifacts(self, paths: list[Path]) -> None:
        """Files of the run (the plot, the policy files, a GIF)."""

    def close(self) -> None:
        """Flush and end the tracker's run (it can be continued by a resume)."""


def open_tracker(cfg: Config, run_dir: Path, resumed: bool, **tags: Any) -> Tracker:
    """The tracker ``cfg`` asks for, for the run in ``run_dir`` (``resumed``: continue its tracker run)."""
    return Tracker()
