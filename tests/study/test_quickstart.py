"""The main job: `smcl-tune run studies/quickstart.yaml`, end to end, in a temporary folder."""

import subprocess
import sys
from pathlib import Path

import optuna
import pytest
from mlflow.tracking import MlflowClient

from smcl_tune.tracking import default_tracking_uri

pytestmark = [pytest.mark.ray, pytest.mark.slow]

QUICKSTART = Path(__file__).resolve().parents[2] / "studies" / "quickstart.yaml"


def test_quickstart_study_end_to_end(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "smcl_tune.cli", "run", str(QUICKSTART)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    table = done.stdout[done.stdout.index("study quickstart:") :]
    assert "rank  trial" in table and "baseline-ce" in table
    assert len([line for line in table.splitlines() if line.strip()[:1].isdigit()]) == 9

    storage = tmp_path / "smcl-runs"
    client = MlflowClient(tracking_uri=default_tracking_uri(storage))
    experiment = client.get_experiment_by_name("quickstart")
    runs = client.search_runs([experiment.experiment_id], max_results=100)
    parent = next(run for run in runs if run.data.tags.get("smcl.role") == "study")
    children = [run for run in runs if run.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert parent.info.status == "FINISHED" and len(children) == 9
    assert all(run.info.status in ("FINISHED", "KILLED") for run in children)
    for run in children:
        if run.data.tags["smcl.state"] == "completed":
            assert {"test_top1", "test_many", "test_medium", "test_few", "loss_msc"} <= set(run.data.metrics)
    sampled = [run for run in children if run.data.tags["smcl.role"] == "search"]
    assert {"saliency_threshold", "temperature", "loss_weight", "mask_probability"} <= set(sampled[0].data.params)

    study = optuna.load_study(study_name="quickstart", storage=f"sqlite:///{storage / 'quickstart' / 'optuna.db'}")
    assert len(study.trials) == 8
    assert all(
        trial.state in (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED) for trial in study.trials
    )
