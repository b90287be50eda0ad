"""Fixtures of the Ray tests: a tiny study (5 classes of 16-px synthetic images, 3 epochs per
trial), and the trial runs of a study's MLflow experiment."""

from pathlib import Path

import pytest
import yaml


def _write_tiny_study(folder: Path, name: str = "tiny", **changes) -> Path:
    study = {
        "name": name,
        "trial": {
            "data": {
                "source": "synthetic",
                "num_classes": 5,
                "n_max": 60,
                "imbalance_factor": 10,
                "val_per_class": 10,
                "many_above": 30,
                "few_below": 10,
                "synthetic": {"image_size": 16, "test_per_class": 10, "val_pool_per_class": 10},
            },
            "model": {"architecture": "small_cnn"},
            "method": {"name": "smcl", "mask_start_epoch": 0, "mask_end_epoch": 10},
            "training": {
                "epochs": 3,
                "batch_size": 32,
                "lr": 0.05,
                "warmup_epochs": 0,
                "milestones": [],
                "milestone_factors": [],
                "device": "cpu",
                "num_threads": 1,
            },
        },
        "search": {"method.temperature": {"loguniform": [0.05, 0.5]}, "method.loss_weight": {"uniform": [0.1, 1.0]}},
        "num_trials": 3,
        "max_concurrent": 1,
        "resources": {"cpus": 1},
        "scheduler": {"type": "asha", "grace_period": 1, "reduction_factor": 2},
        "storage": str(folder / "smcl-runs"),
        "seed": 0,
    }
    study.update(changes)
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(study))
    return path


def _trial_runs(client, experiment_name: str) -> list:
    """The trial runs (not the study run) of an MLflow experiment; [] before it exists."""
    experiment = client.get_experiment_by_name(experiment_name)
    if experiment is None:
        return []
    return [
        run
        for run in client.search_runs([experiment.experiment_id], max_results=100)
        if run.data.tags.get("smcl.role") != "study"
    ]


@pytest.fixture(scope="session")
def tiny_study():
    """`tiny_study(folder, name="tiny", **changes)` writes a tiny study file and returns its path;
    `changes` replace top-level keys of the study."""
    return _write_tiny_study


@pytest.fixture(scope="session")
def trial_runs():
    """`trial_runs(client, experiment_name)`: the trial runs of a study's experiment."""
    return _trial_runs
