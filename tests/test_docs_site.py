"""The docs site and the README, the project's front door.

- The site builds with ``mkdocs build --strict`` (a broken link, a missing page or an API symbol that no longer
  exists fails it), its API reference documents every public symbol and every ``Config`` field, and its command-line
  reference is every command's ``--help``, every ``Config`` field's flag included.
- In headless Chromium (a slow test; it skips without chromium, chromedriver or selenium) the home page and a guide
  render: a title, a main text, the guides in the navigation, every image loaded.
- The README stays a front door: under 200 lines, ``make demo`` / ``make test`` as its set-up, links that resolve,
  and a Python quick start that runs as written.
"""

from __future__ import annotations

import csv
import dataclasses
import functools
import html
import http.server
import math
import os
import re
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from ddpgx import Config
from ddpgx.cli import COMMANDS

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"


def text_of(page: Path) -> str:
    """A built page's visible text, roughly: tags dropped, entities decoded."""
    return html.unescape(re.sub(r"<[^>]+>", "", page.read_text()))


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    """The site, built once per module as `make docs` builds it (strict), into a temporary folder."""
    out = tmp_path_factory.mktemp("site")
    proc = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )  # fmt: skip
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-4000:]
    assert "WARNING -" not in log, log[-4000:]
    return out


def test_strict_build_documents_the_api_and_the_cli(site: Path) -> None:
    api = (site / "reference" / "api" / "index.html").read_text()
    for symbol in ("ddpgx.train.train", "ddpgx.preset_config", "ddpgx.TrainResult", "ddpgx.load_policy",
                   "ddpgx.DDPG", "ddpgx.DDPG.learn", "ddpgx.DDPG.predict", "ddpgx.Callback", "ddpgx.StopOnReward",
                   "ddpgx.StopOnNoImprovement", "ddpgx.every", "ddpgx.evaluate.Evaluator",
                   "ddpgx.export.export_onnx", "ddpgx.UserError"):  # fmt: skip
        assert f'id="{symbol}"' in api, f"the API reference lost {symbol}"
    assert "total_steps" in text_of(site / "reference" / "api" / "index.html")

    config = (site / "reference" / "config" / "index.html").read_text()
    config_text = text_of(site / "reference" / "config" / "index.html")
    for f in dataclasses.fields(Config):
        assert f'id="ddpgx.Config.{f.name}"' in config, f"Config.{f.name} is not on the Config page"
    assert "Environment steps to train for." in config_text  # total_steps's docstring, as griffe reads it
    # docstrings' <placeholders> are shown as code, not read as HTML tags
    assert "<run_dir>" not in config and "&lt;run_dir&gt;" in config

    cli_page = site / "reference" / "cli" / "index.html"
    cli = text_of(cli_page)
    assert "--total-steps" in cli
    for cmd in COMMANDS:
        assert f"ddpgx {cmd} --help" in cli, f"the CLI reference lacks `ddpgx {cmd} --help`"
    train_help = cli.split("ddpgx train --help", 1)[1].split("ddpgx eval --help", 1)[0]
    for f in dataclasses.fields(Config):
        flag = "--" + f.name.replace("_", "-")
        assert flag in train_help, f"`ddpgx train --help` on the site lacks {flag}"
    assert "\x1b[" not in cli_page.read_text()  # no colour codes captured

    assert not (site / "data").exists()  # docs/data/ (the benchmarks' CSVs) is not part of the site
    changelog = (ROOT / "CHANGELOG.md").read_text()
    first_heading = next(line.lstrip("#").strip() for line in changelog.splitlines() if line.startswith("#"))
    assert first_heading in text_of(site / "changelog" / "index.html")


def guide_titles() -> list[str]:
    """The Guides section's page titles, as mkdocs.yml's nav names them."""
    text = (ROOT / "mkdocs.yml").read_text()
    section = text.split("  - Guides:\n", 1)[1].split("\n  - ", 1)[0]
    titles = re.findall(r"^\s+- ([^:\n]+): \S+\.md$", section, flags=re.M)
    assert len(titles) >= 10, section
    return titles


def browser():
    """Headless Chromium through selenium. selenium is in the dev extra `make test` installs, so its absence fails;
    the browser is a Debian package scripts/system-deps.sh installs only where it can (root or sudo): its absence
    skips, naming what is missing."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    for path in (CHROMIUM, CHROMEDRIVER):
        if not os.access(path, os.X_OK):
            pytest.skip(
                f"{path} is missing (bash scripts/system-deps.sh installs chromium and chromium-driver)"
            )
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--window-size=1280,900",
    ):
        options.add_argument(arg)
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


@pytest.mark.slow
def test_pages_render_in_a_browser(site: Path) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    driver = browser()
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(QuietHandler, directory=str(site))
    )
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}/"
    try:
        for path, title, min_images in (("", "ddpgx", 2), ("guides/vector/", "Many envs per learner", 1)):
            driver.get(base + path)
            assert title in driver.title, driver.title
            main = driver.find_element(By.CSS_SELECTOR, "article.md-content__inner")
            assert len(main.text.strip()) > 300, main.text
            assert driver.find_element(By.TAG_NAME, "h1").text.strip()

            nav = [
                a.get_attribute("textContent").strip()
                for a in driver.find_elements(By.CSS_SELECTOR, "nav.md-nav a")
            ]
            missing = [t for t in guide_titles() if t not in nav]
            assert not missing, f"{path or 'home'}: the navigation lacks {missing}"

            WebDriverWait(driver, 30).until(
                lambda d: d.execute_script("return Array.from(document.images).every(i => i.complete)")
            )
            images = driver.execute_script(
                "return Array.from(document.images).map(i => [i.currentSrc || i.src, i.complete, i.naturalWidth])"
            )
            assert len(images) >= min_images, images
            broken = [src for src, complete, width in images if not (complete and width > 0)]
            assert not broken, f"{path or 'home'}: images that did not load: {broken}"
    finally:
        driver.quit()
        server.shutdown()


def test_readme_is_a_front_door() -> None:
    text = README.read_text()
    lines = text.splitlines()
    assert len(lines) < 200, f"README.md has {len(lines)} lines"
    setup = text.split("## Set-up", 1)[1].strip().splitlines()[0]
    assert "make demo" in setup and "make test" in setup, setup
    assert "make test" in text.split("## Development", 1)[1]  # CI runs it

    targets = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text)
    local = [t for t in targets if not re.match(r"[a-z]+:", t)]
    assert len(local) >= 20, local
    missing = [t for t in local if not (ROOT / t).exists()]
    assert not missing, f"README.md links to files that do not exist: {missing}"

    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert len(blocks) == 1, "the README has one Python block: the quick start"
    assert "DDPG(" in blocks[0] and ".learn(" in blocks[0] and ".predict(" in blocks[0]


@pytest.mark.slow
def test_readme_quick_start_runs_as_written(tmp_path: Path) -> None:
    code = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)[0]
    script = tmp_path / "quickstart.py"
    script.write_text(code)
    proc = subprocess.run(
        [sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    printed = re.search(r"^return (-?\d+)$", proc.stdout, flags=re.M)
    assert printed and math.isfinite(float(printed.group(1))), proc.stdout[-2000:]

    runs = list((tmp_path / "runs").glob("Pendulum-v1__pendulum__s0__*"))
    assert len(runs) == 1, runs
    assert (runs[0] / "final.msgpack").is_file()
    with open(runs[0] / "eval.csv") as f:
        rows = list(csv.DictReader(f))
    assert int(rows[-1]["step"]) == 5_000
    # learned: the pendulum preset's first evaluation (step 2000) scores about -1000, and the preset solves
    # Pendulum (>= -200) by 3,000-5,000 steps (docs/PERFORMANCE.md); -600 leaves room for a machine's float noise
    assert float(rows[-1]["mean_return"]) > -600, rows
