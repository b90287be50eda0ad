"""Time to build a study's leaderboard and HTML report from MLflow, for a study of N trials.

Fills a fresh sqlite MLflow store and Optuna study with N synthetic trials (known metrics, 30
epochs of validation history each, per-class CSVs), then times each step of
`smcl-tune leaderboard STUDY --format html` in-process and prints a table.

    .venv/bin/python benchmarks/report_speed.py [--trials 100]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import tempfile
import time
from pathlib import Path

import optuna

from smcl_tune.figures.class_accuracy import per_class_csv
from smcl_tune.report.aligned_columns import aligned_columns
from smcl_tune.report.csv_table import format_csv
from smcl_tune.report.html import format_html
from smcl_tune.report.leaderboard import load_leaderboard
from smcl_tune.report.text_table import format_text
from smcl_tune.results import TrialState
from smcl_tune.store.paths import default_tracking_uri
from smcl_tune.tracking.writer import StudyTracker

EPOCHS = 30
CLASSES = 100


def fill_store(storage: Path, trials: int, name: str = "bench") -> tuple[str, str]:
    """A study `name` of `trials` trials in the store under `storage` (more studies can share it)."""
    uri = default_tracking_uri(storage)
    optuna_url = f"sqlite:///{storage / 'optuna.db'}"
    study = optuna.create_study(study_name=name, storage=optuna_url, direction="maximize")
    tracker = StudyTracker(uri, name, name, "f", storage / "mlartifacts")
    tracker.log_study(
        None,
        None,
        {},
        {
            "smcl.objective_metric": "val_balanced_accuracy",
            "smcl.objective_mode": "max",
            "smcl.optuna_storage": optuna_url,
            "smcl.search": json.dumps(["temperature", "loss_weight", "saliency_threshold"]),
        },
    )
    rng = random.Random(0)
    counts = [int(500 * 100 ** (-i / (CLASSES - 1))) for i in range(CLASSES)]
    for number in range(trials):
        trial = study.ask()
        params = {
            "temperature": trial.suggest_float("method.temperature", 0.03, 0.5, log=True),
            "loss_weight": trial.suggest_float("method.loss_weight", 0.1, 2.0),
            "saliency_threshold": trial.suggest_float("method.saliency_threshold", 0.3, 0.9),
        }
        pruned = number % 3 == 2
        epochs = 10 if pruned else EPOCHS
        run_id = tracker.trial_run(
            f"optuna-{number}",
            f"trial-{number:03d}",
            "search",
            params,
            {},
            {"smcl.imbalance_factor": "100", "smcl.many_above": "100", "smcl.few_below": "20"},
        )
        score = 0.3 + 0.2 * rng.random()
        for epoch in range(epochs):
            tracker.log_metrics(
                run_id,
                {"val_balanced_accuracy": score * (epoch + 1) / epochs, "loss": 1 / (epoch + 1)},
                epoch,
                int(time.time() * 1000),
            )
        if pruned:
            study.tell(trial, state=optuna.trial.TrialState.PRUNED)
            tracker.end_trial(run_id, TrialState.PRUNED)
            continue
        final = {
            "selected_val_balanced_accuracy": score,
            "test_top1": score,
            "test_balanced_accuracy": score,
            "test_many": score + 0.2,
            "test_medium": score,
            "test_few": score - 0.2,
            "many_classes": 35,
            "medium_classes": 35,
            "few_classes": 30,
            "epochs_completed": epochs,
            "trial_seconds": 60.0,
        }
        tracker.log_metrics(run_id, final, epochs - 1, int(time.time() * 1000))
        tracker.log_files(
            run_id,
            {
                "per_class_accuracy.csv": per_class_csv(
                    [f"class{i}" for i in range(CLASSES)], counts, [rng.random() for _ in range(CLASSES)]
                )
            },
        )
        tracker.end_trial(run_id, TrialState.COMPLETED)
        study.tell(trial, score)
    tracker.finish()
    return uri, optuna_url


def main() -> None:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=100)
    arguments = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        uri, _ = fill_store(Path(folder), arguments.trials)
        timings = {}
        started = time.perf_counter()
        board = load_leaderboard(uri, "bench")
        timings["load trials from MLflow"] = time.perf_counter() - started
        step = time.perf_counter()
        format_text(board)
        format_csv(board)
        timings["terminal table + CSV"] = time.perf_counter() - step
        step = time.perf_counter()
        page = format_html(board)
        timings["HTML report (plots, fANOVA)"] = time.perf_counter() - step
        timings["total"] = time.perf_counter() - started
    print(
        f"leaderboard of a study with {arguments.trials} trials ({len(board.trials)} rows, "
        f"{len(page) / 2**20:.1f} MiB HTML)"
    )
    rows = [[name, f"{seconds:.2f}"] for name, seconds in timings.items()]
    print(aligned_columns(["step", "seconds"], rows, left=("step",)))


if __name__ == "__main__":
    main()
