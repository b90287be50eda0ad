"""A tracking server that does not answer (study/tracking_outage.py; issue 26, item 4).

Without Ray: the wait says so once, gives up after tracking.outage_timeout_s with a message naming
the server, and MLflow's own retries (urllib3's warnings) are off; the field is checked like any
other. In a study, against a real `mlflow server` on 127.0.0.1 as the study's tracking.uri that
goes away in the middle: a short outage is waited for, saying so, and loses no metric and
duplicates no run; one longer than tracking.outage_timeout_s stops the study with one line naming
the server, and the same command resumes once it is back."""

import http.server
import logging
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import yaml
from mlflow.tracking import MlflowClient

from smcl_tune.study.tracking_outage import TrackingServerDown, quiet_mlflow_retries, wait_for_tracking_server
from tests.fixtures.cluster_stores import started_server
from tests.fixtures.ports import free_port
from tests.fixtures.tcp_proxy import TcpProxy


class TrackingServer:
    """`mlflow server` on 127.0.0.1 with its store in `folder`; stopped and started again on one port."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.database = folder / "server.db"
        self.uri = f"http://127.0.0.1:{free_port()}"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        port = self.uri.rsplit(":", 1)[1]
        command = [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", port]
        command += ["--backend-store-uri", f"sqlite:///{self.database}", "--workers", "1"]
        command += ["--default-artifact-root", str(self.folder / "artifacts")]
        environment = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}  # no GenAI job runner
        self.process = started_server(command, f"{self.uri}/health", self.folder / "server.log", environment)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)  # the server and its workers, gone at once
            self.process.wait(timeout=60)

    def logged_losses(self) -> int:
        """How many epochs' losses the server's store holds (read from its file, not over HTTP)."""
        if not self.database.exists():
            return 0
        with sqlite3.connect(f"file:{self.database}?mode=ro", uri=True, timeout=30) as store:
            return store.execute("SELECT COUNT(*) FROM metrics WHERE key = 'loss'").fetchone()[0]


@pytest.fixture(scope="module")
def _one_server(tmp_path_factory):
    """One `mlflow server` for the file (its start costs about 7 CPU-s): each test's study has a
    name of its own, and an outage is the proxy in front of it going away (tracking_server)."""
    server = TrackingServer(tmp_path_factory.mktemp("server"))
    server.start()
    yield server
    server.stop()


class ProxiedServer:
    """The module's server as a study sees it: through a TCP proxy that `stop()` takes away (the
    port closed, every connection cut, as a killed server leaves them) and `start()` brings back."""

    def __init__(self, server: TrackingServer) -> None:
        self.server = server
        self.proxy = TcpProxy(("127.0.0.1", int(server.uri.rsplit(":", 1)[1])))
        self.uri = f"http://{self.proxy.address}"
        self.earlier_losses = server.logged_losses()  # the file's earlier tests'

    def start(self) -> None:
        self.proxy.start()

    def stop(self) -> None:
        self.proxy.stop()

    def logged_losses(self) -> int:
        """How many epochs' losses this test's study has logged."""
        return self.server.logged_losses() - self.earlier_losses


@pytest.fixture
def tracking_server(_one_server):
    server = ProxiedServer(_one_server)
    server.start()
    yield server
    server.stop()


def _start_study(study: Path, output_name: str, environment: dict[str, str]) -> subprocess.Popen:
    """`smcl-tune run STUDY` in the background, its output (plain lines) in `output_name` beside the
    study; it joins the session's Ray (`environment`): where Ray runs is not this file's subject."""
    output = (study.parent / output_name).open("w")
    return subprocess.Popen(
        [sys.executable, "-m", "smcl_tune.cli", "run", str(study)],
        cwd=study.parent,
        stdout=output,
        stderr=subprocess.STDOUT,
        text=True,
        env=environment,
    )


@contextmanager
def _killed_unless_ended(run: subprocess.Popen) -> Iterator[None]:
    """A study the test gave up on is killed, so no driver outlives the test."""
    try:
        yield
    finally:
        if run.poll() is None:
            run.kill()
            run.wait()


def _stop_after_first_epoch(server: ProxiedServer, run: subprocess.Popen) -> None:
    deadline = time.monotonic() + 300
    while server.logged_losses() == 0:
        assert run.poll() is None, "the study ended before the server was stopped"
        assert time.monotonic() < deadline, "no epoch was logged in time"
        time.sleep(0.2)
    server.stop()


def _wait_for_line(path: Path, text: str, run: subprocess.Popen, timeout: float = 300) -> None:
    """Until the study's output file says `text` (the driver's wait has begun)."""
    deadline = time.monotonic() + timeout
    while text not in path.read_text():
        assert run.poll() is None, path.read_text()[-3000:]
        assert time.monotonic() < deadline, f"no line says {text!r}"
        time.sleep(0.1)


def _assert_every_epoch_logged_once(server: ProxiedServer, trial_runs, study: str) -> None:
    """Every trial's epochs once, its final test metrics and result files, and the study run finished."""
    client = MlflowClient(server.uri)
    runs = trial_runs(client, study)
    assert sorted(run.data.tags["mlflow.runName"] for run in runs) == ["trial-000", "trial-001"]  # none twice
    for run in runs:
        name = run.data.tags["mlflow.runName"]
        assert run.info.status == "FINISHED"
        steps = [metric.step for metric in client.get_metric_history(run.info.run_id, "loss")]
        assert sorted(steps) == [0, 1, 2], name
        assert {"test_top1", "test_balanced_accuracy", "test_few"} <= set(run.data.metrics), name
        files = {artifact.path for artifact in client.list_artifacts(run.info.run_id)}
        assert {"result.json", "per_class_accuracy.csv"} <= files, (name, files)
    experiment = client.get_experiment_by_name(study)
    (study_run,) = client.search_runs([experiment.experiment_id], "tags.`smcl.role` = 'study'")
    assert study_run.info.status == "FINISHED"
    status = subprocess.run(
        [sys.executable, "-m", "smcl_tune.cli", "status", study, "--tracking-uri", server.uri],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert f"study {study}: finished, 2 of 2 trials ended" in status.stdout, status.stdout + status.stderr


@pytest.mark.ray
@pytest.mark.slow
def test_a_short_outage_is_waited_for_and_loses_nothing(tmp_path, tracking_server, tiny_study, trial_runs, joining_env):
    tracking = {"uri": tracking_server.uri, "outage_timeout_s": 300}
    study = tiny_study(tmp_path, name="short", num_trials=2, scheduler={"type": "fifo"}, tracking=tracking)
    run = _start_study(study, "run.out", joining_env)
    with _killed_unless_ended(run):
        _stop_after_first_epoch(tracking_server, run)
        _wait_for_line(tmp_path / "run.out", f"waiting for the tracking server {tracking_server.uri}", run)
        tracking_server.start()
        run.wait(timeout=600)
    output = (tmp_path / "run.out").read_text()
    assert run.returncode == 0, output
    assert f"waiting for the tracking server {tracking_server.uri}" in output
    assert f"the tracking server {tracking_server.uri} answers again" in output
    assert "Retrying" not in output and "urllib3" not in output and "Traceback" not in output
    assert "View run" not in output and "View experiment" not in output  # MLflow's own lines, with the server's URL
    _assert_every_epoch_logged_once(tracking_server, trial_runs, "short")
    with_user = tracking_server.uri.replace("http://", "http://alice:hunter2@")  # as a user may give it
    done = subprocess.run(
        [sys.executable, "-m", "smcl_tune.cli", "status", "nosuch", "--tracking-uri", with_user],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert (
        done.returncode == 2
        and "hunter2" not in done.stderr
        and "no study named 'nosuch' in http://***@" in (done.stderr)
    )


@pytest.mark.ray
@pytest.mark.slow
def test_a_long_outage_stops_the_study_and_the_same_command_resumes(
    tmp_path, tracking_server, tiny_study, trial_runs, joining_env
):
    tracking = {"uri": tracking_server.uri, "outage_timeout_s": 4}
    study = tiny_study(tmp_path, name="long", num_trials=2, scheduler={"type": "fifo"}, tracking=tracking)
    run = _start_study(study, "stopped.out", joining_env)
    with _killed_unless_ended(run):
        _stop_after_first_epoch(tracking_server, run)
        run.wait(timeout=300)
    output = (tmp_path / "stopped.out").read_text()
    assert run.returncode == 1, output
    assert "Traceback" not in output and "Retrying" not in output
    expected = (
        f"smcl-tune: the tracking server {tracking_server.uri} has not answered for 4 s (tracking.outage_timeout_s: 4)"
    )
    assert output.strip().splitlines()[-1].startswith(expected), output

    tracking_server.start()
    # A resumed run takes the study file's outage bound as it is now (it is not part of what the
    # study is): a generous one, so that a busy machine's slow answer is not taken for an outage.
    study.write_text(study.read_text().replace("outage_timeout_s: 4", "outage_timeout_s: 300"))
    resumed = _start_study(study, "resumed.out", joining_env)
    with _killed_unless_ended(resumed):
        resumed.wait(timeout=600)
    output = (tmp_path / "resumed.out").read_text()
    assert resumed.returncode == 0, output
    _assert_every_epoch_logged_once(tracking_server, trial_runs, "long")


def test_a_server_that_stays_down_ends_the_wait_after_the_bound(monkeypatch, caplog):
    for name in ("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "MLFLOW_HTTP_REQUEST_TIMEOUT"):
        monkeypatch.setenv(name, "")  # recorded as it was, so that what quiet_mlflow_retries sets goes at the end
        monkeypatch.delenv(name)
    quiet_mlflow_retries()
    uri = f"http://127.0.0.1:{free_port()}"  # nothing listens there once the probe is closed
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


class AnsweringServer:
    """An HTTP server on 127.0.0.1 that answers every request with `status`."""

    def __init__(self, status: int) -> None:
        code = status

        class Handler(http.server.BaseHTTPRequestHandler):
            def _answer(self):
                body = b'{"error_code": "RESOURCE_DOES_NOT_EXIST", "message": "no such thing"}'
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = _answer

            def log_message(self, *_):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.uri = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.mark.parametrize(("status", "outage"), [(404, False), (403, False), (500, True), (503, True)])
def test_over_http_a_4xx_answer_is_not_an_outage_and_a_5xx_is(monkeypatch, status, outage):
    for name in ("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "MLFLOW_HTTP_REQUEST_TIMEOUT"):
        monkeypatch.setenv(name, "")
        monkeypatch.delenv(name)
    quiet_mlflow_retries()
    server = AnsweringServer(status)
    try:
        client = MlflowClient(server.uri)
        with pytest.raises(Exception) as raised:
            wait_for_tracking_server(lambda: client.get_run("0" * 32), "a test read", server.uri, timeout_s=2)
    finally:
        server.close()
    assert isinstance(raised.value, TrackingServerDown) == outage, raised.value
