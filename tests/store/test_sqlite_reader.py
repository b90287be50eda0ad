"""The direct read of an sqlite MLflow store (what `status` and `leaderboard` use) gives what MLflow's
own client gives, against the MLflow this project installs."""

import math
import shutil
import sqlite3

import pytest

from smcl_tune.errors import StudyUnavailable
from smcl_tune.results import TrialState
from smcl_tune.store.mlflow_reader import StudyStore
from smcl_tune.store.paths import default_tracking_uri
from smcl_tune.store.sqlite_reader import KNOWN_REVISIONS, SqliteRuns, open_run_reader, schema_revision
from smcl_tune.tracking.writer import StudyTracker, delete_study_runs
from tests.fixtures.stores import store_uri


def _study(storage, name, trials):
    tracker = StudyTracker(store_uri(storage), "shared", name, "fp", storage / "mlartifacts")
    tracker.log_study(None, None, {}, {"smcl.objective_metric": "val_top1"})
    for index in range(trials):
        run = tracker.trial_run(f"key-{index}", f"trial-{index:03d} [if=10]", "search", {"lr": 0.1 * index}, {})
        for epoch in range(3):
            tracker.log_metrics(run, {"loss": 1.0 / (epoch + 1 + index), "val_top1": 0.1 * epoch}, epoch, 1000 + epoch)
        tracker.log_metrics(run, {"epochs_completed": 3, "test_few": math.nan}, 2, 2000)  # NaN: not logged
        tracker.log_files(run, {"per_class_accuracy.csv": f"class_id,test_accuracy\n0,{index}\n"})
        tracker.end_trial(
            run, TrialState.FAILED if index == 2 else TrialState.COMPLETED, "boom" if index == 2 else None
        )
    tracker.finish()
    return tracker


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    storage = tmp_path_factory.mktemp("store") / "smcl-runs"
    _study(storage, "kept", 3)
    _study(storage, "gone", 1)
    delete_study_runs(default_tracking_uri(storage), "shared", "gone")  # soft-deleted: neither reader sees it
    _study(storage, "other", 2)
    return storage


def _as_plain(run):
    info, data = run.info, run.data
    return (
        (info.run_id, info.run_name, info.status, info.start_time, info.end_time, str(info.experiment_id)),
        dict(data.tags),
        dict(data.metrics),
        dict(data.params),
    )


def test_the_installed_mlflow_writes_a_schema_the_direct_reader_knows(store):
    revision = schema_revision(store / "mlflow.db")
    assert revision in KNOWN_REVISIONS, (
        f"MLflow's store schema is now {revision}: compare its runs, tags, params, latest_metrics and metrics "
        "tables with store/sqlite_reader.py's queries, then add the revision to KNOWN_REVISIONS"
    )
    assert isinstance(open_run_reader(default_tracking_uri(store)), SqliteRuns)


def test_both_readers_give_the_same_studies_runs_metrics_and_artifacts(store):
    uri = default_tracking_uri(store)
    direct, through_mlflow = SqliteRuns(store / "mlflow.db"), StudyStore(uri)
    assert direct.study_names() == through_mlflow.study_names() == ["kept", "other"]
    assert sorted(map(_as_plain, direct.study_runs())) == sorted(map(_as_plain, through_mlflow.study_runs()))
    for name in ("kept", "other"):
        parent, mlflow_parent = direct.study_run(name), through_mlflow.study_run(name)
        assert _as_plain(parent) == _as_plain(mlflow_parent)
        trials = sorted(map(_as_plain, direct.trial_runs(parent)))
        assert trials == sorted(map(_as_plain, through_mlflow.trial_runs(mlflow_parent)))
        assert len(trials) == (3 if name == "kept" else 2)
        for run in direct.trial_runs(parent):
            run_id = run.info.run_id
            assert direct.metric_history(run_id, "loss") == through_mlflow.metric_history(run_id, "loss")
            assert direct.artifact_text(run_id, "per_class_accuracy.csv") == through_mlflow.artifact_text(
                run_id, "per_class_accuracy.csv"
            )
            assert direct.artifact_bytes(run_id, "missing.png") is None
            assert "test_few" not in run.data.metrics


def test_a_store_at_another_schema_is_read_through_mlflow_which_says_what_is_wrong(store, tmp_path):
    copy = tmp_path / "mlflow.db"
    shutil.copy(store / "mlflow.db", copy)
    with sqlite3.connect(copy) as connection:
        connection.execute("update alembic_version set version_num = 'a-newer-mlflow'")
    with pytest.raises(StudyUnavailable, match="found version a-newer-mlflow"):  # MLflow's own words
        open_run_reader(f"sqlite:///{copy}")
