"""The package as a user installs it: `ddpgx --version`, `py.typed`, and a wheel that works without the source tree.

The slow test builds the wheel and the sdist with `python -m build`, installs the wheel into a fresh venv and trains
from it, so a module or data file the package leaves out fails here rather than on a user's machine. The fresh venv
takes ddpgx from the wheel only (`pip install --no-deps`); its dependencies come from the test venv's site-packages through a
.pth path entry, which puts those directories on sys.path without running their own .pth files, so the editable
install of this checkout cannot shadow the wheel (the test checks where ddpgx was imported from)."""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
import tarfile
import zipfile
from pathlib import Path

import pytest

from ddpgx.cli import main
from ddpgx.runfiles import versions
from ddpgx.version import __version__

ROOT = Path(__file__).resolve().parents[1]


def test_version_prints_what_runs_record(capsys):
    assert main(["--version"]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert out[0] == f"ddpgx {__version__}"
    v = versions()
    assert v["ddpgx"] == __version__
    for pkg in ("jax", "flax", "gymnasium", "mujoco"):
        assert f"{pkg} {v[pkg]}" in out[1]
    assert main(["-V"]) == 0


def test_output_piped_into_a_reader_that_leaves_early_ends_quietly():
    # `ddpgx --help | head -3`: the reader is gone before ddpgx writes (closed at once, while Python imports);
    # no traceback, and the status a shell tool killed by SIGPIPE has (rich's tables, `ddpgx presets`, end as quietly)
    code = "import sys; from ddpgx.cli import main; sys.exit(main(['--help']))"
    # buffered, as a plain shell runs it
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    p = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env
    )
    p.stdout.close()
    assert p.wait(timeout=120) == 141
    assert p.stderr.read() == b""


def test_version_has_one_source():
    text = (ROOT / "pyproject.toml").read_text()
    assert 'dynamic = ["version"]' in text and 'attr = "ddpgx.version.__version__"' in text
    assert f"## [{__version__}]" in (ROOT / "CHANGELOG.md").read_text(), (
        "CHANGELOG.md has no entry for this version"
    )
    assert (ROOT / "src" / "ddpgx" / "py.typed").exists()


@pytest.mark.slow
def test_wheel_installs_and_trains(tmp_path):
    dist = tmp_path / "dist"
    r = subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--sdist", "--outdir", str(dist), str(ROOT)],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    (wheel,) = dist.glob(f"ddpgx-{__version__}-*.whl")
    (sdist,) = dist.glob(f"ddpgx-{__version__}.tar.gz")
    names = zipfile.ZipFile(wheel).namelist()
    src_modules = {p.name for p in (ROOT / "src" / "ddpgx").glob("*.py")}
    assert {Path(n).name for n in names if n.startswith("ddpgx/")} >= src_modules | {"py.typed"}
    with tarfile.open(sdist) as t:
        members = {Path(m).relative_to(f"ddpgx-{__version__}").as_posix() for m in t.getnames() if "/" in m}
    assert {"README.md", "pyproject.toml", "src/ddpgx/py.typed", "src/ddpgx/cli.py"} <= members

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    py = venv / "bin" / "python"
    site = subprocess.run(
        [str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(py),
            "install",
            "-q",
            "--no-deps",
            "--no-index",
            str(wheel),
        ],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stderr[-2000:]
    deps = sysconfig.get_paths()["purelib"]
    Path(site, "test-deps.pth").write_text(deps + "\n")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    where = subprocess.run(
        [str(py), "-c", "import ddpgx; print(ddpgx.__file__)"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
    )
    assert where.returncode == 0, where.stderr[-2000:]
    assert where.stdout.strip().startswith(site), f"ddpgx came from {where.stdout.strip()}, not the wheel"

    cli = [str(venv / "bin" / "ddpgx")]  # the console script the wheel declares
    r = subprocess.run([*cli, "--version"], capture_output=True, text=True, env=env, cwd=tmp_path)
    assert r.returncode == 0 and r.stdout.startswith(f"ddpgx {__version__}\n"), r.stderr[-2000:]
    run = tmp_path / "run"
    r = subprocess.run(
        [*cli, "train", "--env", "Pendulum-v1", "--preset", "pendulum", "--total-steps", "500",
         "--eval-every", "500", "--eval-episodes", "1", "--run-dir", str(run)],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
    )  # fmt: skip
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    assert (run / "final.msgpack").exists() and (run / "eval.csv").read_text().count("\n") >= 2
