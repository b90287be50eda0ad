"""Small MLflow stores built here with known metrics, as `smcl-tune run` writes them."""

import json
import time

import pytest

from smcl_tune.figures.class_accuracy import per_class_csv
from smcl_tune.results import TrialState
from smcl_tune.store.paths import default_tracking_uri
from smcl_tune.tracking.writer import StudyTracker

GROUPS_IF100 = {"many_classes": 2, "medium_classes": 2, "few_classes": 1}
GROUPS_IF10 = {"many_classes": 3, "medium_classes": 2, "few_classes": 0}
IF10, IF100 = "imbalance_factor=10", "imbalance_factor=100"


def _test_metrics(top1, balanced, many, medium, few=None, groups=GROUPS_IF100, last_top1=None, background=None):
    metrics = {
        "test_top1": top1,
        "test_balanced_accuracy": balanced,
        "test_many": many,
        "test_medium": medium,
        "last_test_top1": top1 if last_top1 is None else last_top1,
        "last_test_many": many,
        **groups,
    }
    if few is not None:
        metrics.update(test_few=few, last_test_few=few)
    if background is not None:
        metrics.update(test_background_head_share=background, last_test_background_head_share=background)
    return metrics


def _logged_trial(
    tracker,
    name,
    role,
    state,
    condition,
    params,
    epochs,
    final=None,
    reason=None,
    configuration="",
    seed=0,
    source="synthetic",
    architecture="small_cnn",
):
    factor = condition.split("=")[1]
    tags = {
        "smcl.imbalance_factor": factor,
        "smcl.many_above": "30",
        "smcl.few_below": "10",
        "smcl.condition": condition,
        "smcl.configuration": configuration,
        "smcl.seed": str(seed),
        "smcl.source": source,
        "smcl.architecture": architecture,
    }
    run_id = tracker.trial_run(f"{condition}/{name}", f"{name} [{condition}]", role, params, {}, tags)
    for epoch, value in enumerate(epochs):
        metrics = {"val_balanced_accuracy": value, "loss": 1.0 / (epoch + 1), "epoch": epoch}
        tracker.log_metrics(run_id, metrics, epoch, int(time.time() * 1000))
    if final is not None:
        tracker.log_metrics(
            run_id,
            {**final, "epochs_completed": len(epochs), "trial_seconds": 12.0},
            len(epochs) - 1,
            int(time.time() * 1000),
        )
        per_class = per_class_csv([f"class{i}" for i in range(5)], [60, 40, 20, 12, 6], [0.9, 0.8, 0.7, 0.6, 0.5])
        tracker.log_files(run_id, {"per_class_accuracy.csv": per_class})
    tracker.end_trial(run_id, TrialState(state), reason)


def _study_tracker(storage, study, conditions, baselines, optuna_storage=None):
    tracker = StudyTracker(default_tracking_uri(storage), study, study, "abc", storage / "mlartifacts")
    tags = {
        "smcl.objective_metric": "val_balanced_accuracy",
        "smcl.objective_mode": "max",
        "smcl.search": json.dumps(["temperature"]),
        "smcl.conditions": json.dumps(conditions),
        "smcl.baselines": json.dumps(baselines),
    }
    if optuna_storage:
        tags["smcl.optuna_storage"] = optuna_storage
    tracker.log_study(None, None, {}, tags)
    return tracker


def _build_store(storage, study="lt", optuna_storage=None):
    """Six trials in two conditions: completed, pruned and failed search trials, one baseline."""
    tracker = _study_tracker(storage, study, [IF10, IF100], ["ce"], optuna_storage)
    search = {"configuration": ""}
    _logged_trial(
        tracker,
        "trial-000",
        "search",
        "completed",
        IF100,
        {"temperature": 0.1},
        [0.3, 0.5, 0.6],
        {"selected_val_balanced_accuracy": 0.62, **_test_metrics(0.55, 0.55, 0.8, 0.5, 0.2)},
        **search,
    )
    _logged_trial(
        tracker,
        "trial-001",
        "search",
        "completed",
        IF100,
        {"temperature": 0.3},
        [0.4, 0.6, 0.7],
        {"selected_val_balanced_accuracy": 0.71, **_test_metrics(0.6, 0.6, 0.85, 0.55, 0.25)},
        **search,
    )
    _logged_trial(tracker, "trial-002", "search", "pruned", IF100, {"temperature": 0.05}, [0.2], **search)
    _logged_trial(
        tracker,
        "trial-003",
        "search",
        "completed",
        IF10,
        {"temperature": 0.2},
        [0.7, 0.8, 0.9],
        {
            "selected_val_balanced_accuracy": 0.9,
            **_test_metrics(0.88, 0.87, 0.9, 0.8, groups=GROUPS_IF10, last_top1=0.86, background=0.72),
        },
        **search,
    )
    _logged_trial(
        tracker,
        "trial-004",
        "search",
        "failed",
        IF10,
        {"temperature": 0.4},
        [0.1],
        reason="non-finite loss (nan) in epoch 1",
        **search,
    )
    _logged_trial(
        tracker,
        "baseline-ce",
        "baseline",
        "completed",
        IF100,
        {"name": "ce"},
        [0.3, 0.4, 0.5],
        {"selected_val_balanced_accuracy": 0.5, **_test_metrics(0.45, 0.45, 0.9, 0.3, 0.05)},
        configuration="ce",
    )
    tracker.finish()
    return default_tracking_uri(storage)


# Seeds of three configurations in one condition: few-shot accuracy (%) per seed.
SEED_FEW = {
    ("baseline", "ce"): {0: 10, 1: 14, 2: 12},
    ("baseline", "smcl"): {0: 20, 1: 26, 2: 26},
    ("confirm", "trial-001"): {1: 30, 2: 34},
}


def _build_seed_store(storage, study="seeds"):
    """CE and SMCL baselines over seeds 0..2 and a confirmed configuration over seeds 1 and 2 (IF 100)."""
    tracker = _study_tracker(storage, study, [IF100], ["ce", "smcl"])
    for (kind, configuration), by_seed in SEED_FEW.items():
        for seed, few in by_seed.items():
            name = f"baseline-{configuration}-s{seed}" if kind == "baseline" else f"confirm-001-s{seed}"
            final = {"selected_val_balanced_accuracy": 0.5, **_test_metrics(0.5, 0.5, 0.8, 0.5, few / 100)}
            _logged_trial(
                tracker,
                name,
                kind,
                "completed",
                IF100,
                {"seed": seed},
                [0.4, 0.5],
                final,
                configuration=configuration,
                seed=seed,
            )
    tracker.finish()
    return default_tracking_uri(storage)


@pytest.fixture(scope="session")
def build_store():
    """`build_store(storage, study="lt", optuna_storage=None)`: six trials at IF 10 and 100
    (completed, pruned, failed, a baseline), conditions of the study; returns the tracking URI."""
    return _build_store


@pytest.fixture(scope="session")
def build_seed_store():
    """`build_seed_store(storage)`: baselines and a confirmed configuration over seeds (SEED_FEW)."""
    return _build_seed_store


@pytest.fixture(scope="session")
def logged_trial():
    """`logged_trial(tracker, name, role, state, condition, params, epochs, final=None, reason=None, ...)`."""
    return _logged_trial
