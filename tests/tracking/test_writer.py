"""A study's MLflow artifacts land under its storage folder, never in the folder the driver runs in."""

import os
from pathlib import Path

import yaml

from smcl_tune.results import TrialState
from smcl_tune.store.paths import StudyPaths
from smcl_tune.studyfile.study import load_study
from smcl_tune.tracking.writer import StudyTracker

ROOT = Path(__file__).resolve().parents[2]


def test_artifacts_go_under_the_storage_folder_and_nothing_into_the_current_folder(tmp_path, monkeypatch):
    study_file = tmp_path / "study.yaml"
    study = yaml.safe_load((ROOT / "studies" / "quickstart.yaml").read_text())
    study["storage"] = str(tmp_path / "store")
    study_file.write_text(yaml.safe_dump(study))
    elsewhere = tmp_path / "driver-folder"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)

    study = load_study(str(study_file))
    paths = StudyPaths.of(study)
    tracker = StudyTracker(paths.tracking_uri, paths.experiment, study.name, study.fingerprint(), paths.artifact_root)
    tracker.log_study(study_file.name, study.source_text(), study.display_dict(), {})
    run_id = tracker.trial_run("trial-000", "trial-000", "search", {"temperature": 0.1}, {"epochs": 1})
    tracker.log_files(run_id, {"per_class_accuracy.csv": "class_id\n0\n"})
    tracker.end_trial(run_id, TrialState.COMPLETED)
    tracker.finish()

    assert os.listdir(elsewhere) == [], "MLflow wrote into the current folder (an experiment without a location?)"
    logged = sorted(path.name for path in paths.artifact_root.rglob("*") if path.is_file())
    assert {"study.yaml", "resolved_study.json", "trial_config.json", "per_class_accuracy.csv"} <= set(logged)
