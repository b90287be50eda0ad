"""A short trial on the real CIFAR-10 JPEG copy (the `cifar10_jpeg` fixture says where it is)."""

import math

import pytest

from smcl_tune.config import trial_config_from_dict
from smcl_tune.trial.run import run_trial

pytestmark = [pytest.mark.slow]


def test_one_epoch_on_a_small_cifar10_lt_subset_reports_per_class_accuracy(cifar10_jpeg):
    config = {
        "data": {
            "source": "image_folder",
            "root": str(cifar10_jpeg),
            "n_max": 200,
            "imbalance_factor": 10,
            "val_per_class": 10,
            "many_above": 100,
            "few_below": 40,
        },
        "model": {"architecture": "tiny_cnn"},
        "method": {"name": "smcl", "mask_start_epoch": 0, "mask_end_epoch": 1, "mask_probability": 1.0},
        "training": {"epochs": 1, "batch_size": 64, "warmup_epochs": 0, "device": "cpu"},
    }
    result = run_trial(trial_config_from_dict(config))
    assert result.status == "completed"
    assert result.class_names[:2] == ["airplane", "automobile"]
    assert result.train_counts[0] == 200 and result.train_counts[-1] == 20
    assert sum(map(sum, result.test_confusion)) == 10000
    assert len(result.test_per_class_accuracy) == 10
    assert all(0.0 <= value <= 1.0 for value in result.test_per_class_accuracy)
    assert math.isfinite(result.history[0]["loss_msc"]) and result.history[0]["loss_msc"] > 0
