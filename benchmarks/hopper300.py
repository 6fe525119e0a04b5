"""docs/STABILITY.md's 300k study on Hopper-v5: which variant keeps hopping, over seeds.

    ddpgx sweep benchmarks/sweeps/hopper300.toml          # modern --obs-norm and td3-paper, seeds 0-2
    ddpgx sweep benchmarks/sweeps/hopper300_crossq.toml   # DDPG with CrossQ's critic (256-wide), seeds 0-2
    python benchmarks/hopper300.py                        # prints the table; --write puts it into STABILITY.md

For every finished run: its final noise-free eval, the mean of its last five, the worst fall after it first passed
1000 (from the highest eval reached so far, in return and as a share of that level: the issue's goal is a fall of
at most 30%), the share of evaluations from then on that stay at or above 1000, and its best policy
(best.msgpack, picked by the 10-episode training evaluations) re-evaluated on 50 fresh episodes beside the figure
it was picked with. Across seeds: mean [95% bootstrap CI] and IQM, ddpgx report's statistics. Runs still under way
are listed with their step.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from archive import DATA, archive, facts, status, study_runs, write_block  # noqa: E402
from stability import PASS, share_above  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SWEEPS = [ROOT / "benchmarks" / "out" / d for d in ("hopper300", "hopper300_crossq")]
DOC = ROOT / "docs" / "STABILITY.md"
BEGIN, END = "<!-- hopper300:begin (benchmarks/hopper300.py --write) -->", "<!-- hopper300:end -->"
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


def main() -> None:
    from ddpgx.report import _mean, bootstrap_ci, iqm, score_run
    from ddpgx.run import load_run_config

    groups: dict[str, list[Path]] = {}
    for r in study_runs([r for sweep in SWEEPS for r in sweep.glob("Hopper-v5__*__s*")], STUDY):
        groups.setdefault(r.name.split("__")[1], []).append(r)
    lines = [
        BEGIN,
        "| variant | seeds done | final eval: mean [95% CI] | IQM | last-5 mean: mean [95% CI] | worst fall after "
        "first 1000 (mean; max) | as share of its peak (max) | evals >= 1000 after first 1000 | best policy, 50 "
        "fresh episodes (picked at) | goal met (last-5 >= 2500, fall <= 30%) | per seed: final / last-5 |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    under_way = []
    for name, runs in groups.items():
        done = [r for r in runs if status(r) == "finished"]
        under_way += [r for r in runs if r not in done and len((r / "eval.csv").read_text().splitlines()) > 1]
        if not done:
            continue
        scores = [score_run(r, load_run_config(r).seed, "eval") for r in done]
        finals = np.array([s.final for s in scores])
        last5 = np.array([np.mean(s.values[-5:]) for s in scores])
        falls = np.array([worst_fall(s.values) for s in scores])
        shares = np.array([share_above(s.values) for s in scores])
        fresh = [fresh_best(r) for r in done]
        met = sum(
            1
            for l5, (_, rel) in zip(last5, falls, strict=True)
            if l5 >= GOAL_LAST5 and rel == rel and rel <= GOAL_FALL
        )

        def ci(x: np.ndarray) -> str:
            if len(x) < 2:
                return "[-, -]"
            lo, hi = bootstrap_ci([x], _mean)
            return f"[{lo:.0f}, {hi:.0f}]"

        reached = ~np.isnan(falls[:, 0])
        fall_txt = f"{falls[reached, 0].mean():.0f}; {falls[reached, 0].max():.0f}" if reached.any() else "-"
        rel_txt = f"{falls[reached, 1].max():.0%}" if reached.any() else "-"
        if 0 < reached.sum() < len(falls):
            fall_txt += f" ({len(falls) - reached.sum()} never at 1000)"
        share_txt = f"{np.nanmean(shares):.0%}" if reached.any() else "-"
        fresh_txt = ", ".join(f"{m:.0f} ({p:.0f} @ {st // 1000}k)" for m, p, st in fresh)
        lines.append(
            f"| {name} | {len(done)} | {finals.mean():.0f} {ci(finals)} | {float(iqm(finals)):.0f} | "
            f"{last5.mean():.0f} {ci(last5)} | {fall_txt} | {rel_txt} | {share_txt} | {fresh_txt} | "
            f"{met} of {len(done)} | "
            + ", ".join(f"s{s.seed}: {s.final:.0f} / {l5:.0f}" for s, l5 in zip(scores, last5, strict=True))
            + " |"
        )
    if under_way:
        lines += ["", "Under way (the sweeps' commands continue them): " + ", ".join(
            f"{r.name} at {score_run(r, 0, 'eval').step // 1000}k" for r in under_way) + "."]  # fmt: skip
    lines.append(END)
    text = "\n".join(lines)
    print(text)
    if "--write" in sys.argv[1:]:
        write_block(DOC, BEGIN, END, text)


if __name__ == "__main__":
    main()
