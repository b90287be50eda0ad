"""A study on the stores of a cluster without a shared folder (Ray's results in S3, the Optuna
study in PostgreSQL, MLflow as a server on PostgreSQL and S3) keeps nothing on the driver's disk:
killed in one folder, it resumes from another, empty one, and is read from a third."""

import os
import shutil
import signal
import subprocess
import sys
import time

import optuna
import pytest
from mlflow.tracking import MlflowClient

from smcl_tune.store.database import optuna_storage
from tests.fixtures.cluster_stores import S3_ENVIRONMENT

pytestmark = [pytest.mark.ray, pytest.mark.slow]

EPOCHS = 3


def _wait_mid_study(client: MlflowClient, name: str, trial_runs, driver: subprocess.Popen, timeout: float = 300):
    """Until one trial has finished and another has logged an epoch."""
    deadline = time.time() + timeout
    while time.time() < deadline and driver.poll() is None:
        try:
            runs = trial_runs(client, name)
        except Exception:  # the experiment may not exist yet
            runs = []
        finished = [run for run in runs if run.info.status == "FINISHED"]
        running = [
            run for run in runs if run.info.status == "RUNNING" and client.get_metric_history(run.info.run_id, "loss")
        ]
        if finished and running:
            return
        time.sleep(0.3)
    raise AssertionError(f"the study did not reach its middle (driver exit {driver.poll()})")


def test_a_study_on_cluster_stores_killed_in_one_folder_resumes_from_another(
    tmp_path, tiny_study, postgres_server, s3_server, team_tracking_server, trial_runs, run_cli, monkeypatch
):
    monkeypatch.setenv("PGPASSWORD", postgres_server.study_password)
    database = postgres_server.new_database("headless")
    environment = {key: value for key, value in os.environ.items() if key != "RAY_ADDRESS"}  # Ray of its own
    environment.update(S3_ENVIRONMENT, PGPASSWORD=postgres_server.study_password)
    first, second, reader = (tmp_path / name for name in ("head-1", "head-2", "reader"))
    for folder in (first, second, reader):
        folder.mkdir()
    path = tiny_study(
        first,
        name="headless",
        num_trials=3,
        scheduler={"type": "fifo"},
        storage=s3_server.storage("runs"),
        optuna={"storage": database},
        tracking={"uri": team_tracking_server.uri},
    )
    command = [sys.executable, "-m", "smcl_tune.cli", "run", path.name]
    driver = subprocess.Popen(
        command, cwd=first, env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True
    )
    client = MlflowClient(team_tracking_server.uri)
    try:
        _wait_mid_study(client, "headless", trial_runs, driver)
    finally:
        os.killpg(driver.pid, signal.SIGKILL)  # the head node is lost, its driver and its Ray with it
        driver.wait()

    shutil.copy(path, second / path.name)  # the same study file, on another machine
    log = tmp_path / "resumed.log"
    with log.open("w") as output:
        resumed = subprocess.Popen(command, cwd=second, env=environment, stdout=output, stderr=subprocess.STDOUT)
        try:
            resumed.wait(timeout=300)
        finally:
            if resumed.poll() is None:
                resumed.kill()
    if resumed.returncode != 0:
        s3_server.download("runs/headless/", tmp_path / "s3")
    assert resumed.returncode == 0, log.read_text()[-6000:]
    assert "resuming study headless" in log.read_text()

    runs = trial_runs(client, "headless")
    assert len(runs) == 3 and {run.info.status for run in runs} == {"FINISHED"}
    for run in runs:  # one run per trial, each epoch logged once across the kill
        steps = [metric.step for metric in client.get_metric_history(run.info.run_id, "loss")]
        assert sorted(steps) == list(range(EPOCHS)), (run.info.run_name, steps)
    trials = optuna.load_study(study_name="headless", storage=optuna_storage(database)).trials
    assert len(trials) == 3 and all(trial.state.is_finished() for trial in trials)

    assert s3_server.keys("runs/headless/")  # Ray's experiment state and checkpoints
    artifacts = s3_server.keys("mlartifacts/")
    for run in runs:  # what the UI shows of each trial lies in S3
        mine = [key for key in artifacts if f"/{run.info.run_id}/artifacts/" in key]
        assert any(key.endswith("confusion_matrix.png") for key in mine), mine
        assert any(key.endswith(".csv") for key in mine), mine
    for folder in (first, second):  # nothing of the study on either head's disk
        assert not (folder / "smcl-runs").exists(), sorted(str(p) for p in (folder / "smcl-runs").rglob("*"))

    status = run_cli("status", "headless", "--tracking-uri", team_tracking_server.uri, cwd=reader, env=environment)
    assert status.returncode == 0 and "finished" in status.stdout, status.stdout + status.stderr
    board = run_cli(
        "leaderboard",
        "headless",
        "--tracking-uri",
        team_tracking_server.uri,
        "--format",
        "html",
        "--output",
        "board.html",
        cwd=reader,
        env=environment,
    )
    assert board.returncode == 0, board.stderr[-3000:]
    assert "trial-000" in (reader / "board.html").read_text()
