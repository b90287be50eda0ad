"""`smcl-tune dashboard` stopped with SIGTERM leaves no copy of the study's storage in the
temporary folder (issue 26, item 6)."""

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import optuna
import pytest


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.slow
def test_a_dashboard_stopped_with_sigterm_removes_its_copy(tmp_path):
    database = tmp_path / "smcl-runs" / "tiny" / "optuna.db"
    database.parent.mkdir(parents=True)
    optuna.create_study(study_name="tiny", storage=f"sqlite:///{database}").optimize(lambda trial: 1.0, n_trials=1)
    temporary = tmp_path / "tmp"
    temporary.mkdir()
    port = _free_port()
    storage = str(database.parents[1])
    dashboard = subprocess.Popen(
        [sys.executable, "-m", "smcl_tune.cli", "dashboard", "tiny", "--storage", storage, "--port", str(port)],
        env={**os.environ, "TMPDIR": str(temporary)},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120
        while True:  # serving: its copy is in the temporary folder
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/api/studies", timeout=10).close()
                break
            except OSError:
                assert dashboard.poll() is None, dashboard.stdout.read()
                assert time.monotonic() < deadline, "the dashboard never answered"
                time.sleep(0.5)
        assert [path.name.startswith("smcl-dashboard-") for path in temporary.iterdir()] == [True]
        dashboard.send_signal(signal.SIGTERM)
        output, _ = dashboard.communicate(timeout=60)
    finally:
        if dashboard.poll() is None:
            dashboard.kill()
            dashboard.wait()
    assert list(temporary.iterdir()) == []
    assert dashboard.returncode == 0, output
    assert "Traceback" not in output
