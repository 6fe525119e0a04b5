"""docs/RESULTS.md's MuJoCo suite: the two recipes at 300k env steps on seven MuJoCo envs, beside published values.

    PYTHONPATH=~/ddpgx-runner/src MUJOCO_GL=egl .venv/bin/ddpgx sweep benchmarks/sweeps/suite300_crossq.toml \
        --out ~/ddpgx-studies/suite300_crossq --max-parallel 1 --no-live     # and suite300_td3obs.toml likewise
    python benchmarks/suite.py            # prints the section (read only: archives nothing, writes nothing)
    python benchmarks/suite.py --plots [--plot-dir DIR]    # and draws docs/suite_<env>.png (or into DIR)
    python benchmarks/suite.py --write --plots    # archives the live runs, puts the section into docs/RESULTS.md

The recipes: `crossq-256` (`--preset crossq256`, which is `--preset crossq --critic-hidden 256 256`) and
`td3-paper-obs-norm` (`--preset td3-paper --obs-norm`), the Hopper study's best DDPG and TD3 (docs/STABILITY.md).
Their runs: the suite's two sweeps (live under ~/ddpgx-studies/<study>/, archived copies in docs/data/suite300), and
the same recipes measured before on Hopper-v5 (docs/data/hopper300) and HalfCheetah-v5 (docs/data/halfcheetah_check),
which are only read here (benchmarks/hopper300.py keeps them).

Per env and recipe, over the finished runs (status finished and an evaluation at 300k; a run not there is listed
with its step, never averaged in): the final noise-free evaluation (10 episodes at 300k) and the mean of the last five
(275k-300k), each as mean [95% bootstrap CI] (ddpgx report's, scipy's bootstrap), their IQM (scipy's trim_mean), each
seed's final value, and each run's wall time and env steps/s (eval.csv's wall_s at its last row: the run's own clock,
compile included, across resumes). Beside them the published values at 300k (REFERENCES.md's table of means over
10 seeds computed from the published result files); "-" where there is none.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from archive import DATA, archive, facts, mean_ci, status, write_block  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
DOC = DOCS / "RESULTS.md"
BEGIN, END = "<!-- suite:begin (benchmarks/suite.py --write) -->", "<!-- suite:end -->"
STUDIES = Path.home() / "ddpgx-studies"  # the sweeps' run directories, outside the work tree
SUITE = "suite300"  # docs/data/suite300: both recipes' archived runs, told apart by the variant in the name
TOTAL = 300_000
ENVS = [
    "HalfCheetah-v5",
    "Hopper-v5",
    "Walker2d-v5",
    "Ant-v5",
    "Swimmer-v5",
    "InvertedDoublePendulum-v5",
    "Humanoid-v5",
]
RECIPES = {  # name in the runs' names -> (its flags, its sweep: study name and file)
    "crossq-256": ("`--preset crossq256` (`--preset crossq --critic-hidden 256 256`)", "suite300_crossq"),
    "td3-paper-obs-norm": ("`--preset td3-paper --obs-norm`", "suite300_td3obs"),
}
EARLIER = {"Hopper-v5": "hopper300", "HalfCheetah-v5": "halfcheetah_check"}  # docs/data/<study>: read only
# a run of an earlier study started again from 0 (its directory was gone): where its sweep writes, and the command
EARLIER_LIVE = {"halfcheetah_check": ["halfcheetah_check_crossq"]}
RERUN = {
    "HalfCheetah-v5__crossq-256__s2": "PYTHONPATH=~/ddpgx-runner/src MUJOCO_GL=egl .venv/bin/ddpgx sweep "
    "benchmarks/sweeps/halfcheetah300_check_crossq.toml --out ~/ddpgx-studies/halfcheetah_check_crossq "
    "--exclude '*__s0' --exclude '*__s1' --max-parallel 1 --no-live",
}
EARLIER_SWEEPS = {  # (study, recipe) -> the sweep that made those runs (and continues them; hopper300.py archives)
    ("hopper300", "crossq-256"): "hopper300_crossq.toml (seeds 0-2), hopper300_crossq_final.toml (3-4)",
    ("hopper300", "td3-paper-obs-norm"): "hopper300_td3obs.toml",
    ("halfcheetah_check", "crossq-256"): "halfcheetah300_check_crossq.toml",
    ("halfcheetah_check", "td3-paper-obs-norm"): "halfcheetah300_check.toml",
}
EXISTING_GIFS = {"Hopper-v5": "hopper_best.gif", "HalfCheetah-v5": "halfcheetah.gif"}  # their studies' GIFs
# the suite's GIFs in docs/, each the policy of the run named (add one when `ddpgx record` has drawn it: note())
SUITE_GIFS = {
    "Walker2d-v5": ("suite_walker2d.gif", "crossq-256 s1 at 300k"),
    "Ant-v5": ("suite_ant.gif", "crossq-256 s0 at 300k"),
    "Swimmer-v5": ("suite_swimmer.gif", "crossq-256 s0 at 300k"),
    "Humanoid-v5": ("suite_humanoid.gif", "crossq-256 s0 at 300k"),
    "InvertedDoublePendulum-v5": (
        "suite_inverteddoublependulum.gif",
        "crossq-256 s0's best policy (its evaluation at 15k; the run fell to about 100 after 140k)",
    ),
}
# Means over 10 seeds of the noise-free evaluation at exactly 300k, computed from each source's published result
# files: HalfCheetah to Ant as /work/shared/REFERENCES.md's "At 300k steps across the MuJoCo suite" gives them;
# Swimmer, InvertedDoublePendulum and Humanoid read from the same files the same way (the four envs above reproduced
# to the digit first), the files and caveats in SOURCES. No value in a source -> "-".
PUBLISHED = [  # (method, source, env version, seeds, {env: return at 300k}, marker)
    ("TD3", "sfujim/TD3 learning_curves", "v1", 10,
     {"HalfCheetah-v5": 7697, "Hopper-v5": 2410, "Walker2d-v5": 3335, "Ant-v5": 1953,
      "InvertedDoublePendulum-v5": 8440}, "v"),
    ("DDPG", "Tianshou benchmark CSVs", "v3; IDP v2", 10,
     {"HalfCheetah-v5": 9137, "Hopper-v5": 1241, "Walker2d-v5": 175, "Ant-v5": -363,
      "Swimmer-v5": 124, "InvertedDoublePendulum-v5": 8293, "Humanoid-v5": 108}, "X"),
    ("CrossQ", "SimbaV2 repo results/baseline", "v4", 10,
     {"HalfCheetah-v5": 10012, "Hopper-v5": 2644, "Walker2d-v5": 5941, "Ant-v5": 5712, "Humanoid-v5": 9039}, "s"),
    ("MR.Q", "facebookresearch/MRQ", "v4", 10,
     {"HalfCheetah-v5": 10835, "Hopper-v5": 2469, "Walker2d-v5": 4509, "Ant-v5": 4674, "Humanoid-v5": 4997}, "D"),
    ("SimbaV2, UTD 2", "dojeon-ai/SimbaV2 results", "v4", 10,
     {"HalfCheetah-v5": 9892, "Hopper-v5": 3502, "Walker2d-v5": 5499, "Ant-v5": 6200, "Humanoid-v5": 7012}, "^"),
]  # fmt: skip
SOURCES = [  # where each published value is read, and what to know about it (printed under the table)
    "TD3: sfujim/TD3 at 34770cc, `learning_curves/<Env>/TD3_<Env>-v1_{0..9}.npy`, evaluations every 5k (index 0 "
    "untrained), index 60; no Swimmer or Humanoid there. Its InvertedDoublePendulum at 300k (8440) sits on one seed's "
    "single-evaluation dip to 1400: 9233 at 295k, 9235 at 305k.",
    "DDPG: thu-ml/tianshou at beab227 (the CSVs were deleted in the next commit), "
    "`examples/mujoco/benchmark/<Env>/ddpg/test_rew_10seeds.csv`, the row at env_step 300000, mean of the 10 seed "
    "columns; Swimmer-v3, InvertedDoublePendulum-v2, Humanoid-v3. One InvertedDoublePendulum seed never learned "
    "(28 at 300k; the other nine 9200-9224, whose mean is 9211); Humanoid is a failure (its best at 1M: 177).",
    "CrossQ and SimbaV2: dojeon-ai/SimbaV2 at 14fafb2, `results/baseline/crossq.csv` and `results/simbaV2_utd2.csv`, "
    "metric avg_return at env_step 300000 (v4 envs; no Swimmer or InvertedDoublePendulum). CrossQ evaluates every 2k "
    "and its Humanoid mean swings between evaluations (6465 at 290k, 9039 at 300k, 6987 at 304k; 8290 over "
    "290k-310k); SimbaV2's Humanoid is evaluated every 50k (5900 at 250k, 7908 at 350k).",
    "MR.Q: facebookresearch/MRQ at 8a44a7d, `results/gym_results.txt`, block Gym-<Env>-v4, the row at 300000 (seeds "
    "0-9); no Swimmer or InvertedDoublePendulum. Its Humanoid seeds spread from 1495 to 7281.",
]
MACHINE = (
    "2-core VMs (not all the same machine: their speeds differ up to 4x), each run sharing its machine with other "
    "work (often a second run or a study), so the wall times and env steps/s are rough"
)


@dataclass
class Run:
    path: Path
    env: str
    recipe: str
    seed: int
    status: str
    step: int  # the last env step its logs (or facts.json) record
    steps: np.ndarray  # its evaluations
    values: np.ndarray
    wall_s: float  # eval.csv's wall_s at the last row
    where: str  # "live" or the docs/data study it was read from
    rerun_at: int | None = (
        None  # an archived copy shown in place of a live run that started again: the new one's step
    )

    @property
    def finished(self) -> bool:
        return self.status == "finished" and len(self.steps) > 0 and int(self.steps[-1]) == TOTAL

    @property
    def final(self) -> float:
        return float(self.values[-1])

    @property
    def last5(self) -> float:
        return float(np.mean(self.values[-5:]))


def read_run(path: Path, where: str) -> Run:
    from ddpgx.logs import read_rows

    env, recipe, seed = path.name.split("__")
    ev = read_rows(path / "eval.csv")
    logged = [int(float(r["step"])) for name in ("eval.csv", "episodes.csv") for r in read_rows(path / name)]
    return Run(
        path, env, recipe, int(seed.removeprefix("s")), status(path),
        max([*logged, int(facts(path).get("step", 0))], default=0),
        np.array([float(r["step"]) for r in ev]), np.array([float(r["mean_return"]) for r in ev]),
        float(ev[-1]["wall_s"]) if ev else float("nan"), where,
    )  # fmt: skip


def merged_runs(
    live_dirs: list[Path], data: Path, where: str, write: bool, names: str = "*__*__s*"
) -> list[Run]:
    """The runs named ``names`` in ``live_dirs`` (run directories on this machine) and in ``data`` (their archived
    copies, ``where`` their label): each live run, or its archived copy where that is further along (a run whose
    machine is gone and that a sweep started again: the copy stays until the new run catches up) or where there is
    no live one. With ``write``, each live run that is at least as far as its copy is archived."""
    live = {
        r.name: read_run(r, "live")
        for d in live_dirs
        for r in sorted(d.glob(names))
        if (r / "config.json").is_file() and r.name.split("__")[1] in RECIPES
    }
    kept = {p.name: read_run(p, where) for p in sorted(data.glob(names)) if (p / "eval.csv").is_file()}
    runs = {}
    for name in sorted(live.keys() | kept.keys()):
        now, copy = live.get(name), kept.get(name)
        if now is not None and (copy is None or now.step >= copy.step):
            if write and (now.path / "eval.csv").is_file():
                archive(now.path, data / name)
            runs[name] = now
        else:
            runs[name] = copy
            if now is not None:
                copy.rerun_at = now.step
    return list(runs.values())


def suite_runs(studies: Path, data: Path, write: bool) -> list[Run]:
    """The suite's runs: its two sweeps' run directories under ``studies`` and their copies in ``data``."""
    return merged_runs([studies / study for _, study in RECIPES.values()], data, SUITE, write)


def earlier_runs(studies: Path, write: bool) -> list[Run]:
    """The two recipes' runs on Hopper-v5 and HalfCheetah-v5 from the studies before the suite (docs/data), each
    replaced by a live run of the same name where one is further along (EARLIER_LIVE: a run whose directory is gone,
    started again by its sweep into ~/ddpgx-studies); with ``write`` such a live run is archived in place of its copy."""
    return [
        run
        for env, study in EARLIER.items()
        for recipe in RECIPES
        for run in merged_runs(
            [studies / d for d in EARLIER_LIVE.get(study, [])],
            DATA / study,
            study,
            write,
            f"{env}__{recipe}__s*",
        )
    ]


def slug(env: str) -> str:
    return env.split("-v")[0].lower()


def cell_runs(runs: list[Run], env: str, recipe: str) -> tuple[list[Run], list[Run]]:
    """(finished, not finished) runs of one env and recipe, by seed."""
    mine = sorted((r for r in runs if r.env == env and r.recipe == recipe), key=lambda r: r.seed)
    return [r for r in mine if r.finished], [r for r in mine if not r.finished]


def results_table(runs: list[Run]) -> list[str]:
    from ddpgx.report import iqm

    lines = [
        "| env | recipe | seeds finished | final eval at 300k: mean [95% CI] | IQM of finals | last-5 evals: mean "
        "[95% CI] | per seed: final / last-5 | per seed: best eval (its step) | wall per run, min | env steps/s per "
        "run | runs from |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for env in ENVS:
        for recipe in RECIPES:
            done, _ = cell_runs(runs, env, recipe)
            if not done:
                lines.append(f"| {env} | {recipe} | 0 | - | - | - | - | - | - | - | - |")
                continue
            finals = np.array([r.final for r in done])
            last5 = np.array([r.last5 for r in done])
            wheres = sorted(
                {f"docs/data/{r.where}" if r.where != "live" else f"docs/data/{SUITE} (live)" for r in done}
            )
            lines.append(
                f"| {env} | {recipe} | {len(done)} | {mean_ci(finals)} | {float(iqm(finals)):.0f} | "
                f"{mean_ci(last5)} | {', '.join(f's{r.seed}: {r.final:.0f} / {r.last5:.0f}' for r in done)} | "
                f"{', '.join(f's{r.seed}: {r.values.max():.0f} ({r.steps[r.values.argmax()] / 1000:.0f}k)' for r in done)} | "
                f"{', '.join(f'{r.wall_s / 60:.0f}' for r in done)} | "
                f"{', '.join(f'{r.steps[-1] / r.wall_s:.0f}' for r in done)} | {', '.join(wheres)} |"
            )
    return lines


def published_table(runs: list[Run]) -> list[str]:
    heads = [f"{m} ({src}, {ver}, {n} seeds)" for m, src, ver, n, _, _ in PUBLISHED]
    lines = [
        "| env | ddpgx crossq-256 (v5): final, mean | ddpgx td3-paper-obs-norm (v5): final, mean | "
        + " | ".join(heads)
        + " |",
        "|---|---|---|" + "---|" * len(PUBLISHED),
    ]
    for env in ENVS:
        ours = []
        for recipe in RECIPES:
            done, _ = cell_runs(runs, env, recipe)
            ours.append(f"{np.mean([r.final for r in done]):.0f} ({len(done)})" if done else "-")
        theirs = [str(vals[env]) if env in vals else "-" for _, _, _, _, vals, _ in PUBLISHED]
        lines.append(f"| {env} | {' | '.join(ours)} | {' | '.join(theirs)} |")
    return lines


def not_finished_line(runs: list[Run]) -> list[str]:
    out = []
    for env in ENVS:
        for recipe in RECIPES:
            for r in cell_runs(runs, env, recipe)[1]:
                if r.where == "live":
                    where = "live run: running or paused"
                else:
                    where = f"docs/data/{r.where}; its run directory is not on this machine"
                    if r.rerun_at is not None:
                        where += f", the sweep started it again: the new run is at {r.rerun_at // 1000}k"
                out.append(f"{r.path.name} at step {r.step // 1000}k ({where})")
    return ["", "Not finished (never averaged in): " + "; ".join(out) + "."] if out else []


def sweep_names(study: str, excluded: bool = True) -> list[str]:
    """The run names a suite sweep makes, in its order (seed-major); with ``excluded=False`` without the runs its
    ``exclude`` list keeps from running (finished on an earlier machine, archived)."""
    from fnmatch import fnmatchcase

    from ddpgx.grid import load_toml

    spec = load_toml(ROOT / "benchmarks" / "sweeps" / f"{study}.toml")
    names = [f"{env}__{v['name']}__s{seed}" for seed in spec.seeds for env in spec.env for v in spec.variant]
    if excluded:
        return names
    return [n for n in names if not any(fnmatchcase(n, pat) for pat in spec.exclude)]


def missing(runs: list[Run]) -> dict[str, list[str]]:
    """Per suite sweep: its runs not finished, in the sweep's order, with the step of those started."""
    by = {r.path.name: r for r in runs}
    out = {}
    for _, study in RECIPES.values():
        out[study] = [
            name if name not in by else f"{name} (at {by[name].step // 1000}k)"
            for name in sweep_names(study)
            if name not in by or not by[name].finished
        ]
    return out


def progress(runs: list[Run]) -> str:
    """'N of M runs' of the plan (3 seeds per env and recipe, Hopper-v5 5), with the recipes' counts."""
    per = {recipe: sum(len(cell_runs(runs, env, recipe)[0]) for env in ENVS) for recipe in RECIPES}
    plan = sum(5 if env == "Hopper-v5" else 3 for env in ENVS)
    return (
        f"{sum(per.values())} of {plan * len(RECIPES)} runs ("
        + ", ".join(f"{recipe} {n} of {plan}" for recipe, n in per.items())
        + ")"
    )


def section(runs: list[Run], plots: list[str]) -> str:
    recipes = "; ".join(f"`{name}` = {flags}" for name, (flags, _) in RECIPES.items())
    lines = [
        BEGIN,
        "## MuJoCo suite at 300k env steps",
        "",
        f"The two recipes ({recipes}) on seven MuJoCo envs (gymnasium v5), 300k env steps, a noise-free evaluation "
        "of 10 episodes every 5k steps; planned: 3 seeds per env and recipe (Hopper-v5: 5). "
        f"**Finished so far: {progress(runs)}**; a row with fewer seeds is what has finished, not the plan. Final: the evaluation at 300k; last-5: the mean "
        "of the last five (275k-300k). Across the finished seeds: mean [95% bootstrap CI] and IQM, as `ddpgx report` "
        "computes them (one seed: its value alone). Hopper-v5 and HalfCheetah-v5 are the runs of docs/STABILITY.md's "
        "studies (docs/data/hopper300, docs/data/halfcheetah_check); the other envs are the suite's sweeps "
        "(`benchmarks/sweeps/suite300_*.toml`, archived in docs/data/suite300).",
        "",
        *results_table(runs),
        "",
        f"Machine: {MACHINE}.",
        "",
        "Published values at 300k env steps beside the final evaluations here (the mean over finished seeds, their "
        "number in brackets). Theirs: means over 10 seeds of a noise-free evaluation at 300k, computed from each "
        "source's published result files, on older MuJoCo env versions (v1, v3, v4; the v5 envs here differ in "
        "details); `-`: no published value at hand.",
        "",
        *published_table(runs),
        "",
        "Where each published value comes from (10 seeds each, a noise-free evaluation at exactly 300k):",
        "",
        *(f"- {line}" for line in SOURCES),
        *not_finished_line(runs),
    ]
    if plots:
        lines += ["", " ".join(f"![{env}: eval return against env steps]({png})" for env, png in plots)]
    gifs = [(env, *SUITE_GIFS[env]) for env in ENVS if env in SUITE_GIFS]
    if gifs:
        lines += [
            "",
            "The learned policies (noise-free, 300 steps, every 3rd frame), from the seeds finished so far: "
            + "; ".join(f"{env}: {what}" for env, _, what in gifs)
            + " (no `crossq-256` GIF yet for Hopper-v5 and HalfCheetah-v5: their studies' run directories are gone).",
            "",
            " ".join(f"![{env}: {what}]({gif})" for env, gif, what in gifs),
        ]
    lines.append(END)
    return "\n".join(lines)


def plot_env(env: str, runs: list[Run], out: Path) -> None:
    """Eval return against env steps: per recipe the mean of its finished seeds with a 95% bootstrap CI band (one
    seed: that seed alone), each unfinished run dotted, the published values at 300k as markers."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ddpgx.plots import ci_band, common_grid, style_step_axis

    fig, ax = plt.subplots(figsize=(7.0, 6.2), layout="constrained")
    for i, recipe in enumerate(RECIPES):
        color = f"C{i}"
        done, under_way = cell_runs(runs, env, recipe)
        if done:
            grid, ys = common_grid([(r.steps, r.values) for r in done], exact=True)
            band = ci_band(ys)
            if band is None:
                label = f"{recipe}: 1 seed (s{done[0].seed})"
            else:
                label = f"{recipe}: mean of {len(done)} seeds, band: 95% CI across seeds"
                ax.fill_between(grid, band[0], band[1], color=color, alpha=0.2, lw=0)
            ax.plot(grid, ys.mean(0), "o-", ms=2.5, lw=1.4, color=color, label=label)
        for r in under_way:
            if len(r.steps):
                ax.plot(r.steps, r.values, ":", lw=1.1, color=color,
                        label=f"{recipe} s{r.seed}, unfinished (at {r.step // 1000}k)")  # fmt: skip
    for j, (method, src, ver, n, vals, marker) in enumerate(PUBLISHED):
        if env in vals:
            ax.plot(TOTAL + (j - 2) * 3000, vals[env], marker, ms=7, color=f"C{j + 2}", mfc="none", ls="none",
                    label=f"{method} at 300k: {vals[env]} ({src}, {ver}, {n} seeds)")  # fmt: skip
    style_step_axis(ax)
    ax.set_xlim(0, TOTAL * 1.05)
    ax.set_xlabel("env steps")
    ax.set_ylabel("noise-free eval return (10 episodes)")
    ax.set_title(f"{env}, 300k env steps: eval return (ddpgx)", fontsize=10)
    ax.grid(alpha=0.3)
    fig.legend(loc="outside lower center", ncols=1, fontsize=7, frameon=False)  # never on the data
    fig.savefig(out, dpi=100)
    plt.close(fig)


def note(runs: list[Run]) -> str:
    """For the person running the study (printed, not written to the page): how to continue it, what is missing,
    and the commands that record each env's best finished seed."""
    lines = ["", "--- not part of the page ---", "Continue the sweeps (each command continues its own):"]
    by = {r.path.name: r for r in runs}
    for study, names in missing(runs).items():
        lines += [
            f"  PYTHONPATH=~/ddpgx-runner/src MUJOCO_GL=egl .venv/bin/ddpgx sweep benchmarks/sweeps/{study}.toml "
            f"--out ~/ddpgx-studies/{study} --max-parallel 1 --no-live",
            f"    not finished ({len(names)}): " + (", ".join(names) or "none"),
        ]
        kept = [n for n in sweep_names(study) if n in by and by[n].finished and by[n].where != "live"]
        runs_again = set(sweep_names(study, excluded=False))
        again, excluded = [n for n in kept if n in runs_again], [n for n in kept if n not in runs_again]
        if again:
            lines.append(
                f"    finished, kept only in docs/data/{SUITE} (their run directories are gone, so the sweep runs "
                f"them again; a new run replaces the copy in the table once it reaches 300k): {', '.join(again)}"
            )
        if excluded:
            lines.append(
                f"    finished on an earlier machine, kept in docs/data/{SUITE} (the sweep's exclude list keeps them "
                f"from running again): {', '.join(excluded)}"
            )
    earlier = [r for r in runs if r.env in EARLIER and not r.finished]
    for r in sorted(earlier, key=lambda r: r.path.name):
        name = r.path.name
        if r.where == "live":
            lines.append(
                f"  {name}: live run at {r.step // 1000}k, continue it with: {RERUN.get(name, '(its sweep)')}"
            )
        elif name in RERUN:
            lines.append(
                f"  {name} (docs/data/{r.where}) stopped at {r.step // 1000}k; its directory is gone, so it runs "
                f"again from 0: {RERUN[name]}"
            )
        else:
            lines.append(
                f"  {name} (docs/data/{r.where}) stopped at {r.step // 1000}k; its sweep: benchmarks/sweeps/"
                f"{EARLIER_SWEEPS[r.where, r.recipe]} (its run directory is gone: a new run would start from 0)"
            )
    lines.append("GIFs of each env's best finished seed (highest last-5 mean; needs the live run directory):")
    for env in ENVS:
        if env in EXISTING_GIFS or env in SUITE_GIFS:
            if env in SUITE_GIFS:
                gif, what = SUITE_GIFS[env]
                lines.append(
                    f"  {env}: docs/{gif} exists ({what}; record the best seed again once all are in)"
                )
            else:
                lines.append(f"  {env}: docs/{EXISTING_GIFS[env]} exists (its study's GIF)")
            continue
        done = [r for recipe in RECIPES for r in cell_runs(runs, env, recipe)[0]]
        here = [r for r in done if r.where == "live"]
        if here:
            best = max(here, key=lambda r: r.last5)
            lines.append(
                f"  MUJOCO_GL=egl .venv/bin/ddpgx record {best.path} --out docs/suite_{slug(env)}.gif "
                "--max-steps 300 --every 3"
                f"    # {best.recipe} s{best.seed}, last-5 {best.last5:.0f}; then add it to SUITE_GIFS"
            )
        elif done:
            lines.append(f"  {env}: finished runs only as archived copies (no policy on this machine)")
        else:
            lines.append(f"  {env}: no finished run yet")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument(
        "--write", action="store_true", help="archive the live runs and write the section into --doc"
    )
    p.add_argument("--plots", action="store_true", help="draw suite_<env>.png for each env with a run")
    p.add_argument("--plot-dir", type=Path, default=DOCS, help="where --plots writes (default: docs/)")
    p.add_argument("--studies", type=Path, default=STUDIES, help="the sweeps' run directories' parent")
    p.add_argument("--data-dir", type=Path, default=DATA / SUITE,
                   help="the suite's archive: read, and with --write written (default: docs/data/suite300)")  # fmt: skip
    p.add_argument("--doc", type=Path, default=DOC, help="the page --write writes (default: docs/RESULTS.md)")
    a = p.parse_args()
    runs = suite_runs(a.studies, a.data_dir, a.write) + earlier_runs(a.studies, a.write)
    with_runs = [env for env in ENVS if any(r.env == env and len(r.steps) for r in runs)]
    plots = [(env, f"suite_{slug(env)}.png") for env in with_runs]
    if a.plots:
        a.plot_dir.mkdir(parents=True, exist_ok=True)
        for env, png in plots:
            plot_env(env, runs, a.plot_dir / png)
            print(f"wrote {a.plot_dir / png}", file=sys.stderr)
    text = section(runs, plots)
    print(text)
    print(note(runs))
    if a.write:
        absent = [png for _, png in plots if not (a.doc.parent / png).is_file()]
        if absent:
            print(
                f"warning: the section links {', '.join(absent)}, not in {a.doc.parent}: add --plots",
                file=sys.stderr,
            )
        write_block(a.doc, BEGIN, END, text)
        print(f"wrote {a.doc}; archived the live runs in {a.data_dir}", file=sys.stderr)


if __name__ == "__main__":
    main()
