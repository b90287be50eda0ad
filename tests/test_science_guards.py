"""Runs compared over seeds must be measured on the same data (issue 26, science guards)."""

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from smcl_tune.errors import ConfigError
from smcl_tune.studyfile.study import study_from_dict

STUDIES = Path(__file__).resolve().parents[1] / "studies"


def test_a_confirmation_on_another_subset_than_the_baselines_is_refused(tmp_path):
    study = yaml.safe_load((STUDIES / "cifar10_lt.yaml").read_text())
    study["confirm"]["overrides"] = {}  # keeps the 100 validation images per class the baselines train on
    path = tmp_path / "mixed.yaml"
    path.write_text(yaml.safe_dump(study))
    done = subprocess.run(
        [sys.executable, "-m", "smcl_tune.cli", "validate", str(path)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2
    assert done.stderr.strip() == (
        f"smcl-tune: {path}: baselines[0] (ce) and confirm train on different data (condition imbalance_factor=10): "
        "data.val_per_class 0 and 100; they are compared over seeds, so give them the same data.val_per_class"
    )
    assert list(tmp_path.iterdir()) == [path]


def test_two_baselines_on_different_subsets_are_refused_and_the_same_subset_is_fine():
    raw = yaml.safe_load((STUDIES / "quickstart.yaml").read_text())
    raw["baselines"] = [
        {"name": "ce", "overrides": {"method.name": "ce", "data.val_per_class": 0}, "seeds": [0, 1]},
        {"name": "smcl", "overrides": {}, "seeds": [0, 1]},
    ]
    with pytest.raises(ConfigError, match=r"baselines\[0\] \(ce\) and baselines\[1\] \(smcl\) train on different data"):
        study_from_dict(raw)
    raw["baselines"][1]["overrides"] = {"data.val_per_class": 0}
    raw["confirm"] = {"top_k": 1, "seeds": [0, 1], "overrides": {"data.val_per_class": 0}}
    study_from_dict(raw)  # every run compared over seeds trains on the whole subset
