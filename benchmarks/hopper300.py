"""docs/STABILITY.md's 300k study on Hopper-v5: which variant keeps hopping, over seeds.

    ddpgx sweep benchmarks/sweeps/hopper300.toml          # modern --obs-norm and td3-paper, seeds 0-2
    ddpgx sweep benchmarks/sweeps/hopper300_final.toml    # the same two, seeds 2-4 (screening's seed 2, the final)
    ddpgx sweep benchmarks/sweeps/hopper300_crossq.toml   # DDPG with CrossQ's critic (256-wide), seeds 0-2
    ddpgx sweep benchmarks/sweeps/hopper300_td3obs.toml   # td3-paper with --obs-norm, seeds 0-4
    ddpgx sweep benchmarks/sweeps/hopper300_crossq_final.toml     # crossq-256, seeds 3-4
    ddpgx sweep benchmarks/sweeps/hopper300_td3obs_avg.toml       # td3-paper-obs-norm with --policy-avg, seeds 0-4
    ddpgx sweep benchmarks/sweeps/halfcheetah300_check.toml       # the HalfCheetah check: td3-paper-obs-norm, 3 seeds
    ddpgx sweep benchmarks/sweeps/halfcheetah300_check_crossq.toml    # and crossq-256, 3 seeds
    python benchmarks/hopper300.py     # prints the tables; --write puts them and docs/hopper300.png into STABILITY.md

For every finished run: its final noise-free eval, the mean of its last five, the worst fall after it first passed
1000 (from the highest eval reached so far, in return and as a share of that level: the issue's goal is a fall of
at most 30%), the share of evaluations from then on that stay at or above 1000, and its best policy
(best.msgpack, picked by the 10-episode training evaluations) re-evaluated on 50 fresh episodes beside the figure
it was picked with. Across seeds: mean [95% bootstrap CI] and IQM, ddpgx report's statistics. Runs still under way
are listed with their step.

The averaged policy, paired: `--policy-avg` changes what is evaluated, not how the run trains, so each seed of
td3-paper-obs-norm-avg trained as td3-paper-obs-norm's same seed did (checked row by row on episodes.csv where both
run directories are here, and kept in facts.json): per seed, the goal's two halves for the actor and for its average.

The HalfCheetah check (a stabilizer that hurts HalfCheetah is not a default): the Hopper study's variants on
HalfCheetah-v5 at 300k beside `modern`'s runs of the same budget (halfcheetah300.toml's n1, archived), final eval and
last-5 mean across seeds.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from archive import DATA, archive, facts, mean_ci, status, study_runs, write_block  # noqa: E402
from stability import PASS, share_above  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SWEEPS = [
    ROOT / "benchmarks" / "out" / d
    for d in (
        "hopper300",
        "hopper300_crossq",
        "hopper300_crossq_final",
        "hopper300_td3obs",
        "hopper300_td3obs_avg",
    )
]
AVG_PAIR = ("td3-paper-obs-norm", "td3-paper-obs-norm-avg")  # the actor, and its average in the same runs
AVG_BEGIN, AVG_END = (
    "<!-- hopper300-avg:begin (benchmarks/hopper300.py --write) -->",
    "<!-- hopper300-avg:end -->",
)
CHEETAH_SWEEPS = [
    ROOT / "benchmarks" / "out" / d for d in ("halfcheetah300_check", "halfcheetah300_check_crossq")
]
CHEETAH_STUDY = "halfcheetah_check"
CHEETAH_MODERN = "halfcheetah300/HalfCheetah-v5__n1__s*"  # modern's side: wall_to_score's runs (docs/data)
PLOT = ROOT / "docs" / "hopper300.png"
DOC = ROOT / "docs" / "STABILITY.md"
BEGIN, END = "<!-- hopper300:begin (benchmarks/hopper300.py --write) -->", "<!-- hopper300:end -->"
CHEETAH_BEGIN = "<!-- halfcheetah-check:begin (benchmarks/hopper300.py --write) -->"
CHEETAH_END = "<!-- halfcheetah-check:end -->"
STUDY = "hopper300"  # docs/data/hopper300: each run's eval.csv, config.json and facts, kept in git
FRESH_EPISODES = 50
FRESH_SEED = (
    7_000_000  # episodes no training evaluation saw (those are seeded from the run's seed + 1_000_003)
)
GOAL_LAST5, GOAL_FALL = 2500.0, 0.30


def worst_fall(values: np.ndarray, threshold: float = PASS) -> tuple[float, float]:
    """The largest fall below the highest evaluation so far, after the run first reached ``threshold``: (fall in
    return, fall as a share of that peak); (nan, nan) if it never reached it, (0, 0) if it never fell."""
    hit = np.flatnonzero(values >= threshold)
    if not len(hit):
        return float("nan"), float("nan")
    after = values[hit[0] :]
    peak = np.maximum.accumulate(after)
    falls = peak - after
    i = int(np.argmax(falls))
    return float(falls[i]), float(falls[i] / peak[i]) if falls[i] > 0 else 0.0


def late_dips(values: np.ndarray, k: int = 20) -> tuple[float, int]:
    """The last ``k`` evaluations (the last 100k steps at one per 5k): their median, and how many of them fell more
    than GOAL_FALL below it. A run that holds a level and dips for single evaluations has a high median and few
    dips; one that swings has a low median, or many."""
    last = values[-k:]
    med = float(np.median(last))
    return med, int(np.sum(last < (1 - GOAL_FALL) * med))


def fresh_best(run: Path) -> tuple[float, float, int]:
    """The run's best policy on FRESH_EPISODES new episodes: (mean return, the eval it was picked with, its step).
    Computed once, from the live run's best.msgpack, and kept in its archived facts.json."""
    kept = facts(DATA / STUDY / run.name)
    if "fresh_best" in kept:
        return tuple(kept["fresh_best"])  # type: ignore[return-value]
    import csv
    from functools import partial

    from ddpgx.envs import make_run_env
    from ddpgx.evaluate import Evaluator
    from ddpgx.policy import load_policy

    policy = load_policy(run, which="best")
    ev = Evaluator(partial(make_run_env, policy.config), FRESH_EPISODES, FRESH_SEED)
    returns = ev.run(policy.normalized)
    ev.close()
    evals = {int(r["step"]): float(r["mean_return"]) for r in csv.DictReader(open(run / "eval.csv"))}
    res = (float(np.mean(returns)), evals.get(policy.step, float("nan")), policy.step)
    archive(run, DATA / STUDY / run.name, fresh_best=list(res))
    return res


def finished_scores(runs: list[Path]) -> tuple[list[Path], list]:
    """The finished runs among ``runs`` and their eval curves (ddpgx report's RunScore)."""
    from ddpgx.report import score_run
    from ddpgx.run import load_run_config

    done = [r for r in runs if status(r) == "finished"]
    return done, [score_run(r, load_run_config(r).seed, "eval") for r in done]


def grouped(runs: list[Path]) -> dict[str, list[Path]]:
    """Runs by variant (the middle of ENV__VARIANT__sSEED)."""
    groups: dict[str, list[Path]] = {}
    for r in runs:
        groups.setdefault(r.name.split("__")[1], []).append(r)
    return groups


def variants(groups: dict[str, list[Path]]):
    """Per variant with a finished run: (name, finished runs, their eval curves, finals, last-5 means)."""
    for name, runs in groups.items():
        done, scores = finished_scores(runs)
        if done:
            finals = np.array([s.final for s in scores])
            yield name, done, scores, finals, np.array([np.mean(s.values[-5:]) for s in scores])


def not_finished(groups: dict[str, list[Path]]) -> list[Path]:
    """Runs started (at least one evaluation) but not finished."""
    return [r for runs in groups.values() for r in runs
            if status(r) != "finished" and len((r / "eval.csv").read_text().splitlines()) > 1]  # fmt: skip


def hopper_table(groups: dict[str, list[Path]], summary: list) -> str:
    """The issue's columns, a row per variant, and the runs still under way."""
    from ddpgx.report import iqm, score_run

    lines = [
        BEGIN,
        "| variant | seeds done | final eval: mean [95% CI] | IQM | last-5 mean: mean [95% CI] | worst fall after "
        "first 1000 (mean; max) | as share of its peak (max) | evals >= 1000 after first 1000 | best policy on 50 "
        "fresh episodes: mean [95% CI]: per seed (the eval it was picked with @ step) | last 100k (20 evals): median, "
        "mean over seeds; dips over 30% below it, per seed | goal met (last-5 >= 2500, fall <= 30%) | per seed: final / last-5 |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, done, scores, finals, last5 in summary:
        falls = np.array([worst_fall(s.values) for s in scores])
        shares = np.array([share_above(s.values) for s in scores])
        dips = [late_dips(s.values) for s in scores]
        fresh = [fresh_best(r) for r in done]
        met = sum(goal_met(l5, rel) for l5, (_, rel) in zip(last5, falls, strict=True))
        reached = ~np.isnan(falls[:, 0])
        fall_txt = f"{falls[reached, 0].mean():.0f}; {falls[reached, 0].max():.0f}" if reached.any() else "-"
        rel_txt = f"{falls[reached, 1].max():.0%}" if reached.any() else "-"
        if 0 < reached.sum() < len(falls):
            fall_txt += f" ({len(falls) - reached.sum()} never at 1000)"
        share_txt = f"{np.nanmean(shares):.0%}" if reached.any() else "-"
        fresh_mean = np.array([m for m, _, _ in fresh])
        fresh_txt = f"{mean_ci(fresh_mean)}: " + ", ".join(
            f"{m:.0f} ({p:.0f} @ {st // 1000}k)" for m, p, st in fresh
        )
        lines.append(
            f"| {name} | {len(done)} | {mean_ci(finals)} | {float(iqm(finals)):.0f} | "
            f"{mean_ci(last5)} | {fall_txt} | {rel_txt} | {share_txt} | {fresh_txt} | "
            f"{np.mean([m for m, _ in dips]):.0f}; {', '.join(str(n) for _, n in dips)} | "
            f"{met} of {len(done)} | "
            + ", ".join(f"s{s.seed}: {s.final:.0f} / {l5:.0f}" for s, l5 in zip(scores, last5, strict=True))
            + " |"
        )
    if under_way := not_finished(groups):
        lines += ["", "Under way (the sweeps' commands continue them): " + ", ".join(
            f"{r.name} at {score_run(r, 0, 'eval').step // 1000}k" for r in under_way) + "."]  # fmt: skip
    lines.append(END)
    return "\n".join(lines)


def same_training(run: Path, twin: Path) -> bool | None:
    """Whether ``run`` and ``twin`` trained the same (episodes.csv equal row by row but for the wall clock): computed
    while both run directories are here and kept in ``run``'s facts.json; None where it cannot be told."""
    kept = facts(DATA / STUDY / run.name)
    if "same_training" in kept:
        return kept["same_training"]
    a, b = run / "episodes.csv", twin / "episodes.csv"
    if not (a.is_file() and b.is_file()):
        return None
    rows = lambda p: [ln.rsplit(",", 1)[0] for ln in p.read_text().splitlines()]  # noqa: E731
    same = rows(a) == rows(b)
    archive(run, DATA / STUDY / run.name, same_training=same)
    return same


def goal_met(last5: float, fall_share: float) -> bool:
    """The issue's goal for one seed: last-5 mean >= 2500 and no fall over 30% (a run that never reached 1000: no)."""
    return last5 >= GOAL_LAST5 and fall_share == fall_share and fall_share <= GOAL_FALL


def goal_halves(values: np.ndarray) -> tuple[float, float, float, int]:
    """(last-5 mean, worst fall after first 1000 as a share of its peak, median of the last 20, dips below it)."""
    return (float(np.mean(values[-5:])), worst_fall(values)[1], *late_dips(values))


def avg_table(groups: dict[str, list[Path]], summary: list) -> str:
    """Per seed, the actor's evaluations beside those of its average in the same training (AVG_PAIR)."""
    online, averaged = AVG_PAIR
    by = {
        name: {s.seed: (r, s) for r, s in zip(done, scores, strict=True)}
        for name, done, scores, _, _ in summary
    }
    lines = [
        AVG_BEGIN,
        f"| seed | trained the same bits | {online}: last-5 / worst fall / median last 20 (dips) | {averaged}: "
        "last-5 / worst fall / median last 20 (dips) | goal met: actor, average |",
        "|---|---|---|---|---|",
    ]
    met = [0, 0]
    pairs = sorted(set(by.get(online, {})) & set(by.get(averaged, {})))
    for seed in pairs:
        (r_on, s_on), (r_avg, s_avg) = by[online][seed], by[averaged][seed]
        same = same_training(r_avg, r_on)
        cells, ok = [], []
        for s_ in (s_on, s_avg):
            l5, rel, med, dips = goal_halves(s_.values)
            cells.append(
                f"{l5:.0f} / {rel:.0%} / {med:.0f} ({dips})" if rel == rel else f"{l5:.0f} / - / {med:.0f}"
            )
            ok.append(goal_met(l5, rel))
        met = [m + int(o) for m, o in zip(met, ok, strict=True)]
        same_txt = {True: "yes", False: "no", None: "-"}[same]
        yes = lambda b: "yes" if b else "no"  # noqa: E731
        lines.append(f"| s{seed} | {same_txt} | {cells[0]} | {cells[1]} | {yes(ok[0])}, {yes(ok[1])} |")
    lines.append(f"| all | | | | {met[0]} of {len(pairs)}, {met[1]} of {len(pairs)} |")
    lines.append(AVG_END)
    return "\n".join(lines)


def plot_seeds(summary: list, out: Path) -> None:
    """A panel per variant, every finished seed's eval curve in it: the swings a mean curve would hide."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [(name, scores) for name, _, scores, _, _ in summary]
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.6), sharey=True, squeeze=False)
    for ax, (name, scores) in zip(axes[0], panels, strict=True):
        for s in scores:
            ax.plot(s.steps / 1000, s.values, lw=1.1, color=f"C{s.seed}", label=f"s{s.seed}")
        ax.axhline(PASS, color="grey", lw=0.6, ls=":")
        ax.axhline(GOAL_LAST5, color="grey", lw=0.6, ls="--")
        ax.set(title=f"{name} ({len(scores)} seeds)", xlabel="env steps (k)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="upper left")
    axes[0][0].set_ylabel("noise-free eval return (10 episodes)")
    fig.suptitle("Hopper-v5, 300k steps: every seed (dotted: 1000, dashed: the goal's 2500)", fontsize=10)
    fig.tight_layout()
    fig.savefig(out, dpi=90)
    plt.close(fig)


def cheetah_table() -> str:
    """The HalfCheetah check: each variant run on HalfCheetah-v5 at 300k beside `modern`'s runs of that budget."""
    from ddpgx.report import iqm

    live = [r for sweep in CHEETAH_SWEEPS for r in sweep.glob("HalfCheetah-v5__*__s*")]
    groups = {"modern": sorted(DATA.glob(CHEETAH_MODERN)), **grouped(study_runs(live, CHEETAH_STUDY))}
    lines = [
        CHEETAH_BEGIN,
        "| variant on HalfCheetah-v5, 300k | seeds done | final eval: mean [95% CI] | IQM | last-5 mean: mean "
        "[95% CI] | best eval (mean) | per seed: final / last-5 |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, done, scores, finals, last5 in variants(groups):
        lines.append(
            f"| {name} | {len(done)} | {mean_ci(finals)} | {float(iqm(finals)):.0f} | "
            f"{mean_ci(last5)} | {np.mean([s.values.max() for s in scores]):.0f} | "
            + ", ".join(f"s{s.seed}: {s.final:.0f} / {l5:.0f}" for s, l5 in zip(scores, last5, strict=True))
            + " |"
        )
    if under_way := not_finished(groups):
        lines += ["", "Not finished (the check's sweeps continue them): "
                  + ", ".join(r.name for r in under_way) + "."]  # fmt: skip
    lines.append(CHEETAH_END)
    return "\n".join(lines)


def main() -> None:
    groups = grouped(study_runs([r for sweep in SWEEPS for r in sweep.glob("Hopper-v5__*__s*")], STUDY))
    summary = list(variants(groups))  # each finished run's curve, read once for the table and the plot
    hopper, cheetah, avg = hopper_table(groups, summary), cheetah_table(), avg_table(groups, summary)
    print(hopper, avg, cheetah, sep="\n\n")
    if "--write" in sys.argv[1:]:
        write_block(DOC, BEGIN, END, hopper)
        write_block(DOC, AVG_BEGIN, AVG_END, avg)
        write_block(DOC, CHEETAH_BEGIN, CHEETAH_END, cheetah)
        plot_seeds(summary, PLOT)
        print(f"wrote {DOC} and {PLOT}")


if __name__ == "__main__":
    main()
