"""Background-bias benchmark: CE, the baselines and SMCL variants on the synthetic data.

Same data, model, schedule and seeds for every method (SMCL.md, "Baselines"); prints test
overall / many / medium / few-shot accuracy as mean and spread over seeds, and writes every
trial's result as JSON lines to --output.

    .venv/bin/python benchmarks/background_bias.py [--seeds 3] [--epochs 60] [--workers 2]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

VARIANTS: dict[str, dict] = {
    "ce": {"name": "ce"},
    "supcon": {"name": "supcon"},
    "mask_only": {"name": "mask_only"},
    "smcl": {"name": "smcl"},
    "smcl mask_source=head": {"name": "smcl", "mask_source": "head"},
    "smcl erase_head": {"name": "smcl", "erase_head": True},
}


def trial_config(method: dict, seed: int, epochs: int, synthetic: dict | None = None) -> dict:
    """The prototype's setup (SMCL.md): 10 classes, 32x32, IF 100, 4-layer CNN, one-cycle lr 0.05.

    synthetic: generator fields that replace the default ones (rho, object_contrast, ...).
    """
    return {
        "data": {"source": "synthetic", "num_classes": 10, "imbalance_factor": 100, "n_max": 500,
                 "val_per_class": 50, "subset_seed": 0,
                 "synthetic": {"image_size": 32, "rho": 0.9, **(synthetic or {})}},
        "model": {"architecture": "small_cnn"},
        "method": method,
        "training": {"epochs": epochs, "batch_size": 64, "lr": 0.05, "schedule": "onecycle", "nesterov": True,
                     "weight_decay": 5e-4, "seed": seed, "device": "cpu", "num_threads": 1},
    }


def run_one(job: tuple[str, dict, int, int]) -> dict:
    from smcl_tune.train import run_trial

    label, method, seed, epochs = job
    started = time.perf_counter()
    result = run_trial(trial_config(method, seed, epochs))
    return {"variant": label, "seed": seed, "status": result.status, "test": result.test,
            "best_epoch": result.best_epoch, "seconds": time.perf_counter() - started}


def mean_spread_cell(values: list[float]) -> str:
    values = [100 * v for v in values]
    spread = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):5.1f} ± {spread:4.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=60)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--variants", nargs="*", default=list(VARIANTS))
    parser.add_argument("--output", default="background_bias.jsonl")
    arguments = parser.parse_args()
    jobs = [(label, VARIANTS[label], seed, arguments.epochs) for seed in range(arguments.seeds)
            for label in arguments.variants]
    results: list[dict] = []
    started = time.perf_counter()
    with ProcessPoolExecutor(arguments.workers) as pool, Path(arguments.output).open("w") as log_file:
        for outcome in pool.map(run_one, jobs):
            results.append(outcome)
            log_file.write(json.dumps(outcome) + "\n")
            log_file.flush()
    print(f"synthetic background bias, 10 classes, IF 100, rho 0.9, small CNN, {arguments.epochs} epochs, "
          f"seeds 0..{arguments.seeds - 1}, test accuracy % (mean ± std over seeds), "
          f"{time.perf_counter() - started:.0f} s")
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
