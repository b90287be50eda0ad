"""Calibrate a harder synthetic setting on CE alone (no SMCL run looks at it).

For each candidate setting, CE trains on the background-biased data (rho as given) and on the
same data without background bias (rho = 0: every image on a uniformly drawn background, so
P(own background) = 1/K). The rule, fixed before any run: the chosen setting is the easiest
candidate (in the order listed) whose mean over seeds gives
  - CE few-shot test accuracy <= 30 % at 60 epochs, and
  - the control's few-shot accuracy at least 20 points above CE's.

    .venv/bin/python benchmarks/calibrate_difficulty.py [--seeds 2] [--epochs 60] [--workers 1]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a file: the package `benchmarks` is found from the repository root
    sys.path[0] = str(Path(__file__).resolve().parents[1])

from benchmarks.common import mean_spread_cell, run_jobs, synthetic_trial

# Ordered from the easiest to the hardest.
CANDIDATES: dict[str, dict] = {
    "A rho .95": {"rho": 0.95, "object_scale": 0.8, "object_contrast": 0.5, "texture_scale": 0.75, "noise": 8},
    "B rho .95": {"rho": 0.95, "object_scale": 0.7, "object_contrast": 0.35, "texture_scale": 0.6, "noise": 12},
    "B rho .98": {"rho": 0.98, "object_scale": 0.7, "object_contrast": 0.35, "texture_scale": 0.6, "noise": 12},
    "C rho .98": {"rho": 0.98, "object_scale": 0.6, "object_contrast": 0.3, "texture_scale": 0.5, "noise": 16},
}
CE_FEW_AT_MOST = 0.30
CONTROL_GAIN_AT_LEAST = 0.20


def run_one(job: tuple[str, str, dict, int, int]) -> dict:
    from smcl_tune.config import trial_config_from_dict
    from smcl_tune.trial.run import run_trial

    candidate, arm, synthetic, seed, epochs = job
    started = time.perf_counter()
    result = run_trial(trial_config_from_dict(synthetic_trial({"name": "ce"}, seed, epochs, synthetic)))
    return {
        "candidate": candidate,
        "arm": arm,
        "seed": seed,
        "status": result.status,
        "test": result.test,
        "synthetic": synthetic,
        "seconds": time.perf_counter() - started,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=60)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--candidates", nargs="*", default=list(CANDIDATES))
    parser.add_argument("--output", default="calibrate_difficulty.jsonl")
    arguments = parser.parse_args()
    jobs = []
    for name in arguments.candidates:
        for seed in range(arguments.seeds):
            jobs.append((name, "ce", CANDIDATES[name], seed, arguments.epochs))
            jobs.append((name, "control", {**CANDIDATES[name], "rho": 0.0}, seed, arguments.epochs))
    started = time.perf_counter()
    results = run_jobs(run_one, jobs, arguments.workers, arguments.output)
    print(
        f"difficulty calibration on CE only, 10 classes, IF 100, small CNN, {arguments.epochs} epochs, "
        f"seeds 0..{arguments.seeds - 1}, test accuracy % (mean ± std over seeds), "
        f"{time.perf_counter() - started:.0f} s"
    )
    print(f"{'candidate':<12}{'arm':<9}{'overall':>14}{'many':>14}{'medium':>14}{'few':>14}")
    chosen = None
    for name in arguments.candidates:
        few = {}
        for arm in ("ce", "control"):
            rows = [
                r["test"] for r in results if r["candidate"] == name and r["arm"] == arm and r["status"] == "completed"
            ]
            cells = [mean_spread_cell([row[key] for row in rows]) for key in ("top1", "many", "medium", "few")]
            print(f"{name:<12}{arm:<9}" + "".join(f"{cell:>14}" for cell in cells))
            few[arm] = statistics.mean(row["few"] for row in rows)
        meets = few["ce"] <= CE_FEW_AT_MOST and few["control"] - few["ce"] >= CONTROL_GAIN_AT_LEAST
        print(
            f"{'':<12}{'':<9}CE few {100 * few['ce']:.1f} (<= 30: {few['ce'] <= CE_FEW_AT_MOST}), control gain "
            f"{100 * (few['control'] - few['ce']):+.1f} (>= 20: {few['control'] - few['ce'] >= CONTROL_GAIN_AT_LEAST})"
        )
        if meets and chosen is None:
            chosen = name
    print(
        f"chosen: {chosen or 'none of the candidates meets both conditions'}"
        + (f" {json.dumps(CANDIDATES[chosen])}" if chosen else "")
    )


if __name__ == "__main__":
    main()
