"""Does the device data path change results? CE and SMCL on the synthetic benchmark, trained
once with the device batches (smcl_tune.data.batches) and once with the per-sample PIL pipeline
they replaced (legacy_data_path.py), same data, model, schedule, seeds and sampling plan.

Prints test overall / many / medium / few-shot accuracy as mean ± std over seeds per path, and
the mean training time per epoch.

    .venv/bin/python benchmarks/data_path_accuracy.py [--seeds 3] [--epochs 60] [--workers 2]
"""

from __future__ import annotations

import argparse
import math
import statistics
import time
from concurrent.futures import ProcessPoolExecutor

from background_bias import mean_spread_cell

PATHS = ("device", "per-sample")
METHODS = ("ce", "smcl")


def run_one(job: tuple[str, str, int, int]) -> dict:
    import torch

    from background_bias import trial_config
    from legacy_data_path import LegacyBatches
    from smcl_tune.config import trial_config_from_dict
    from smcl_tune.data.assemble import build_trial_data
    from smcl_tune.train import Trial, close_epoch, final_result

    path, method, seed, epochs = job
    config = trial_config_from_dict(trial_config({"name": method}, seed, epochs))
    torch.set_num_threads(config.training.num_threads)
    device = torch.device("cpu")
    data = build_trial_data(config.data)
    trial = Trial(config, data, device)
    if path == "per-sample":  # one loader process beside the training thread
        trial.batches = LegacyBatches(data.train, data.mean, data.std, config.training.augment, workers=1, seed=seed,
                                      device=device)
    status = "completed"
    while trial.epoch < epochs:
        metrics = trial.train_epoch()
        if not math.isfinite(metrics["loss"]):
            status = "failed"
            break
        close_epoch(trial, metrics)
    result = final_result(trial, status, None)
    seconds = statistics.mean(epoch["epoch_seconds"] for epoch in result.history) if result.history else math.nan
    return {"path": path, "method": method, "seed": seed, "status": status, "test": result.test,
            "epoch_seconds": seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=60)
    parser.add_argument("--workers", type=int, default=2, help="trials run at once")
    arguments = parser.parse_args()
    jobs = [(path, method, seed, arguments.epochs) for seed in range(arguments.seeds) for method in METHODS
            for path in PATHS]
    started = time.perf_counter()
    with ProcessPoolExecutor(arguments.workers) as pool:
        results = list(pool.map(run_one, jobs))
    print(f"synthetic benchmark (10 classes, IF 100, small CNN), {arguments.epochs} epochs, seeds "
          f"0..{arguments.seeds - 1}, test accuracy % (mean ± std over seeds), {time.perf_counter() - started:.0f} s")
    print(f"{'method':<8}{'data path':<12}{'overall':>14}{'many':>14}{'medium':>14}{'few':>14}{'s/epoch':>9}")
    for method in METHODS:
        for path in PATHS:
            rows = [r for r in results if r["path"] == path and r["method"] == method and r["status"] == "completed"]
            if not rows:
                print(f"{method:<8}{path:<12}{'failed':>14}")
                continue
            cells = [mean_spread_cell([row["test"][key] for row in rows]) for key in ("top1", "many", "medium", "few")]
            seconds = statistics.mean(row["epoch_seconds"] for row in rows)
            print(f"{method:<8}{path:<12}" + "".join(f"{cell:>14}" for cell in cells) + f"{seconds:>9.2f}")


if __name__ == "__main__":
    main()
