"""The study record: a changed study file under an existing name is refused unless --restart."""

import json
from pathlib import Path

import optuna
import pytest
import ray
from mlflow.tracking import MlflowClient

from smcl_tune.cli import main
from smcl_tune.tracking import default_tracking_uri

OLD_RECORD = {"fingerprint": "0123456789abcdef", "source": "old.yaml"}


def _files(folder: Path) -> list[str]:
    return sorted(str(path.relative_to(folder)) for path in folder.rglob("*"))


@pytest.mark.ray
@pytest.mark.slow
def test_changed_study_file_is_refused_before_anything_starts_and_restart_replaces_it(
    tmp_path, capsys, tiny_study, trial_runs
):
    if ray.is_initialized():  # another test's Ray would hide whether this one started it
        ray.shutdown()
    path = tiny_study(tmp_path, name="same-name", num_trials=1)
    path.write_text(
        path.read_text().replace("epochs: 3", "epochs: 1").replace("mask_end_epoch: 10", "mask_end_epoch: 1")
    )
    storage = tmp_path / "smcl-runs"
    record = storage / "same-name"
    record.mkdir(parents=True)
    (record / "smcl-study.json").write_text(json.dumps(OLD_RECORD))
    (record / "optuna.db").write_text("the old study's Optuna record")

    assert main(["run", str(path)]) == 2
    error = capsys.readouterr().err
    assert "study 'same-name' already exists" in error and "--restart" in error
    assert not ray.is_initialized()
    assert _files(storage) == ["same-name", "same-name/optuna.db", "same-name/smcl-study.json"]
    assert json.loads((record / "smcl-study.json").read_text()) == OLD_RECORD

    try:
        assert main(["run", str(path), "--restart"]) == 0
    finally:
        ray.shutdown()
    assert json.loads((record / "smcl-study.json").read_text())["fingerprint"] != OLD_RECORD["fingerprint"]
    study = optuna.load_study(study_name="same-name", storage=f"sqlite:///{record / 'optuna.db'}")
    assert [trial.state for trial in study.get_trials()] == [optuna.trial.TrialState.COMPLETE]
    client = MlflowClient(tracking_uri=default_tracking_uri(storage))
    assert [run.info.run_name for run in trial_runs(client, "same-name")] == ["trial-000"]


def test_restart_discards_the_record_the_optuna_study_and_the_mlflow_runs(tmp_path, tiny_study):
    from smcl_tune.study.paths import StudyPaths
    from smcl_tune.study.runner import _prepare_state
    from smcl_tune.study_config import load_study
    from smcl_tune.tracking import StudyTracker

    study = load_study(tiny_study(tmp_path, name="again"))
    paths = StudyPaths.of(study)
    assert _prepare_state(study, paths, restart=False) is False
    tracker = StudyTracker(
        paths.tracking_uri, paths.experiment, study.name, study.fingerprint(), paths.local_root / "mlartifacts"
    )
    tracker.trial_run("optuna-0", "trial-000", "search", {"temperature": 0.1}, {})
    (paths.record_dir / "optuna.db").write_text("stale")
    assert _prepare_state(study, paths, restart=True) is False
    assert not (paths.record_dir / "optuna.db").exists()
    assert (paths.record_dir / "smcl-study.json").exists()
    experiment = tracker.client.get_experiment_by_name(paths.experiment)
    assert tracker.client.search_runs([experiment.experiment_id]) == []
