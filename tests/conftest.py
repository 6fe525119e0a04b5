import os
import sys
from pathlib import Path

os.environ.setdefault("MUJOCO_GL", "egl")
sys.path.insert(0, str(Path(__file__).parent))

import envs_for_tests  # noqa: E402,F401  (registers the test envs)

# The maths and unit tests: every other module trains, kills, sweeps or tunes, and is marked slow
# (`make test-fast` runs `pytest -m "not slow"`, about a minute; `make test` runs everything).
UNIT_MODULES = {
    "test_learner.py",
    "test_noise.py",
    "test_replay.py",
    "test_obsnorm.py",
    "test_envs_networks.py",
    "test_crossq.py",
    "test_messages.py",
}


# `make test` runs the suite on two pytest-xdist workers (`-n 2 --dist loadgroup`): each module stays on one worker
# (module-scoped fixtures are made once), and the modules that start Ray clusters share one group, so no two clusters
# run at once.
RAY_MODULES = {"test_sweep.py", "test_tune.py"}


def pytest_collection_modifyitems(config, items):
    import pytest

    for item in items:
        if item.path.name not in UNIT_MODULES:
            item.add_marker(pytest.mark.slow)
        group = "ray" if item.path.name in RAY_MODULES else item.path.stem
        item.add_marker(pytest.mark.xdist_group(group))
