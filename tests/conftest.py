import os
import shutil
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("MUJOCO_GL", "egl")

# One persistent XLA compile cache for the whole test session: the pytest process (or xdist's controller) makes it
# before any worker starts, and every process of the session inherits it through the environment: both workers,
# the runs the tests start as subprocesses, and Ray's workers. Most tests train small configs whose programs are
# the same HLO as another test's, and jax then loads the compiled program instead of compiling it again (ddpgx's
# own `--compile-cache` is jax's same mechanism, and test_train checks that a cached program changes no result).
# The size limit turns on jax's file lock, so that processes writing and reading one entry at once wait for each
# other. A cache the caller set (JAX_COMPILATION_CACHE_DIR) is used and kept, and an empty one runs without
# (`JAX_COMPILATION_CACHE_DIR= make test`); the session's own cache is deleted at its end.
_OWN_XLA_CACHE = None
if "JAX_COMPILATION_CACHE_DIR" not in os.environ:
    _OWN_XLA_CACHE = tempfile.mkdtemp(prefix="ddpgx-tests-xla-")
    os.environ["JAX_COMPILATION_CACHE_DIR"] = _OWN_XLA_CACHE
    os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")  # ours compile in < 1 s
    os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES", "0")
    os.environ.setdefault("JAX_COMPILATION_CACHE_MAX_SIZE", str(4 << 30))
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


def pytest_unconfigure(config):
    if _OWN_XLA_CACHE and not hasattr(config, "workerinput"):  # its maker, after the workers ended
        shutil.rmtree(_OWN_XLA_CACHE, ignore_errors=True)
