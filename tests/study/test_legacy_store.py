"""A study that an earlier smcl-tune (record format 3, before the modules moved) started and an
interrupt stopped is resumed by today's code with the same command (see smcl_tune/moved_modules.py)."""

import json
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

pytestmark = [pytest.mark.ray, pytest.mark.slow]

ARCHIVE = Path(__file__).parent / "legacy_store" / "format3_store.tar.gz"
FOLDER = Path("/tmp/smcl-tune-legacy-format3")  # the store names its own absolute paths (make_store.py)
EPOCHS = 4


@pytest.fixture
def legacy_store():
    shutil.rmtree(FOLDER, ignore_errors=True)
    with tarfile.open(ARCHIVE) as archive:
        archive.extractall(FOLDER.parent, filter="data")
    yield FOLDER
    shutil.rmtree(FOLDER, ignore_errors=True)


def _trial_runs(client: MlflowClient) -> dict:
    runs = client.search_runs(["1"], max_results=100)
    return {run.info.run_name: run for run in runs if run.data.tags.get("smcl.role") != "study"}


def test_a_study_started_before_the_modules_moved_resumes(legacy_store, joining_env):
    client = MlflowClient(tracking_uri=f"sqlite:///{legacy_store / 'smcl-runs' / 'mlflow.db'}")
    before = _trial_runs(client)
    assert [name for name, run in before.items() if run.info.status == "FINISHED"] == [
        "baseline-ce [imbalance_factor=10]"
    ]

    resumed = subprocess.run(
        [sys.executable, "-m", "smcl_tune.cli", "run", "legacy.yaml"],
        cwd=legacy_store,
        capture_output=True,
        text=True,
        timeout=300,
        env=joining_env,  # the session's Ray: where Ray runs is not the subject here
    )
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "resuming study legacy" in resumed.stderr
    after = _trial_runs(client)
    assert sorted(after) == [
        "baseline-ce [imbalance_factor=10]",
        "trial-000 [imbalance_factor=10]",
        "trial-001 [imbalance_factor=10]",
    ]
    assert all(run.info.status == "FINISHED" for run in after.values())
    for name, run in after.items():
        steps = [metric.step for metric in client.get_metric_history(run.info.run_id, "loss")]
        assert sorted(steps) == list(range(EPOCHS)), (name, steps)  # each epoch logged once: nothing redone twice
    # The interrupted trial went on from its checkpoint, not from scratch: the history its result file
    # holds is the one the first run trained (an epoch's time is never the same twice).
    interrupted = after["trial-000 [imbalance_factor=10]"].info.run_id
    first_epoch = client.get_metric_history(interrupted, "epoch_seconds")
    with tempfile.TemporaryDirectory() as folder:
        result = json.loads(Path(client.download_artifacts(interrupted, "result.json", folder)).read_text())
    assert [epoch["epoch_seconds"] for epoch in result["history"]] == [
        metric.value for metric in sorted(first_epoch, key=lambda metric: metric.step)
    ]
