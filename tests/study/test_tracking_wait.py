"""Waiting for a tracking server that does not answer (issue 26, item 4), without Ray: the wait
says so once, gives up after tracking.outage_timeout_s with a message naming the server, and
MLflow's own retries (urllib3's warnings) are off; the field is checked like any other."""

import logging
import socket
import subprocess
import sys
import time

import pytest
import yaml
from mlflow.tracking import MlflowClient

from smcl_tune.study.tracking_outage import TrackingServerDown, quiet_mlflow_retries, wait_for_tracking_server


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]  # nothing listens once the probe is closed


def test_a_server_that_stays_down_ends_the_wait_after_the_bound(monkeypatch, caplog):
    for name in ("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "MLFLOW_HTTP_REQUEST_TIMEOUT"):
        monkeypatch.delenv(name, raising=False)
    quiet_mlflow_retries()
    uri = f"http://127.0.0.1:{_closed_port()}"
    client = MlflowClient(uri)
    started = time.monotonic()
    with caplog.at_level(logging.WARNING), pytest.raises(TrackingServerDown) as stopped:
        wait_for_tracking_server(client.search_experiments, "a test write", uri, timeout_s=2)
    assert time.monotonic() - started < 10  # MLflow alone retries for minutes
    assert str(stopped.value).startswith(f"the tracking server {uri} has not answered for 2 s")
    assert "run the same command again" in str(stopped.value)
    waiting = [
        record.getMessage() for record in caplog.records if "waiting for the tracking server" in record.getMessage()
    ]
    assert len(waiting) == 1
    assert not [record for record in caplog.records if record.name.startswith("urllib3")]


def test_an_answer_of_the_server_is_not_an_outage(tmp_path):
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    with pytest.raises(Exception) as refused:  # an error the store answers with: raised at once
        wait_for_tracking_server(lambda: client.get_run("0" * 32), "a test read", "sqlite://", timeout_s=5)
    assert not isinstance(refused.value, TrackingServerDown)


def test_a_non_positive_outage_timeout_is_refused(tmp_path, tiny_study):
    study = tiny_study(tmp_path, tracking={"outage_timeout_s": 0})
    done = subprocess.run(
        [sys.executable, "-m", "smcl_tune.cli", "validate", str(study)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 2, done.stderr
    assert "tracking.outage_timeout_s" in done.stderr and "Traceback" not in done.stderr
    shown = yaml.safe_load(
        subprocess.run(
            [sys.executable, "-m", "smcl_tune.cli", "validate", str(tiny_study(tmp_path, name="shown"))],
            capture_output=True,
            text=True,
            timeout=120,
        ).stdout
    )
    assert shown["tracking"]["outage_timeout_s"] == 600
