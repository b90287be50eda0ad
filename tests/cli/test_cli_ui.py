"""`smcl-tune ui` serves the MLflow UI on 127.0.0.1 over the study store, then stops cleanly."""

import signal
import subprocess
import sys
import time
import urllib.request

import psutil
import pytest

from tests.fixtures.ports import free_port

pytestmark = [pytest.mark.slow]


def test_ui_over_a_folder_without_a_store_is_refused_in_one_line_and_creates_nothing(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "smcl_tune.cli", "ui", "--storage", str(tmp_path / "runs")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2
    assert done.stderr.strip() == (
        f"smcl-tune: {tmp_path / 'runs' / 'mlflow.db'}: no MLflow store there; run a study first, or pass --storage "
        "or --tracking-uri"
    )
    assert list(tmp_path.iterdir()) == []  # as `status` there: no store of MLflow's making


@pytest.mark.parametrize(
    "command", [["leaderboard", "lt"], ["status"], ["ui", "--port", "9"]], ids=["leaderboard", "status", "ui"]
)
def test_a_tracking_uri_without_a_store_or_that_is_a_path_is_refused_in_one_line_and_creates_nothing(tmp_path, command):
    database = tmp_path / "runs" / "mlflow.db"

    def refused(uri: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "smcl_tune.cli", *command, "--tracking-uri", uri],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=tmp_path,
        )
        assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1, done.stderr
        return done.stderr.strip()

    missing = f"smcl-tune: --tracking-uri: {database}: no MLflow store there; run a study first, or check the URI"
    assert refused(f"sqlite:///{database}") == missing
    assert list(tmp_path.iterdir()) == []  # MLflow would have made the folder and an empty store
    database.parent.mkdir()
    database.write_bytes(b"")  # a study's sqlite file, named as a path
    assert (
        refused(str(database))
        == f"smcl-tune: --tracking-uri: {database} is a path, not a URI: write sqlite:///{database}"
    )
    # a folder: a study's storage (MLflow 3 reads no folder store), or any other
    assert refused(str(database.parent)) == (
        f"smcl-tune: --tracking-uri: {database.parent} is a folder, which MLflow 3 reads no store from: "
        f"give --storage {database.parent}"
    )
    assert refused(str(tmp_path)) == (
        f"smcl-tune: --tracking-uri: {tmp_path} is a folder, which MLflow 3 reads no store from: "
        "give sqlite:///PATH of a study's mlflow.db, or --storage FOLDER"
    )


def test_ui_over_a_tracking_server_is_refused_pointing_to_the_servers_own_ui(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "smcl_tune.cli", "ui", "--tracking-uri", "http://127.0.0.1:9"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2
    assert done.stderr.startswith("smcl-tune: --tracking-uri: http://127.0.0.1:9 is a tracking server: open its own UI")


def test_ui_answers_200_and_stops_on_ctrl_c_with_every_process_it_started(tmp_path, stop_at_teardown):
    from mlflow.tracking import MlflowClient

    from smcl_tune.store.paths import default_tracking_uri

    (tmp_path / "runs").mkdir()
    MlflowClient(default_tracking_uri(tmp_path / "runs")).search_experiments()  # a store, as a study leaves one
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "smcl_tune.cli", "ui", "--storage", str(tmp_path / "runs"), "--port", str(port)],
        # as from a terminal: a launcher that ran these tests as a background job would have
        # left SIGINT ignored, and the child would inherit that
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    stop_at_teardown(process)
    deadline, status = time.time() + 120, None
    while time.time() < deadline and status is None:
        try:
            status = urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5).status
        except OSError:
            assert process.poll() is None, process.stdout.read()
            time.sleep(0.5)
    assert status == 200
    server = psutil.Process(process.pid).children(recursive=True)  # MLflow, uvicorn and its workers
    assert server
    # the store's URI (a database's may hold a password) is on no command line, which every user can read
    assert not [member.cmdline() for member in server if "mlflow.db" in " ".join(member.cmdline())]
    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=60) == 0
    assert not [member for member in server if member.is_running() and member.status() != psutil.STATUS_ZOMBIE]
    with pytest.raises(OSError):  # nothing serves on the port any more
        urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5)
    assert (tmp_path / "runs" / "mlflow.db").exists()
    said = process.stdout.read()
    assert "Uvicorn running on" in said  # the server's own lines, without its warnings about itself
    assert "Registry store URI not provided" not in said and "DeprecationWarning" not in said, said
