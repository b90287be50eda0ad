"""benchmarks/paired_differences.py as its docstring runs it: each variant minus the baseline,
seed by seed, from a benchmark's JSON lines."""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _line(variant: str, seed: int, top1: float, status: str = "completed") -> str:
    test = {"top1": top1, "many": top1 + 0.1, "medium": top1, "few": top1 - 0.1, "background_head_share": 0.5}
    return json.dumps({"variant": variant, "seed": seed, "status": status, "test": test})


def test_differences_are_paired_by_seed_and_an_unfinished_run_is_left_out(tmp_path):
    lines = [_line("ce", seed, 0.50 + 0.10 * seed) for seed in range(3)]
    # the variant is 2, 3 and 4 points above CE seed by seed, whatever each seed's level
    lines += [_line("smcl", seed, 0.52 + 0.11 * seed) for seed in range(3)]
    lines += [_line("ce", 3, 0.5), _line("smcl", 3, 0.99, status="failed")]  # a failed run pairs with nothing
    lines.append(_line("ce", 4, 0.1))  # a seed the variant has not run
    results = tmp_path / "runs.jsonl"
    results.write_text("\n".join(lines) + "\n")
    shown = subprocess.run(
        [sys.executable, "benchmarks/paired_differences.py", str(results)], cwd=ROOT, capture_output=True, text=True
    )
    assert shown.returncode == 0, shown.stderr
    row = next(line for line in shown.stdout.splitlines() if line.startswith("smcl"))
    # Δ top-1: mean 3.0, spread 1.0 over 3 seeds: 3.0 ± 4.303 * 1 / sqrt(3)
    assert row.split()[1:4] == ["3.0", "[", "0.5,"] and row.split()[4] == "5.5]", row
    assert row.split()[-1] == "3"


def test_a_file_without_the_baseline_is_one_line_and_exit_2(tmp_path):
    results = tmp_path / "runs.jsonl"
    results.write_text(_line("smcl", 0, 0.5) + "\n")
    shown = subprocess.run(
        [sys.executable, "benchmarks/paired_differences.py", str(results), "--baseline", "smcl random"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert shown.returncode == 2 and shown.stderr.strip().endswith("no completed run of 'smcl random' to pair with")
