"""Each variant's paired difference to CE (or to `--baseline`), seed by seed, per shot group, from a benchmark's JSON
lines (background_bias.py, real_cifar10_lt.py): mean [95% interval] in points of test accuracy,
with the variant's background head share beside it. Pairing by seed removes what the seed does to
both (the data order, the initial weights), so the interval is that of the method's effect.

    python benchmarks/paired_differences.py docs/results/background_bias_hard_erase.jsonl
    python benchmarks/paired_differences.py docs/results/real_cifar10_lt_erase.jsonl --baseline "smcl random"
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a file: the package `benchmarks` is found from the repository root
    sys.path[0] = str(Path(__file__).resolve().parents[1])

from benchmarks.common import interval_cell

GROUPS = ("top1", "many", "medium", "few")


def completed_runs(lines: list[str]) -> dict[str, dict[int, dict]]:
    """variant -> seed -> its test metrics; the last line of a (variant, seed) wins, as the benchmarks resume."""
    runs: dict[str, dict[int, dict]] = {}
    for line in lines:
        if not line.strip():
            continue
        row = json.loads(line)
        if row.get("status") == "completed":
            runs.setdefault(row["variant"], {})[row["seed"]] = row["test"]
    return runs


def paired_rows(runs: dict[str, dict[int, dict]], against: str, variants: list[str] | None = None) -> list[list[str]]:
    baseline = runs[against]
    rows = []
    for variant in variants or [name for name in runs if name != against]:
        seeds = sorted(set(runs.get(variant, {})) & set(baseline))
        if not seeds:
            continue
        cells = [interval_cell([runs[variant][s][g] - baseline[s][g] for s in seeds]) for g in GROUPS]
        share = interval_cell([runs[variant][s].get("background_head_share", math.nan) for s in seeds])
        ce_share = interval_cell([baseline[s].get("background_head_share", math.nan) for s in seeds])
        rows.append([variant, *cells, share, ce_share, str(len(seeds))])
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("jsonl", type=Path)
    parser.add_argument("--variants", nargs="*", help="the variants to show (default: all but the baseline)")
    parser.add_argument("--baseline", default="ce", help="the variant to subtract (default: ce)")
    arguments = parser.parse_args(argv)
    runs = completed_runs(arguments.jsonl.read_text().splitlines())
    against = arguments.baseline
    if against not in runs:
        print(f"{arguments.jsonl}: no completed run of {against!r} to pair with", file=sys.stderr)
        return 2
    print(
        f"{arguments.jsonl.name}: variant minus {against}, paired by seed, test accuracy in points "
        "(mean [95% interval, Student t]; the mean alone under 3 seeds); bg→many: the share of "
        f"test images with their object erased predicted as a many-shot class, the variant's and {against}'s"
    )
    header = ["variant", "Δ top-1", "Δ many", "Δ medium", "Δ few", "bg→many", f"{against} bg→many", "seeds"]
    rows = [header, *paired_rows(runs, against, arguments.variants)]
    widths = [max(len(row[column]) for row in rows) for column in range(len(header))]
    for row in rows:
        print(
            "  ".join(
                cell.rjust(width) if column else cell.ljust(width)
                for column, (cell, width) in enumerate(zip(row, widths))
            )
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
