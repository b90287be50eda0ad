"""Background-bias benchmark: CE, the baselines and SMCL variants on the synthetic data.

Same data, model, schedule and seeds for every method (SMCL.md, "Baselines"); prints test
overall / many / medium / few-shot accuracy as mean and spread over seeds, and writes every
trial's result as JSON lines to --output.

    .venv/bin/python benchmarks/background_bias.py [--seeds 3] [--epochs 60] [--workers 2]
"""

from __future__ import annotations

import argparse
import time

from common import mean_spread_cell, run_jobs, synthetic_trial

VARIANTS: dict[str, dict] = {
    "ce": {"name": "ce"},
    "supcon": {"name": "supcon"},
    "mask_only": {"name": "mask_only"},
    "smcl": {"name": "smcl"},
    "smcl mask_source=head": {"name": "smcl", "mask_source": "head"},
    "smcl erase_head": {"name": "smcl", "erase_head": True},
}


def run_one(job: tuple[str, dict, int, int]) -> dict:
    from smcl_tune.train import run_trial

    label, method, seed, epochs = job
    started = time.perf_counter()
    result = run_trial(synthetic_trial(method, seed, epochs))
    return {
        "variant": label,
        "seed": seed,
        "status": result.status,
        "test": result.test,
        "best_epoch": result.best_epoch,
        "seconds": time.perf_counter() - started,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=60)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--variants", nargs="*", default=list(VARIANTS))
    parser.add_argument("--output", default="background_bias.jsonl")
    arguments = parser.parse_args()
    jobs = [
        (label, VARIANTS[label], seed, arguments.epochs)
        for seed in range(arguments.seeds)
        for label in arguments.variants
    ]
    started = time.perf_counter()
    results = run_jobs(run_one, jobs, arguments.workers, arguments.output)
    print(
        f"synthetic background bias, 10 classes, IF 100, rho 0.9, small CNN, {arguments.epochs} epochs, "
        f"seeds 0..{arguments.seeds - 1}, test accuracy % (mean ± std over seeds), "
        f"{time.perf_counter() - started:.0f} s"
    )
    print(f"{'method':<24}{'overall':>14}{'many':>14}{'medium':>14}{'few':>14}")
    for label in arguments.variants:
        rows = [r["test"] for r in results if r["variant"] == label and r["status"] == "completed"]
        if not rows:
            print(f"{label:<24}{'failed':>14}")
            continue
        cells = [mean_spread_cell([row[key] for row in rows]) for key in ("top1", "many", "medium", "few")]
        print(f"{label:<24}" + "".join(f"{cell:>14}" for cell in cells))


if __name__ == "__main__":
    main()
