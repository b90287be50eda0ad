"""A new study's MLflow store starts as a copy of an empty store MLflow made once: the same store
MLflow would have made, never in place of one that is there, and MLflow's own when the cache fails."""

import logging
import sqlite3
import time
from contextlib import closing
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from smcl_tune.layout import MLFLOW_DATABASE
from smcl_tune.store import empty_store
from smcl_tune.store.paths import default_tracking_uri
from smcl_tune.tracking.writer import StudyTracker


@pytest.fixture
def migrations():
    """MLflow's "Creating initial MLflow database tables" lines: one per store it migrates."""
    seen = []
    handler = logging.Handler()
    handler.emit = lambda record: seen.append(record.getMessage())
    logger = logging.getLogger("mlflow.store.db.utils")
    level = logger.level
    logger.setLevel(logging.INFO)  # whatever an earlier test set mlflow's logger to
    logger.addHandler(handler)
    yield lambda: sum("Creating initial MLflow database tables" in message for message in seen)
    logger.removeHandler(handler)
    logger.setLevel(level)


def _tables(database: Path) -> dict[str, list]:
    """Each table's schema (its lines in any order: MLflow's migrations order a table's constraints
    differently from one store to the next) and rows, the Default experiment's times left out."""
    with closing(sqlite3.connect(database)) as connection:
        schema = {
            name: sorted(line.strip().rstrip(",") for line in sql.splitlines())
            for name, sql in connection.execute("SELECT name, sql FROM sqlite_master WHERE sql IS NOT NULL")
        }
        tables = [name for (name,) in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        rows = {table: connection.execute(f'SELECT * FROM "{table}"').fetchall() for table in tables}
    rows["experiments"] = [(row[0], row[1], row[2], row[3], row[6]) for row in rows["experiments"]]
    return {"schema": schema, "rows": rows}


def test_a_store_started_from_the_cache_is_the_store_mlflow_makes(tmp_path, monkeypatch, migrations):
    cache = tmp_path / "cache"
    monkeypatch.setenv(empty_store.CACHE_ENV, str(cache))
    monkeypatch.chdir(tmp_path)
    by_mlflow, copied, copied_again = tmp_path / "mlflow", tmp_path / "copied", tmp_path / "again"
    for folder in (by_mlflow, copied, copied_again):
        folder.mkdir()
    MlflowClient(tracking_uri=default_tracking_uri(by_mlflow)).search_experiments()
    assert migrations() == 1
    started = time.time() * 1000
    empty_store.start_store(default_tracking_uri(copied))
    assert migrations() == 2  # the cache's empty store
    empty_store.start_store(default_tracking_uri(copied_again))
    assert migrations() == 2  # the next study's store is a copy

    [template] = cache.iterdir()
    assert template.name.startswith(f"mlflow-{empty_store.mlflow.__version__}-") and template.suffix == ".db"
    for folder in (copied, copied_again):
        assert _tables(folder / MLFLOW_DATABASE) == _tables(by_mlflow / MLFLOW_DATABASE)
        assert [path.name for path in folder.iterdir()] == [MLFLOW_DATABASE]  # no partial copy left
        assert (folder / MLFLOW_DATABASE).stat().st_mode == (by_mlflow / MLFLOW_DATABASE).stat().st_mode
    with closing(sqlite3.connect(copied / MLFLOW_DATABASE)) as connection:
        location, made, updated = connection.execute(
            "SELECT artifact_location, creation_time, last_update_time FROM experiments WHERE experiment_id = 0"
        ).fetchone()
    assert location == str(tmp_path / "mlruns" / "0") and made == updated >= started  # this driver's, now
    tracker = StudyTracker(default_tracking_uri(copied), "study", "study", "abc", tmp_path / "artifacts")
    assert [run.data.tags["smcl.role"] for run in tracker._search("")] == ["study"]


def test_a_store_already_there_is_never_replaced(tmp_path, monkeypatch):
    monkeypatch.setenv(empty_store.CACHE_ENV, str(tmp_path / "cache"))
    study = tmp_path / "study"
    study.mkdir()
    empty_store.start_store(default_tracking_uri(study))
    tracker = StudyTracker(default_tracking_uri(study), "mine", "mine", "abc", tmp_path / "artifacts")
    before = (study / MLFLOW_DATABASE).read_bytes()
    # another driver starting in this folder found no store a moment ago, and links its copy now
    empty_store._copy_in(empty_store._empty_store(), study / MLFLOW_DATABASE)
    assert (study / MLFLOW_DATABASE).read_bytes() == before
    assert [path.name for path in study.iterdir()] == [MLFLOW_DATABASE]
    assert tracker.client.get_experiment_by_name("mine") is not None


def test_a_uri_with_options_is_left_to_mlflow(tmp_path, monkeypatch):
    monkeypatch.setenv(empty_store.CACHE_ENV, str(tmp_path / "cache"))
    empty_store.start_store(f"{default_tracking_uri(tmp_path)}?timeout=60")
    assert not (tmp_path / "cache").exists() and [path.name for path in tmp_path.iterdir()] == []


def test_without_a_usable_cache_mlflow_makes_the_store_itself(tmp_path, monkeypatch, migrations):
    cache = tmp_path / "cache"
    cache.write_text("a file where the cache folder would be")
    monkeypatch.setenv(empty_store.CACHE_ENV, str(cache))
    empty_store.start_store(default_tracking_uri(tmp_path))
    assert migrations() == 0 and not (tmp_path / MLFLOW_DATABASE).exists()
    tracker = StudyTracker(default_tracking_uri(tmp_path), "study", "study", "abc", tmp_path / "artifacts")
    assert migrations() == 1
    assert tracker.client.get_experiment_by_name("study") is not None


def test_the_cache_is_under_xdg_cache_home_or_the_home_folders_cache_unless_named(tmp_path, monkeypatch):
    monkeypatch.delenv(empty_store.CACHE_ENV, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert empty_store.cache_folder() == tmp_path / "xdg" / "smcl-tune"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert empty_store.cache_folder() == tmp_path / "home" / ".cache" / "smcl-tune"
    monkeypatch.setenv(empty_store.CACHE_ENV, str(tmp_path / "named"))
    assert empty_store.cache_folder() == tmp_path / "named"
