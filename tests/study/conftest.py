"""A tiny study for the Ray tests: 5 classes of 16-px synthetic images, 3 epochs per trial."""

from pathlib import Path

import yaml


def tiny_study(tmp_path: Path, name: str = "tiny", **changes) -> Path:
    study = {
        "name": name,
        "trial": {
            "data": {"source": "synthetic", "num_classes": 5, "n_max": 60, "imbalance_factor": 10,
                     "val_per_class": 10, "many_above": 30, "few_below": 10,
                     "synthetic": {"image_size": 16, "test_per_class": 10, "val_pool_per_class": 10}},
            "model": {"architecture": "small_cnn"},
            "method": {"name": "smcl", "mask_start_epoch": 0, "mask_end_epoch": 10},
            "training": {"epochs": 3, "batch_size": 32, "lr": 0.05, "warmup_epochs": 0, "milestones": [],
                         "milestone_factors": [], "device": "cpu", "num_threads": 1},
        },
        "search": {"method.temperature": {"loguniform": [0.05, 0.5]}, "method.loss_weight": {"uniform": [0.1, 1.0]}},
        "num_trials": 3,
        "max_concurrent": 1,
        "resources": {"cpus": 1},
        "scheduler": {"type": "asha", "grace_period": 1, "reduction_factor": 2},
        "storage": str(tmp_path / "smcl-runs"),
        "seed": 0,
    }
    for key, value in changes.items():
        study[key] = value
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(study))
    return path


def trial_runs(client, name: str) -> list:
    """The trial runs (not the study run) of a study's MLflow experiment; [] before it exists."""
    experiment = client.get_experiment_by_name(name)
    if experiment is None:
        return []
    return [run for run in client.search_runs([experiment.experiment_id], max_results=100)
            if run.data.tags.get("smcl.role") != "study"]
