"""`smcl-tune dashboard` stopped with SIGTERM leaves no copy of the study's storage in the
temporary folder (issue 26, item 6)."""

import os
import signal
import socket
import subprocess
import sys
import time

import optuna
import pytest

from tests.fixtures.dashboards import wait_until_answering
from tests.fixtures.ports import free_port


def _stalled_download(port: int) -> socket.socket:
    """A client that asks for the dashboard's 6 MB script and reads none of it: the server stays
    inside that request, blocked writing, until the client goes."""
    client = socket.socket()
    client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    client.connect(("127.0.0.1", port))
    client.sendall(b"GET /static/bundle.js HTTP/1.0\r\nHost: 127.0.0.1\r\nAccept-Encoding: identity\r\n\r\n")
    head = b""
    while b"\r\n\r\n" not in head and len(head) < 8192:  # the headers (they may come in pieces), a little more
        piece = client.recv(1024)
        if not piece:
            break
        head += piece
    status, *headers = head.split(b"\r\n\r\n", 1)[0].split(b"\r\n")
    assert status.split()[1] == b"200", head  # a file that is being sent, not an error answered at once
    sizes = [int(line.split(b":", 1)[1]) for line in headers if line.lower().startswith(b"content-length:")]
    assert sizes and sizes[0] > 1_000_000, head  # larger than the socket buffers: the server stays blocked
    time.sleep(2)  # the server has filled the socket's buffers
    return client


@pytest.mark.slow
@pytest.mark.parametrize("moment", ["between requests", "during a request"])
def test_a_dashboard_stopped_with_sigterm_removes_its_copy(tmp_path, moment):
    database = tmp_path / "smcl-runs" / "tiny" / "optuna.db"
    database.parent.mkdir(parents=True)
    optuna.create_study(study_name="tiny", storage=f"sqlite:///{database}").optimize(lambda trial: 1.0, n_trials=1)
    temporary = tmp_path / "tmp"
    temporary.mkdir()
    port = free_port()
    storage = str(database.parents[1])
    dashboard = subprocess.Popen(
        [sys.executable, "-m", "smcl_tune.cli", "dashboard", "tiny", "--storage", storage, "--port", str(port)],
        env={**os.environ, "TMPDIR": str(temporary)},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        wait_until_answering(dashboard, port)  # serving: its copy is in the temporary folder
        assert [path.name.startswith("smcl-dashboard-") for path in temporary.iterdir()] == [True]
        client = _stalled_download(port) if moment == "during a request" else None
        dashboard.send_signal(signal.SIGTERM)
        output, _ = dashboard.communicate(timeout=60)
        if client is not None:
            client.close()
    finally:
        if dashboard.poll() is None:
            dashboard.kill()
            dashboard.wait()
    assert list(temporary.iterdir()) == []
    assert dashboard.returncode == 0, output
    assert "Traceback" not in output
