"""A study's MLflow artifacts land under its storage folder, never in the folder the driver runs in."""

import os
import time
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


def test_a_finished_study_run_again_keeps_its_end_unless_a_trial_trained_again(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"

    def tracker() -> StudyTracker:  # one per driver, and one per trial callback, as a study makes them
        return StudyTracker(uri, "e", "s", "f", tmp_path / "artifacts")

    first = tracker()
    run_id = first.trial_run("t0", "trial-000", "search", {}, {})
    first.end_trial(run_id, TrialState.FAILED, "non-finite loss")
    first.finish()
    client = first.client
    ended = client.get_run(first.parent_run_id).info.end_time

    for status in ("FINISHED", "KILLED"):  # run again with nothing to train, to its end or stopped
        time.sleep(0.01)
        tracker().finish(status)
        parent = client.get_run(first.parent_run_id).info
        assert (parent.status, parent.end_time) == ("FINISHED", ended), status

    driver, callback = tracker(), tracker()  # a rerun that trains the failed trial again
    time.sleep(0.01)
    callback.end_trial(callback.trial_run("t0", "trial-000", "search", {}, {}), TrialState.COMPLETED)
    driver.finish()
    parent = client.get_run(first.parent_run_id).info
    assert parent.status == "FINISHED" and parent.end_time > ended
    assert parent.end_time >= client.get_run(run_id).info.end_time
