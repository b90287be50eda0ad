"""The main job: `smcl-tune run studies/quickstart.yaml`, end to end, in a temporary folder,
watched meanwhile with `smcl-tune status` and `smcl-tune dashboard` as a user would."""

import re
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
from mlflow.tracking import MlflowClient

from smcl_tune.store.paths import default_tracking_uri

pytestmark = [pytest.mark.ray, pytest.mark.slow]

QUICKSTART = Path(__file__).resolve().parents[2] / "studies" / "quickstart.yaml"


def _watch_while_running(run: subprocess.Popen, storage: Path, cli, dashboard_studies) -> tuple[str, tuple]:
    """`smcl-tune status quickstart` once a trial has ended, and the dashboard's view of the study."""
    deadline = time.time() + 900
    while run.poll() is None and time.time() < deadline:
        status = cli("status", "quickstart", "--storage", str(storage), cwd=storage.parent)
        if status.returncode == 0 and "completed" in status.stdout and "running," in status.stdout:
            return status.stdout, dashboard_studies(storage, "quickstart")
        time.sleep(10)  # each status call starts a Python process: poll gently on a 2-core machine
    raise AssertionError("the study ended before status saw it running with a trial ended")


def test_quickstart_study_end_to_end(tmp_path, run_cli, dashboard_studies):
    storage = tmp_path / "smcl-runs"
    out_file, err_file = tmp_path / "stdout.txt", tmp_path / "stderr.txt"
    with out_file.open("w") as out, err_file.open("w") as err:
        run = subprocess.Popen(
            [sys.executable, "-m", "smcl_tune.cli", "run", str(QUICKSTART)], cwd=tmp_path, stdout=out, stderr=err
        )
        try:
            status_while_running, (dashboard_names, dashboard_trials) = _watch_while_running(
                run, storage, run_cli, dashboard_studies
            )
            run.wait(timeout=1200)
        finally:
            if run.poll() is None:
                run.kill()
    stdout, stderr = out_file.read_text(), err_file.read_text()
    assert run.returncode == 0, stderr[-3000:]
    assert "study quickstart: running" in status_while_running and "ETA" in status_while_running
    assert "best " in status_while_running and "to go" in status_while_running
    assert dashboard_names == ["quickstart"] and dashboard_trials[0] >= 1

    # not a terminal: plain lines, one per trial that ended, and none of Ray's status tables
    ended = re.findall(r"^\d\d:\d\d:\d\d \S+: (?:finished after|stopped early at|failed at)", stdout, re.MULTILINE)
    assert len(ended) == 9, stdout[-3000:]
    assert "Trial status" not in stdout + stderr and "Configuration for experiment" not in stdout
    status_after = run_cli("status", "quickstart", "--storage", str(storage), cwd=tmp_path)
    assert status_after.stdout.startswith("study quickstart: finished, 9 of 9 trials ended"), status_after.stdout

    table = stdout[stdout.index("study quickstart:", stdout.index("ran for")) :]
    assert "rank  trial" in table and "baseline-ce" in table
    assert len([line for line in table.splitlines() if line.strip()[:1].isdigit()]) == 9

    client = MlflowClient(tracking_uri=default_tracking_uri(storage))
    experiment = client.get_experiment_by_name("quickstart")
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"  # the UI opens on its runs
    runs = client.search_runs([experiment.experiment_id], max_results=100)
    parent = next(run for run in runs if run.data.tags.get("smcl.role") == "study")
    children = [run for run in runs if run.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert parent.info.status == "FINISHED" and len(children) == 9
    assert all(run.info.status in ("FINISHED", "KILLED") for run in children)
    for run in children:
        if run.data.tags["smcl.state"] == "completed":
            assert {"test_top1", "test_many", "test_medium", "test_few", "loss_msc"} <= set(run.data.metrics)
        # every SMCL trial shows its masks (from epoch 1, the first that masks), stopped early or not
        artifacts = {item.path for item in client.list_artifacts(run.info.run_id)}
        assert ("mask_gallery.png" in artifacts) == (run.data.tags["smcl.method"] == "smcl"), run.info.run_name
    sampled = [run for run in children if run.data.tags["smcl.role"] == "search"]
    assert {"saliency_threshold", "temperature", "loss_weight", "mask_probability"} <= set(sampled[0].data.params)

    study = optuna.load_study(study_name="quickstart", storage=f"sqlite:///{storage / 'quickstart' / 'optuna.db'}")
    assert len(study.trials) == 8
    assert all(
        trial.state in (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED) for trial in study.trials
    )
