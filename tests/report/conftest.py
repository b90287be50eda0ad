"""A small MLflow store built here with known metrics, as `smcl-tune run` writes one."""

import json
import time

import pytest

from smcl_tune.report.trial_files import per_class_csv
from smcl_tune.results import TrialState
from smcl_tune.tracking import StudyTracker, default_tracking_uri

GROUPS_IF100 = {"many_classes": 2, "medium_classes": 2, "few_classes": 1}
GROUPS_IF10 = {"many_classes": 3, "medium_classes": 2, "few_classes": 0}


def _logged_trial(tracker, name, role, state, factor, params, epochs, final=None, reason=None):
    tags = {"smcl.imbalance_factor": str(factor), "smcl.many_above": "30", "smcl.few_below": "10"}
    run_id = tracker.trial_run(name, name, role, params, {"data": {"imbalance_factor": factor}}, tags)
    for epoch, value in enumerate(epochs):
        tracker.log_metrics(
            run_id,
            {"val_balanced_accuracy": value, "loss": 1.0 / (epoch + 1), "epoch": epoch},
            epoch,
            int(time.time() * 1000),
        )
    if final is not None:
        per_class = [0.9, 0.8, 0.7, 0.6, 0.5]
        tracker.log_metrics(
            run_id,
            {**final, "epochs_completed": len(epochs), "trial_seconds": 12.0},
            len(epochs) - 1,
            int(time.time() * 1000),
        )
        tracker.log_files(
            run_id,
            {"per_class_accuracy.csv": per_class_csv([f"class{i}" for i in range(5)], [60, 40, 20, 12, 6], per_class)},
        )
    tracker.end_trial(run_id, TrialState(state), reason)


def _build_store(storage, study="lt", optuna_storage=None):
    uri = default_tracking_uri(storage)
    tracker = StudyTracker(uri, study, study, "abc", storage / "mlartifacts")
    tags = {
        "smcl.objective_metric": "val_balanced_accuracy",
        "smcl.objective_mode": "max",
        "smcl.search": json.dumps(["imbalance_factor", "temperature"]),
    }
    if optuna_storage:
        tags["smcl.optuna_storage"] = optuna_storage
    tracker.log_study(None, None, {}, tags)
    _logged_trial(
        tracker,
        "trial-000",
        "search",
        "completed",
        100,
        {"imbalance_factor": 100, "temperature": 0.1},
        [0.3, 0.5, 0.6],
        {
            "selected_val_balanced_accuracy": 0.62,
            "test_top1": 0.55,
            "test_balanced_accuracy": 0.55,
            "test_many": 0.8,
            "test_medium": 0.5,
            "test_few": 0.2,
            **GROUPS_IF100,
        },
    )
    _logged_trial(
        tracker,
        "trial-001",
        "search",
        "completed",
        100,
        {"imbalance_factor": 100, "temperature": 0.3},
        [0.4, 0.6, 0.7],
        {
            "selected_val_balanced_accuracy": 0.71,
            "test_top1": 0.6,
            "test_balanced_accuracy": 0.6,
            "test_many": 0.85,
            "test_medium": 0.55,
            "test_few": 0.25,
            **GROUPS_IF100,
        },
    )
    _logged_trial(tracker, "trial-002", "search", "pruned", 100, {"imbalance_factor": 100, "temperature": 0.05}, [0.2])
    _logged_trial(
        tracker,
        "trial-003",
        "search",
        "completed",
        10,
        {"imbalance_factor": 10, "temperature": 0.2},
        [0.7, 0.8, 0.9],
        {
            "selected_val_balanced_accuracy": 0.9,
            "test_top1": 0.88,
            "test_balanced_accuracy": 0.87,
            "test_many": 0.9,
            "test_medium": 0.8,
            **GROUPS_IF10,
        },
    )
    _logged_trial(
        tracker,
        "trial-004",
        "search",
        "failed",
        10,
        {"imbalance_factor": 10, "temperature": 0.4},
        [0.1],
        reason="non-finite loss (nan) in epoch 1",
    )
    _logged_trial(
        tracker,
        "baseline-ce",
        "baseline",
        "completed",
        100,
        {"name": "ce"},
        [0.3, 0.4, 0.5],
        {
            "selected_val_balanced_accuracy": 0.5,
            "test_top1": 0.45,
            "test_balanced_accuracy": 0.45,
            "test_many": 0.9,
            "test_medium": 0.3,
            "test_few": 0.05,
            **GROUPS_IF100,
        },
    )
    tracker.finish()
    return uri


@pytest.fixture(scope="session")
def build_store():
    """`build_store(storage, study="lt", optuna_storage=None)`: a study of six trials at IF 10 and
    100 (completed, pruned, failed, a baseline); returns the tracking URI."""
    return _build_store


@pytest.fixture(scope="session")
def logged_trial():
    """`logged_trial(tracker, name, role, state, factor, params, epochs, final=None, reason=None)`."""
    return _logged_trial
