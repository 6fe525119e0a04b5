"""InvertedDoublePendulum-v5's fall under `crossq` with 256-256 critics, against the same recipe with batch
renormalization never switched on (benchmarks/sweeps/idp_renorm.toml): per run, how many evaluations held 9000 or
more before and after 105k env steps (where the renorm warmup of the suite's runs ends), and a plot of the curves.

    .venv/bin/python benchmarks/idp_renorm.py            # prints the table, draws docs/idp_renorm.png

Reads the archived copies in docs/data (suite300 and idp_renorm; benchmarks/suite.py and archive.py write them).
"""

from __future__ import annotations

import csv
from pathlib import Path

DOCS = Path(__file__).resolve().parent.parent / "docs"
RUNS = {  # label -> archived run directory
    "crossq-256 s0 (renorm from ~105k)": "suite300/InvertedDoublePendulum-v5__crossq-256__s0",
    "crossq-256 s1 (renorm from ~105k)": "suite300/InvertedDoublePendulum-v5__crossq-256__s1",
    "crossq-256 s2 (renorm from ~105k)": "suite300/InvertedDoublePendulum-v5__crossq-256__s2",
    "crossq-256, renorm never on, s0": "idp_renorm/InvertedDoublePendulum-v5__crossq-256-bn__s0",
    "crossq-256, renorm never on, s1": "idp_renorm/InvertedDoublePendulum-v5__crossq-256-bn__s1",
}
WINDOWS = ((10_000, 105_000), (110_000, 200_000))
HELD = 9000.0


def curve(run: Path) -> list[tuple[int, float]]:
    with open(run / "eval.csv") as f:
        return [(int(r["step"]), float(r["mean_return"])) for r in csv.DictReader(f)]


def main() -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4.6))
    print(f"| run | evals >= {HELD:.0f}, {WINDOWS[0][0] // 1000}-{WINDOWS[0][1] // 1000}k | "
          f"evals >= {HELD:.0f}, {WINDOWS[1][0] // 1000}-{WINDOWS[1][1] // 1000}k | mean, "
          f"{WINDOWS[1][0] // 1000}-{WINDOWS[1][1] // 1000}k | last step |")  # fmt: skip
    print("|---|---|---|---|---|")
    for label, rel in RUNS.items():
        run = DOCS / "data" / rel
        if not (run / "eval.csv").is_file():
            print(f"| {label} | not run yet | | | |")
            continue
        rows = curve(run)
        cells = []
        for lo, hi in WINDOWS:
            w = [v for s, v in rows if lo <= s <= hi]
            cells.append(f"{sum(v >= HELD for v in w)} of {len(w)}" if w else "-")
        late = [v for s, v in rows if WINDOWS[1][0] <= s <= WINDOWS[1][1]]
        mean = f"{sum(late) / len(late):.0f}" if late else "-"
        print(f"| {label} | {cells[0]} | {cells[1]} | {mean} | {rows[-1][0] // 1000}k |")
        ax.plot([s for s, _ in rows], [v for _, v in rows], label=label, lw=1.2,
                ls="-" if "never" in label else "--")  # fmt: skip
    ax.axvline(105_000, color="grey", lw=0.8, ls=":")
    ax.text(106_000, 4500, "renorm switches on\n(suite's runs)", fontsize=8, color="grey")
    ax.set_xlabel("env steps")
    ax.set_ylabel("eval return (10 episodes, noise-free)")
    ax.set_title("InvertedDoublePendulum-v5, crossq with 256-256 critics")
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=2)
    fig.tight_layout()
    out = DOCS / "idp_renorm.png"
    fig.savefig(out, dpi=100)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
