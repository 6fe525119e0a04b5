"""docs/RESULTS.md from the sweeps in benchmarks/sweeps/, with 95% bootstrap CIs and IQMs across seeds.

    ddpgx sweep benchmarks/sweeps/pendulum.toml     # 3 presets x 5 seeds x 20k steps
    ddpgx sweep benchmarks/sweeps/mujoco.toml       # modern on HalfCheetah-v5 and Hopper-v5, 3 seeds x 200k steps
    python benchmarks/results.py                    # writes docs/RESULTS.md and the curves next to it
    python benchmarks/results.py --gifs             # also records each env's best run as docs/<env>.gif

A sweep stopped half-way is continued by running its command again; this script reports the finished runs.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))  # her_results, beside this file

ROOT = Path(__file__).resolve().parents[1]
SWEEPS = ROOT / "benchmarks" / "out" / "sweeps"
DOCS = ROOT / "docs"

PUBLISHED = {
    "Pendulum-v1": "SB3 rl-zoo DDPG: -152 +- 94 after 20k steps (noise-free eval of one agent)",
    "HalfCheetah-v5": 'TD3 paper Table 1 "OurDDPG": 8577 (best eval, 1M steps, 10 seeds, gym v1); '
    "CleanRL DDPG: 10374 +- 157 (v4, 1M, last-100 train episodes)",
    "Hopper-v5": 'TD3 paper Table 1 "OurDDPG": 1860 (best eval, 1M steps, 10 seeds); CleanRL DDPG: 1577 +- 819 (v4)',
}


def f(x: float) -> str:
    return "-" if x != x else f"{x:.0f}"


GIF_SETTINGS = {  # frame size, keep every n-th frame, steps: GIFs under ~2 MB
    "Pendulum-v1": ((200, 200), 2, 200),
    "HalfCheetah-v5": ((160, 160), 3, 240),
    "Hopper-v5": ((128, 128), 5, 400),
}


def record_best(stats) -> None:
    """Each env's run with the best final eval, recorded noise-free as docs/<env>.gif."""
    from ddpgx.record import record

    for env, (size, every, steps) in GIF_SETTINGS.items():
        scores = [r for s in stats if s.env == env for r in s.scores]
        if scores:
            best = max(scores, key=lambda r: r.final)
            gif = DOCS / f"{env.split('-')[0].lower()}.gif"
            res = record(best.run, gif, max_steps=steps, every=every, size=size, fps=20)
            print(f"{gif}: {best.run.name}, return {res.returns[0]:.1f}, {gif.stat().st_size // 1024} KiB")


def main() -> None:
    from ddpgx.plots import find_runs
    from ddpgx.report import group_stats, plot_curves
    from ddpgx.run import run_status

    stats = []
    for name in ("pendulum", "mujoco"):
        d = SWEEPS / name
        if d.is_dir():
            runs = [r for r in find_runs([d]) if run_status(r) == "finished"]
            stats += group_stats(runs, "eval") if runs else []
    if not stats:
        raise SystemExit(
            f"no finished sweep runs under {SWEEPS}; run the sweeps first (see this file's docstring)"
        )
    if "--gifs" in sys.argv[1:]:
        record_best(stats)
    lines = [
        "# ddpgx learning results",
        "",
        "Where to look first: on the MuJoCo robots the default is `crossq256` (DDPG with CrossQ's critic); its "
        "results and the TD3 recipe's are in [the MuJoCo suite at 300k env steps](#mujoco-suite-at-300k-env-steps), "
        "beside published TD3, DDPG, CrossQ, MR.Q and SimbaV2. The MuJoCo table just below is plain DDPG (`modern`, "
        "the default before the suite) at 200k, kept as the baseline; DDPG + HER on the Fetch arm follows it.",
        "",
        "Produced by `ddpgx sweep benchmarks/sweeps/pendulum.toml`, `ddpgx sweep benchmarks/sweeps/mujoco.toml` and "
        "`python benchmarks/results.py` on the project's 2-core CPU machine (no GPU). Each sweep ran two runs side by "
        "side, one core each (the MuJoCo one while the machine was also used for development), so wall is per run "
        "on one core, not comparable with a single run on both cores. Final = noise-free evaluation "
        "(10 episodes) at the last step; best = best such evaluation during the run. Across seeds: the mean with its "
        "95% percentile-bootstrap CI and the interquartile mean (IQM) with its CI (`ddpgx report`, scipy's "
        "bootstrap). Wall = per run, compile and evaluations included.",
        "",
        "| env | preset | seeds | steps | final eval: mean [95% CI] | IQM [95% CI] | mean best eval | wall / run |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for s in stats:
        lines.append(
            f"| {s.env} | {s.label} | {len(s.seeds)} | {s.steps:,.0f} | {f(s.final_mean)} [{f(s.final_ci[0])}, "
            f"{f(s.final_ci[1])}] | {f(s.iqm)} [{f(s.iqm_ci[0])}, {f(s.iqm_ci[1])}] | {f(s.best_mean)} | "
            + (f"{s.wall_s:.0f} s |" if s.wall_s < 120 else f"{s.wall_s / 60:.0f} min |")
        )
    lines += ["", "Each seed's final eval:", ""]
    for s in stats:
        finals = ", ".join(f"s{r.seed}: {r.final:.0f}" for r in sorted(s.scores, key=lambda r: r.seed))
        lines.append(f"- {s.env} {s.label}: {finals}")
    lines += [
        "",
        "An earlier single run, kept for scale: HalfCheetah-v5 `modern` continued to 1M steps with `ddpgx train "
        "--resume ... --total-steps 1000000` reached a final eval of 10392 (best 10576).",
        "",
        "## Published figures for comparison",
        "",
    ]
    for env, text in PUBLISHED.items():
        lines.append(f"- **{env}**: {text}")
    lines += [
        "",
        "Return definitions differ: the TD3 paper reports the best noise-free evaluation over 1M steps, CleanRL the "
        "mean of the last 100 training episodes, SB3 zoo a noise-free evaluation. The `modern` MuJoCo runs above are "
        "200k steps, "
        "a fifth of those budgets, so they are a floor, not a like-for-like comparison.",
        "",
    ]
    for env in dict.fromkeys(s.env for s in stats):
        slug = env.split("-")[0].lower()
        png = plot_curves([s for s in stats if s.env == env], DOCS / f"{slug}_returns.png", "eval")
        lines += [f"## {env}", "", "Mean eval return and 95% bootstrap CI band across seeds.", "",
                  f"![{env} eval return]({png.name})", ""]  # fmt: skip
        if (DOCS / f"{slug}.gif").exists():
            lines += [f"![{env} policy]({slug}.gif) (the seed with the best final eval, noise-free)", ""]
    lines += her_section("--gifs" in sys.argv[1:])
    from her_results import BEGIN as HARD

    # the hard Fetch tasks' block (benchmarks/her_results.py rewrites it) and the hand-written text after it stay
    text = (DOCS / "RESULTS.md").read_text() if (DOCS / "RESULTS.md").is_file() else ""
    lines += ["", text[text.index(HARD) :].rstrip(), ""] if HARD in text else []
    (DOCS / "RESULTS.md").write_text("\n".join(lines))
    print("\n".join(lines))


HER_OUT = ROOT / "benchmarks" / "out" / "her"


def her_section(gifs: bool) -> list[str]:
    """DDPG + HER on the Fetch tasks: success rates over seeds, curves, the SB3 comparison and a GIF."""

    from ddpgx.plots import find_runs
    from ddpgx.report import group_stats, plot_curves
    from ddpgx.run import run_status

    lines = [
        "## DDPG + HER on the Fetch arm (gymnasium-robotics 1.4.2, MuJoCo 3.11.0)",
        "",
        "`her` preset (see `ddpgx presets`), sparse rewards (-1 until the goal is reached), noise-free evaluation of "
        "20 episodes; success = `info['is_success']` at the episode's end, the eval column is the rate over the 20. "
        "`ddpgx sweep benchmarks/sweeps/fetch.toml` (FetchReach-v4, 3 seeds x 10k steps, eval every 1000) and "
        "`ddpgx sweep benchmarks/sweeps/fetch_push.toml` (FetchPush-v4, 1 seed, eval every 10k).",
        "",
    ]
    runs = []
    for name in ("reach", "push", "push_call"):
        d = HER_OUT / name
        runs += [r for r in find_runs([d]) if (r / "eval.csv").exists()] if d.is_dir() else []
    stats = group_stats(runs, "success") if runs else []  # one call: groups are labelled by what differs
    if not stats:
        return lines + ["(no runs yet)", ""]
    lines += ["| env | seeds | steps | first step with success >= 0.9 (per seed) | final success (per seed) | "
              "status |", "|---|---|---|---|---|---|"]  # fmt: skip
    for s in stats:
        firsts, finals, status = [], [], []
        for r in sorted(s.scores, key=lambda r: r.seed):
            hit = next((int(st) for st, v in zip(r.steps, r.values, strict=True) if v >= 0.9), None)
            firsts.append(f"s{r.seed}: {hit if hit is not None else '-'}")
            finals.append(f"s{r.seed}: {r.final:.2f}")
            status.append("finished" if run_status(r.run) == "finished" else f"at step {r.step}")
        lines.append(f"| {s.env} ({s.label}) | {len(s.seeds)} | {s.steps:,.0f} | {', '.join(firsts)} | {', '.join(finals)} | "
                     f"{', '.join(status)} |")  # fmt: skip
    push = [s for s in stats if s.env.startswith("FetchPush")]
    for s in push:
        for r in s.scores:
            at = {int(st): v for st, v in zip(r.steps, r.values, strict=True)}
            got = [f"{k // 1000}k: {at[k]:.2f}" for k in (200_000, 500_000) if k in at]
            best = max(r.values) if len(r.values) else float("nan")
            lines += ["", f"FetchPush-v4 ({s.label}) seed {r.seed}: success rate " + (", ".join(got) or "(not yet at 200k)")
                      + f"; best so far {best:.2f} (last eval at step {int(r.steps[-1])})."]  # fmt: skip
    lines += [
        "",
        "These FetchPush runs predate the normalizer fix (ddpgx 0.1: no std floor, desired-goal statistics of the "
        "real goals) and use one worker's schedule: they stay at the 0-0.25 a policy reaches when the object starts "
        "near the goal. `--target-update call` (baselines' once-per-cycle targets) alone did not change that. The "
        "cause found since and the runs with the fix and baselines' multi-worker schedule (`her8`) follow below.",
    ]
    png = plot_curves(stats, DOCS / "fetch_success.png", "success")
    lines += ["", f"![Fetch success rate]({png.name})", ""]
    table = ROOT / "benchmarks" / "out" / "her_sb3" / "table.md"
    if table.exists():
        lines += [
            "### FetchReach-v4 side by side with Stable-Baselines3's DDPG + HerReplayBuffer",
            "",
            "`python benchmarks/her_sb3.py`: same networks, learning rates, gamma, tau, batch, replay, k = 4 `future` "
            "goals, Gaussian noise 0.2 and update cycles on both sides; both evaluate 20 noise-free episodes every "
            "500 steps and stop at the first success rate >= 0.9. SB3 cannot express three of the `her` preset's "
            "choices (30% random actions, the action L2 penalty, the target clip) nor observation normalization in "
            "its HER replay, so the middle row is ddpgx with those off: the same algorithm as SB3's. Wall seconds "
            "from the start of training, evaluations included; the three ran back to back per seed while other "
            "benchmark runs shared the machine, so read the wall ratio, not the absolute seconds.",
            "",
            table.read_text().strip(),
            "",
        ]
    from her_results import GIF_ENVS  # the hard tasks' GIFs come from their own runs (her_results.py)

    owned = {env for env, _ in GIF_ENVS}
    best_of: dict[str, Any] = {}  # env -> its best run over every sweep of it here
    for s in stats:
        if s.env not in owned:
            run = max(s.scores, key=lambda r: r.final)
            if s.env not in best_of or run.final > best_of[s.env].final:
                best_of[s.env] = run
    if gifs:
        from ddpgx.record import record

        for env, best in best_of.items():
            slug = env.split("-")[0].lower()
            gif = DOCS / f"{slug}.gif"
            res = record(best.run, gif, max_steps=50, every=1, size=(160, 160), fps=15)
            print(f"{gif}: {best.run.name}, return {res.returns[0]:.1f}, {gif.stat().st_size // 1024} KiB")
    for env in best_of:
        slug = env.split("-")[0].lower()
        if (DOCS / f"{slug}.gif").exists():
            lines += [
                f"![{env} policy]({slug}.gif) ({env}, the seed with the best final success, noise-free)",
                "",
            ]
    return lines


if __name__ == "__main__":
    main()
