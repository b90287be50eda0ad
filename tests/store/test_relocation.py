"""A study store moved to another folder or machine (the GPU run's store, read back here): its
artifacts are found beside its database by `smcl-tune ui`."""

import json
import shutil
import subprocess
import sys
import time
import urllib.request

import pytest
from mlflow.tracking import MlflowClient

from smcl_tune.store.paths import default_tracking_uri
from smcl_tune.store.relocation import relocate_artifacts
from smcl_tune.tracking.writer import StudyTracker, log_report_files
from tests.fixtures.ports import free_port
from tests.fixtures.stores import store_uri


def _store_with_an_artifact(storage, study="gpu"):
    """A study run with `leaderboard/gpu.csv` attached; the run's id."""
    tracker = StudyTracker(store_uri(storage), study, study, "fp", storage / "mlartifacts")
    tracker.log_study(None, None, {}, {})
    report = storage.parent / f"{study}.csv"
    report.write_text("rank,trial\n1,baseline-ce-s0\n")
    log_report_files(default_tracking_uri(storage), study, [report])
    return tracker.parent_run_id


def _artifacts(storage, run_id):
    return [item.path for item in MlflowClient(default_tracking_uri(storage)).list_artifacts(run_id, "leaderboard")]


def test_a_moved_store_finds_its_artifacts_beside_its_database(tmp_path):
    written = tmp_path / "gpu-machine" / "gpu-study"
    run_id = _store_with_an_artifact(written)
    moved = tmp_path / "laptop" / "gpu-study"
    moved.parent.mkdir()
    shutil.move(written, moved)
    assert _artifacts(moved, run_id) == []  # MLflow still looks under the old folder
    assert relocate_artifacts(default_tracking_uri(moved), moved / "mlartifacts") == [
        (written / "mlartifacts").as_uri()
    ]
    assert _artifacts(moved, run_id) == ["leaderboard/gpu.csv"]
    assert relocate_artifacts(default_tracking_uri(moved), moved / "mlartifacts") == []  # once is enough


def test_a_store_whose_artifact_folder_still_exists_is_left_as_it_is(tmp_path):
    original = tmp_path / "runs"
    run_id = _store_with_an_artifact(original)
    copy = tmp_path / "copy"
    shutil.copytree(original, copy)  # the original is still there
    assert relocate_artifacts(default_tracking_uri(copy), copy / "mlartifacts") == []
    assert relocate_artifacts(default_tracking_uri(original), original / "mlartifacts") == []
    assert _artifacts(original, run_id) == ["leaderboard/gpu.csv"]


def test_a_damaged_store_is_left_alone_with_a_warning(tmp_path, caplog):
    storage = tmp_path / "runs"
    (storage / "mlartifacts").mkdir(parents=True)
    (storage / "mlflow.db").write_bytes(b"")  # an empty file: no tables
    assert relocate_artifacts(default_tracking_uri(storage), storage / "mlartifacts") == []
    assert "cannot point a moved store's artifacts" in caplog.text and "no such table" in caplog.text


@pytest.mark.slow
def test_ui_over_a_moved_store_says_so_and_serves_its_artifacts(tmp_path, stop_at_teardown):
    written = tmp_path / "gpu-machine" / "gpu-study"
    run_id = _store_with_an_artifact(written)
    moved = tmp_path / "gpu-study"
    shutil.move(written, moved)
    port = free_port()
    command = [sys.executable, "-m", "smcl_tune.cli", "ui", "--storage", str(moved), "--port", str(port)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    stop_at_teardown(process)
    first_line = next(process.stdout).strip()
    assert first_line.endswith(
        f"{moved / 'mlflow.db'}: the store was moved; its artifacts, recorded under "
        f"{(written / 'mlartifacts').as_uri()}, are now read from {(moved / 'mlartifacts').as_uri()}"
    )
    url = f"http://127.0.0.1:{port}/api/2.0/mlflow/artifacts/list?run_id={run_id}&path=leaderboard"
    deadline, listing = time.time() + 120, None
    while listing is None:
        try:
            listing = json.load(urllib.request.urlopen(url, timeout=5))
        except OSError:
            assert time.time() < deadline and process.poll() is None, "the MLflow UI did not start"
            time.sleep(0.5)
    assert [item["path"] for item in listing["files"]] == ["leaderboard/gpu.csv"]
