"""Study results that outlive their run directories: each run's config.json and eval.csv (a few KB) copied to
docs/data/<study>/<run>/ with facts.json (its status, last step, and whatever else a study computed from files
that are not kept, such as a best policy's fresh evaluation), so a study's tables and curves can be made again, and
the study continued with only its missing runs, on a machine where the run directories are gone."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterable
from pathlib import Path

import numpy as np

DATA = Path(__file__).resolve().parent.parent / "docs" / "data"


def facts(run: Path) -> dict:
    """What an archived copy says of its run ({} for a live run never archived)."""
    path = run / "facts.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def status(run: Path) -> str:
    """finished / started / new: from the checkpoints of a live run, from facts.json for an archived copy."""
    from ddpgx.run import run_status

    return facts(run).get("status") or run_status(run)


def archive(run: Path, dst: Path, **extra) -> Path:
    """Copy ``run``'s config.json and eval.csv to ``dst``, with its status, last step and ``extra`` in facts.json
    (what an earlier copy recorded of the same run is kept unless given again; a copy of another run of that name,
    whose evaluations are not the first of this one's, leaves nothing behind). A copy with more evaluations than the
    live run is left as it is: that run was started again from step 0 on a machine where its directory was gone."""
    import csv
    import sys

    from ddpgx.logs import read_rows
    from ddpgx.run import run_status

    old, new = read_rows(dst / "eval.csv"), read_rows(run / "eval.csv")
    if len(old) > len(new):
        # the copy got further: the live run started again from step 0 (its machine's run directory was lost);
        # the copy stays until the new run gets further than it
        print(f"archive: kept {dst} ({len(old)} evaluations; the live run has {len(new)})", file=sys.stderr)
        return dst
    same_run = new[: len(old)] == old
    dst.mkdir(parents=True, exist_ok=True)
    for name in ("config.json", "eval.csv"):
        shutil.copyfile(run / name, dst / name)
    steps = [int(r["step"]) for name in ("eval.csv", "episodes.csv") if (run / name).is_file()
             for r in csv.DictReader(open(run / name))]  # fmt: skip
    kept = {
        **(facts(dst) if same_run else {}),
        "status": run_status(run),
        "step": max(steps, default=0),
        **extra,
    }
    (dst / "facts.json").write_text(json.dumps(kept, sort_keys=True) + "\n")
    return dst


def study_runs(live: Iterable[Path], study: str, write: bool = True) -> list[Path]:
    """The study's runs: the live ones (archived to docs/data/<study> on the way when ``write``) and the archived
    copies of the ones not here, by name; an archived copy that got further than a live run of its name stands for
    it."""
    from ddpgx.logs import read_rows

    live = sorted(r for r in live if (r / "eval.csv").is_file())
    if write:
        for r in live:
            archive(r, DATA / study / r.name)
    live = [
        r
        for r in live
        if len(read_rows(DATA / study / r.name / "eval.csv")) <= len(read_rows(r / "eval.csv"))
    ]
    names = {r.name for r in live}
    kept = (
        sorted(p for p in (DATA / study).iterdir() if p.name not in names) if (DATA / study).is_dir() else []
    )
    return sorted(live + kept, key=lambda p: p.name)


def write_block(doc: Path, begin: str, end: str, text: str) -> None:
    """Put ``text`` (which starts with ``begin`` and ends with ``end``) in place of that block of ``doc``, or at its
    end the first time; the rest of the page, written by hand, stays as it is."""
    page = doc.read_text()
    if begin in page:
        head, _, rest = page.partition(begin)
        page = head + text + rest.partition(end)[2]
    else:
        page = page.rstrip() + "\n\n" + text + "\n"
    doc.write_text(page)


def mean_ci(x: np.ndarray, digits: int = 0) -> str:
    """``mean [lo, hi]`` over seeds, the 95% bootstrap CI of the mean as ddpgx report computes it; the mean alone
    for one value, ``-`` for none (NaNs, runs that never got there, are left out)."""
    from ddpgx.report import _mean, bootstrap_ci

    x = x[~np.isnan(x)]
    if not len(x):
        return "-"
    if len(x) < 2:
        return f"{x.mean():.{digits}f}"
    lo, hi = bootstrap_ci([x], _mean)
    return f"{x.mean():.{digits}f} [{lo:.{digits}f}, {hi:.{digits}f}]"
