"""mkdocs hooks for the docs site (``hooks:`` in mkdocs.yml).

The command-line reference (docs/reference/cli.md) is written at build time from the parser itself: every
``ddpgx COMMAND --help``, captured in one subprocess of this Python (``ddpgx.cli.main``, at a fixed width of
``COLUMNS`` characters and without colour), replaces the page's ``<!-- cli-help -->`` marker. It cannot drift from
``--help``; a command whose help fails fails the build.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from mkdocs.exceptions import PluginError

CLI_PAGE = "reference/cli.md"
MARKER = "<!-- cli-help -->"
COLUMNS = 80

# Runs in the subprocess: every command's --help, as JSON {"": top-level usage, "train": ..., ...}.
CAPTURE = r"""
import contextlib, io, json, sys
from ddpgx.cli import COMMANDS, main

helps = {}
for cmd in ["", *COMMANDS]:
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        try:
            code = main([cmd, "--help"] if cmd else ["--help"])
        except SystemExit as e:
            code = e.code or 0
    if code not in (0, None):
        sys.exit(f"ddpgx {cmd} --help exited with {code}")
    helps[cmd] = buf.getvalue()
with open(sys.argv[1], "w") as f:
    json.dump(helps, f)
"""


def capture_help() -> dict[str, str]:
    """``{"": ddpgx --help, "train": ddpgx train --help, ...}``, each with trailing spaces stripped."""
    env = {
        k: v for k, v in os.environ.items() if k not in ("FORCE_COLOR", "CLICOLOR_FORCE", "TTY_COMPATIBLE")
    }
    env.update(COLUMNS=str(COLUMNS), LINES="50", NO_COLOR="1", TERM="dumb", PYTHONIOENCODING="utf-8")
    root = Path(__file__).resolve().parent.parent
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(root / "src"), env.get("PYTHONPATH", "")) if p)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "help.json"
        proc = subprocess.run(
            [sys.executable, "-c", CAPTURE, str(out)], env=env, capture_output=True, text=True, timeout=300
        )
        if proc.returncode != 0 or not out.is_file():
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-5:]
            raise PluginError(f"docs_hooks: could not capture `ddpgx COMMAND --help`: {' | '.join(tail)}")
        helps = json.loads(out.read_text())
    return {k: "\n".join(line.rstrip() for line in v.strip("\n").splitlines()) for k, v in helps.items()}


def cli_markdown(helps: dict[str, str]) -> str:
    parts = ["## ddpgx", "", "`ddpgx --help`:", "", "```text", helps[""], "```", ""]
    for cmd, text in helps.items():
        if not cmd:
            continue
        parts += [f"## ddpgx {cmd}", "", f"`ddpgx {cmd} --help`:", "", "```text", text, "```", ""]
    return "\n".join(parts)


def on_page_markdown(markdown: str, page, config, files) -> str:  # noqa: ANN001 - mkdocs' hook signature
    if page.file.src_uri != CLI_PAGE:
        return markdown
    if MARKER not in markdown:
        raise PluginError(f"docs_hooks: {CLI_PAGE} lost its {MARKER} marker")
    return markdown.replace(MARKER, cli_markdown(capture_help()))


# --- the API reference: docstrings are written as plain text with ``code``; a few hold paths with placeholders
# (``runs/<env>__<preset>__s<seed>``) that Markdown would read as HTML tags and bold. This griffe extension
# (mkdocs.yml: the python handler's ``extensions``) puts such words in code spans before they are rendered.

import re  # noqa: E402 - kept with the extension it serves

import griffe  # noqa: E402

_CODE = re.compile(r"(`+)(.+?)\1", re.S)  # a code span, kept as is
_PLACEHOLDER_WORD = re.compile(r"(?<![\w`])([^\s`()]*<[A-Za-z_]+>[^\s`]*?)([.,;:)]*)(?=\s|$)")


def _escape_line(line: str) -> str:
    out, pos = [], 0
    for m in _CODE.finditer(line):
        out.append(_PLACEHOLDER_WORD.sub(r"`\1`\2", line[pos : m.start()]))
        out.append(m.group(0))
        pos = m.end()
    out.append(_PLACEHOLDER_WORD.sub(r"`\1`\2", line[pos:]))
    return "".join(out)


def markdown_safe(text: str) -> str:
    """``text`` with every word holding a ``<placeholder>`` outside code put in a code span (indented and fenced
    code blocks are left alone)."""
    lines, fenced = [], False
    for line in text.splitlines():
        if line.lstrip().startswith("```"):
            fenced = not fenced
        lines.append(line if fenced or line.startswith("    ") else _escape_line(line))
    return "\n".join(lines)


class MarkdownSafeDocstrings(griffe.Extension):
    def on_object(self, *, obj: griffe.Object, **kwargs: object) -> None:
        if obj.docstring is not None:
            obj.docstring.value = markdown_safe(obj.docstring.value)
