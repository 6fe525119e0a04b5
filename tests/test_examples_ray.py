"""The examples that start Ray (the sweep example and the tour notebook, which runs a sweep): in the test group that
runs Ray's tests one after another (tests/conftest.py's RAY_MODULES); the other examples run in test_examples.py."""

from __future__ import annotations

import csv
import json
import math

import pytest
from test_examples import EXAMPLES, ROOT, STEPS, core_locks, eval_rows, run_example


@pytest.mark.slow
def test_sweep_report_runs_two_seeds_and_reports_them(tmp_path):
    out = run_example("sweep_report", tmp_path / "ex", STEPS, env=core_locks(tmp_path))
    runs = tmp_path / "ex" / "runs"
    names = sorted(p.name for p in runs.iterdir() if p.is_dir())
    assert names == ["Pendulum-v1__pendulum__s0", "Pendulum-v1__pendulum__s1"]
    for name in names:
        assert (runs / name / "final.msgpack").is_file()
        assert int(eval_rows(runs / name)[-1]["step"]) == STEPS
    report = tmp_path / "ex" / "report.md"
    assert report.is_file() and report.with_suffix(".png").is_file(), out
    assert "| pendulum | 2 |" in report.read_text(), report.read_text()
    with open(report.with_suffix(".csv")) as f:
        (row,) = list(csv.DictReader(f))
    assert row["n_seeds"] == "2" and row["seeds"] == "0 1" and math.isfinite(float(row["final_mean"])), row
    assert f"report: {report}" in out, out


def test_tour_notebook_is_valid_nbformat_4_without_outputs():
    nb = json.loads((EXAMPLES / "tour.ipynb").read_text())
    try:
        import nbformat
    except ModuleNotFoundError:
        nbformat = None
    if nbformat is not None:
        nbformat.validate(nbformat.reads(json.dumps(nb), as_version=4))
    assert nb["nbformat"] == 4 and isinstance(nb["metadata"], dict)
    kinds = [c["cell_type"] for c in nb["cells"]]
    assert set(kinds) == {"markdown", "code"} and kinds[0] == "markdown", kinds
    for cell in nb["cells"]:
        assert isinstance(cell["source"], list) and all(isinstance(s, str) for s in cell["source"])
        if cell["cell_type"] == "code":
            assert cell["outputs"] == [] and cell["execution_count"] is None, "no outputs stored"
            compile("".join(cell["source"]), "tour.ipynb", "exec")
    first = "".join(next(c for c in nb["cells"] if c["cell_type"] == "code")["source"])
    assert first.startswith("STEPS = "), first


@pytest.mark.slow
def test_tour_notebook_runs_its_cells_in_order(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(ROOT))
    monkeypatch.setenv("DDPGX_CORE_LOCKS", core_locks(tmp_path)["DDPGX_CORE_LOCKS"])
    nb = json.loads((EXAMPLES / "tour.ipynb").read_text())
    namespace: dict = {"__name__": "__main__"}
    for i, cell in enumerate(c for c in nb["cells"] if c["cell_type"] == "code"):
        exec(compile("".join(cell["source"]), f"tour.ipynb cell {i}", "exec"), namespace)
        if i == 0:
            namespace["STEPS"] = STEPS
    out = capsys.readouterr().out
    tour = tmp_path / "runs" / "examples" / "tour"
    for run in ("pendulum", "own_env"):
        assert int(eval_rows(tour / run)[-1]["step"]) == STEPS, run
    assert int(eval_rows(tour / "her_goal")[-1]["step"]) <= STEPS  # StopOnReward may end it at success 1.0
    assert "the loaded policy gives the same action: True" in out, out
    assert [r.status for r in namespace["result"].runs] == ["done", "done"]
    assert "| pendulum | 2 |" in (tour / "sweep" / "report.md").read_text()
