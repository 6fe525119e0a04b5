import os
import sys
from pathlib import Path

os.environ.setdefault("MUJOCO_GL", "egl")
sys.path.insert(0, str(Path(__file__).parent))

import envs_for_tests  # noqa: E402,F401  (registers the test envs)

# Tests that train, kill, sweep, tune or otherwise take more than a couple of seconds carry `@pytest.mark.slow`
# (a module-level `pytestmark` where every test of the module does): marked per test, so the maths and unit tests
# of the training modules (TD3's target, n-step returns, parameter noise, the update schedule, the bad-input
# messages, ...) run in `make test-fast` (`pytest -m "not slow"`) beside those of the unit modules; `make test`
# runs everything.

# `make test` runs the suite on two pytest-xdist workers (`-n 2 --dist loadgroup`): each module stays on one worker
# (module-scoped fixtures are made once), and the modules that start Ray clusters share one group, so no two clusters
# run at once.
RAY_MODULES = {"test_sweep.py", "test_tune.py", "test_examples_ray.py"}


def pytest_collection_modifyitems(config, items):
    import pytest

    if not config.pluginmanager.hasplugin("xdist"):  # `-p no:xdist`: no groups, and no unknown-mark warning
        return
    for item in items:
        group = "ray" if item.path.name in RAY_MODULES else item.path.stem
        item.add_marker(pytest.mark.xdist_group(group))
