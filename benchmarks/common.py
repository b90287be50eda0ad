"""Helpers the benchmark scripts share: the synthetic benchmark's trial, table cells, jobs that
resume from their output file, and a device's clock."""

from __future__ import annotations

import json
import statistics
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch


def synthetic_trial(method: dict, seed: int, epochs: int, synthetic: dict | None = None) -> dict:
    """The prototype's setup (SMCL.md): 10 classes, 32x32, IF 100, 4-layer CNN, one-cycle lr 0.05.

    synthetic: generator fields that replace the default ones (rho, object_contrast, ...).
    """
    return {
        "data": {
            "source": "synthetic",
            "num_classes": 10,
            "imbalance_factor": 100,
            "n_max": 500,
            "val_per_class": 50,
            "subset_seed": 0,
            "synthetic": {"image_size": 32, "rho": 0.9, **(synthetic or {})},
        },
        "model": {"architecture": "small_cnn"},
        "method": method,
        "training": {
            "epochs": epochs,
            "batch_size": 64,
            "lr": 0.05,
            "schedule": "onecycle",
            "nesterov": True,
            "weight_decay": 5e-4,
            "seed": seed,
            "device": "cpu",
            "num_threads": 1,
        },
    }


def mean_spread_cell(values: list[float]) -> str:
    """Fractions as `mean ± std` in %, over seeds."""
    values = [100 * v for v in values]
    spread = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):5.1f} ± {spread:4.1f}"


def interval_cell(values: list[float]) -> str:
    """Fractions as `mean [low, high]` in %, the Student-t 95% interval over seeds; the mean alone
    where the seeds give no interval (fewer than 3, or all equal: report.statistics.t_interval)."""
    import math

    from smcl_tune.report.statistics import t_interval

    mean, _, low, high = t_interval([100 * value for value in values])
    return f"{mean:5.1f}" if math.isnan(low) else f"{mean:5.1f} [{low:5.1f}, {high:5.1f}]"


# The saliency of the accuracy benchmarks' SMCL rows, recorded before issue 39 made cam the default:
# a variant that names no saliency keeps it, so that its rows on file and its new ones are one method
# (a job's key is its method as written).
RECORDED_SALIENCY = "spectral_residual"


def with_recorded_saliency(method: dict) -> dict:
    return {"saliency": RECORDED_SALIENCY, **method} if method["name"] in ("smcl", "mask_only") else method


def run_jobs(
    run_one: Callable[[tuple], dict], jobs: list[tuple], workers: int, output: str, run_missing: bool = True
) -> list[dict]:
    """`run_one(job)` for every job in `workers` processes; each outcome is also written to
    `output` as a JSON line as soon as it is known, with the job it answers. A rerun with the
    same output file keeps the outcomes of jobs already done there and runs only the others, so
    a benchmark longer than one sitting can be finished in several. With `run_missing` False,
    only the outcomes already on file are returned (a table of a benchmark still running)."""
    done = _outcomes_on_file(Path(output))
    keys = [_job_key(job) for job in jobs]
    pending = [job for job, key in zip(jobs, keys, strict=True) if key not in done]
    if not run_missing:
        print(f"{len(jobs) - len(pending)} of {len(jobs)} runs done in {output}; the others are not in the table")
        return [done[key] for key in keys if key in done]
    if len(pending) < len(jobs):
        print(f"{len(jobs) - len(pending)} of {len(jobs)} runs already in {output}; running {len(pending)}", flush=True)
    with ProcessPoolExecutor(workers) as pool, Path(output).open("a") as log_file:
        for job, outcome in zip(pending, pool.map(run_one, pending), strict=True):
            outcome = {**outcome, "job": json.loads(_job_key(job))}
            done[_job_key(job)] = outcome
            log_file.write(json.dumps(outcome) + "\n")
            log_file.flush()
    return [done[key] for key in keys]


def _job_key(job: tuple) -> str:
    return json.dumps(job, sort_keys=True)


def _outcomes_on_file(output: Path) -> dict[str, dict]:
    if not output.exists():
        return {}
    outcomes = {}
    for line in output.read_text().splitlines():
        outcome = json.loads(line) if line.strip() else {}
        if "job" in outcome:
            outcomes[json.dumps(outcome["job"], sort_keys=True)] = outcome
    return outcomes


def synchronize(device: torch.device) -> None:
    """Wait for the work queued on `device` (CUDA runs asynchronously), so a clock read after it counts it."""
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)
