"""A study's object store (`storage: s3://...`) that goes away mid-study: a short outage is waited
for (the trials' checkpoints reach the store once it is back), a long one stops the study with one
line naming the store and `storage_outage_timeout_s` (exit 1), and the same command then finishes
the study, each epoch logged once and no trial recorded as failed."""

import logging
import subprocess
import sys
import threading
import time

import optuna
import pytest
from mlflow.tracking import MlflowClient

from smcl_tune.store.paths import default_tracking_uri
from tests.fixtures.cluster_stores import S3_ENVIRONMENT, S3Server
from tests.fixtures.tcp_proxy import TcpProxy
from tests.fixtures.tracking_store import wait_for_logged_losses

pytestmark = [pytest.mark.ray, pytest.mark.slow]

TIMEOUT_S = 8
OUTAGE_BEYOND_PYARROWS_RETRIES_S = 10


@pytest.fixture
def s3_behind_a_proxy(s3_server):
    host, port = s3_server.endpoint.split(":")
    proxy = TcpProxy((host, int(port)))
    proxy.start()
    try:
        yield proxy
    finally:
        proxy.stop()


class _Lines:
    """A pipe's lines as they come, read by a thread of their own."""

    def __init__(self, pipe) -> None:
        self.lines: list[str] = []
        self.thread = threading.Thread(target=lambda: self.lines.extend(pipe), daemon=True)
        self.thread.start()

    def wait_for(self, text: str, driver: subprocess.Popen, timeout: float = 300) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and driver.poll() is None:
            if any(text in line for line in self.lines):
                return
            time.sleep(0.1)
        raise AssertionError(f"no line says {text!r} (driver exit {driver.poll()}):\n{self.text()[-3000:]}")

    def text(self) -> str:
        self.thread.join(timeout=10)
        return "".join(self.lines)


def test_an_object_store_going_away_is_waited_for_then_stops_the_study_resumably(
    tmp_path, tiny_study, s3_behind_a_proxy, trial_runs, joining_env
):
    proxy = s3_behind_a_proxy
    storage = S3Server(proxy.address).storage("outage")
    path = tiny_study(
        tmp_path,
        name="outage",
        num_trials=2,
        max_concurrent=1,  # 6 epochs one after another: an outage lands mid-study, another after it
        scheduler={"type": "fifo"},
        storage=storage,
        storage_outage_timeout_s=TIMEOUT_S,
    )
    # the session's Ray, whose workers have the S3 keys (tests/conftest.py): where Ray runs is not the subject
    environment = {**joining_env, **S3_ENVIRONMENT, "RAY_DEDUP_LOGS": "0"}
    tracking_database = tmp_path / "smcl-runs" / "mlflow.db"
    command = [sys.executable, "-m", "smcl_tune.cli", "run", str(path)]
    driver = subprocess.Popen(
        command, cwd=tmp_path, env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    output, error = _Lines(driver.stdout), _Lines(driver.stderr)
    try:
        wait_for_logged_losses(tracking_database, driver)
        proxy.stop()  # shorter than storage_outage_timeout_s: waited for
        error.wait_for("waiting for the object store", driver)  # a trial's next checkpoint found it gone
        proxy.start()
        error.wait_for("answers again", driver)  # that checkpoint reached the store: at least 3 epochs are left
        proxy.stop()  # for good
        driver.wait(timeout=180)
    finally:
        if driver.poll() is None:
            driver.kill()
    output, error = output.text(), error.text()
    assert driver.returncode == 1, output[-2000:] + error[-4000:]
    stopped = [line for line in error.splitlines() if "has not answered for" in line]
    assert len(stopped) == 1, error[-4000:]
    assert stopped[0].startswith(f"smcl-tune: the object store {storage.replace('/outage?', '/outage/outage?')}")
    assert f"storage_outage_timeout_s: {TIMEOUT_S}" in stopped[0] and "Traceback" not in error, error[-4000:]

    proxy.start()
    resumed = subprocess.run(command, cwd=tmp_path, env=environment, capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stdout[-2000:] + resumed.stderr[-3000:]
    client = MlflowClient(default_tracking_uri(tmp_path / "smcl-runs"))
    runs = trial_runs(client, "outage")
    assert sorted(run.data.tags["mlflow.runName"] for run in runs) == ["trial-000", "trial-001"]
    for run in runs:
        assert run.info.status == "FINISHED"
        assert sorted(metric.step for metric in client.get_metric_history(run.info.run_id, "loss")) == [0, 1, 2]
        logged = {artifact.path for artifact in client.list_artifacts(run.info.run_id)}
        # read by the driver from the trial's last checkpoint in the store
        assert {"result.json", "per_class_accuracy.csv", "confusion_matrix.png"} <= logged, logged
    optuna_file = tmp_path / "smcl-runs" / "outage" / "optuna.db"
    trials = optuna.load_study(study_name="outage", storage=f"sqlite:///{optuna_file}").trials
    assert [trial.state for trial in trials] == [optuna.trial.TrialState.COMPLETE] * 2


def _upload_checkpoint(s3_server, prefix: str, files: dict[str, bytes]) -> None:
    import boto3

    from tests.fixtures.cluster_stores import BUCKET, boto_credentials

    client = boto3.client("s3", endpoint_url=f"http://{s3_server.endpoint}", **boto_credentials())
    for name, content in files.items():
        client.put_object(Bucket=BUCKET, Key=f"{prefix}/{name}", Body=content)


def test_the_driver_reads_a_trials_result_files_through_an_outage_and_stops_the_study_past_it(
    s3_server, s3_behind_a_proxy, monkeypatch, caplog
):
    import pyarrow.fs
    from ray.tune import Checkpoint

    from smcl_tune.study.object_store_outage import ObjectStoreDown, object_store_outage
    from smcl_tune.study.outage_wait import stopping_on_study_stop
    from smcl_tune.study.tracking_callback import TrackingCallback

    for name, value in S3_ENVIRONMENT.items():
        monkeypatch.setenv(name, value)
    proxy = s3_behind_a_proxy
    _upload_checkpoint(s3_server, "reader/checkpoint_000002", {"result.json": b"{}", "per_class.csv": b"class\n"})
    uri = S3Server(proxy.address).storage("reader")
    filesystem, _ = pyarrow.fs.FileSystem.from_uri(uri)
    checkpoint = Checkpoint(path="smcl/reader/checkpoint_000002", filesystem=filesystem)
    callback = TrackingCallback({}, store_outage=object_store_outage(uri, timeout_s=20))

    proxy.stop()
    # longer than pyarrow's own retries of one read (a few seconds): this wait, not theirs, rides it out
    back = threading.Timer(OUTAGE_BEYOND_PYARROWS_RETRIES_S, proxy.start)
    back.start()
    with caplog.at_level(logging.WARNING, logger="smcl_tune.study.outage_wait"):
        files = callback._checkpoint_files(checkpoint, ("result.json", "per_class.csv", "gallery.png"), "result files")
    back.join()
    assert files == {"result.json": b"{}", "per_class.csv": b"class\n"}
    said = caplog.text
    assert "waiting for the object store s3://smcl/reader?" in said and "answers again" in said, said

    proxy.stop()
    callback.store_outage = object_store_outage(uri, timeout_s=1)
    stopped = pytest.raises(ObjectStoreDown, match=r"has not answered for \d+ s \(storage_outage_timeout_s: 1\)")
    with stopped, stopping_on_study_stop():  # Ray would take the error for the trial's: it waits for the fit's end
        assert callback._checkpoint_files(checkpoint, ("result.json",), "result files") is None
