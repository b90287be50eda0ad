"""The study record: a changed study file under an existing name is refused unless --restart."""

import json

from smcl_tune.cli import main

from .conftest import tiny_study


def test_changed_study_file_is_refused_before_anything_starts(tmp_path, capsys):
    path = tiny_study(tmp_path, name="same-name")
    record = tmp_path / "smcl-runs" / "same-name"
    record.mkdir(parents=True)
    (record / "smcl-study.json").write_text(json.dumps({"fingerprint": "0123456789abcdef", "source": "old.yaml"}))
    assert main(["run", str(path)]) == 2
    error = capsys.readouterr().err
    assert "study 'same-name' already exists" in error and "--restart" in error
    assert json.loads((record / "smcl-study.json").read_text())["fingerprint"] == "0123456789abcdef"


def test_restart_discards_the_record_the_optuna_study_and_the_mlflow_runs(tmp_path):
    from smcl_tune.study.runner import StudyPaths, _prepare_state
    from smcl_tune.study_config import load_study
    from smcl_tune.tracking import StudyTracker

    study = load_study(tiny_study(tmp_path, name="again"))
    paths = StudyPaths.of(study)
    assert _prepare_state(study, paths, restart=False) is False
    tracker = StudyTracker(paths.tracking_uri, paths.experiment, study.name, study.fingerprint())
    tracker.trial_run("optuna-0", "trial-000", "search", {"temperature": 0.1}, {})
    (paths.record_dir / "optuna.db").write_text("stale")
    assert _prepare_state(study, paths, restart=True) is False
    assert not (paths.record_dir / "optuna.db").exists()
    assert (paths.record_dir / "smcl-study.json").exists()
    experiment = tracker.client.get_experiment_by_name(paths.experiment)
    assert tracker.client.search_runs([experiment.experiment_id]) == []
