"""Searched fields that change no trial of a study are named by `validate` (and `run`): the one
table of which field acts when, the same in the code and in the README."""

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from smcl_tune.studyfile.field_effects import FIELD_EFFECTS

ROOT = Path(__file__).resolve().parents[2]


def _validate(path: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "smcl_tune.cli", "validate", str(path)], cwd=ROOT, capture_output=True, text=True
    )


def _study(folder: Path, method: dict, search: dict, conditions: dict | None = None) -> Path:
    study = yaml.safe_load((ROOT / "studies" / "quickstart.yaml").read_text())
    study["trial"]["method"] = method
    study["search"] = search
    study.pop("conditions", None)
    if conditions:
        study["conditions"] = conditions
    path = folder / "study.yaml"
    path.write_text(yaml.safe_dump(study))
    return path


@pytest.mark.parametrize(
    ("method", "search", "idle"),
    [
        ({"name": "smcl"}, {"method.saliency_threshold": {"uniform": [0.3, 0.9]}}, "method.saliency_threshold"),
        ({"name": "ce"}, {"method.temperature": {"loguniform": [0.05, 0.5]}}, "method.temperature"),
        ({"name": "smcl", "mask_mode": "threshold"}, {"method.box_alpha": {"uniform": [0.5, 2]}}, "method.box_alpha"),
        ({"name": "smcl"}, {"method.mask_source": {"choice": ["minor", "head"]}}, "method.mask_source"),
    ],
    ids=["t under box masks", "contrastive under ce", "box_alpha under threshold", "mask_source under erase"],
)
def test_a_searched_field_that_changes_no_trial_is_named_in_one_line(tmp_path, method, search, idle):
    done = _validate(_study(tmp_path, method, search))
    assert done.returncode == 0, done.stderr
    warnings = [line for line in done.stdout.splitlines() if line.startswith("# warning:")]
    assert len(warnings) == 1 and warnings[0].startswith(f"# warning: search.{idle}: changes no trial"), done.stdout


def test_a_field_that_acts_in_some_combination_of_choices_or_conditions_is_not_named(tmp_path):
    searched = {"method.mask_mode": {"choice": ["box", "threshold"]}, "method.saliency_threshold": {"uniform": [0, 1]}}
    assert "# warning" not in _validate(_study(tmp_path, {"name": "smcl"}, searched)).stdout
    conditioned = _study(
        tmp_path, {"name": "ce"}, {"method.temperature": {"uniform": [0.05, 0.5]}}, {"method.name": ["ce", "smcl"]}
    )
    assert "# warning" not in _validate(conditioned).stdout
    # under ce, the classifier loss's own fields do act
    ldam = {"method.ldam_scale": {"uniform": [10, 40]}}
    assert "# warning" not in _validate(_study(tmp_path, {"name": "ce", "classifier_loss": "ldam_drw"}, ldam)).stdout


@pytest.mark.parametrize("path", sorted((ROOT / "studies").glob("*.yaml")), ids=lambda path: path.name)
def test_no_shipped_study_searches_a_field_that_changes_no_trial(path):
    done = _validate(path)
    assert "# warning" not in done.stdout, done.stdout[-2000:]


def test_the_readmes_table_is_the_codes():
    readme = (ROOT / "README.md").read_text()
    table = readme.split("| fields | change a trial only with |\n|---|---|\n", 1)[1].split("\n\n", 1)[0]
    rows = [
        [*re.findall(r"`([^`]+)`", line.split(" | ")[0]), line.split(" | ")[1].rstrip(" |")]
        for line in table.splitlines()
    ]
    assert rows == [[*effect.fields, effect.when] for effect in FIELD_EFFECTS]
