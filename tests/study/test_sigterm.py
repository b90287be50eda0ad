"""SIGTERM to a running `smcl-tune run` (`kill PID`, `ray job stop`, a service manager) stops the
study as Ctrl-C does: exit 1 with the resume line, the study `stopped`, no stack dump of Ray's."""

import signal
import subprocess
import sys

import pytest

from tests.fixtures.tracking_store import wait_for_logged_losses

pytestmark = [pytest.mark.ray, pytest.mark.slow]


def test_sigterm_stops_the_study_as_ctrl_c_does(tmp_path, tiny_study, joining_env):
    path = tiny_study(tmp_path, name="terminated", num_trials=2, scheduler={"type": "fifo"})
    path.write_text(path.read_text().replace("epochs: 3", "epochs: 30"))  # still running when the signal comes
    command = [sys.executable, "-m", "smcl_tune.cli", "run", str(path)]
    driver = subprocess.Popen(
        command, cwd=tmp_path, env=joining_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        wait_for_logged_losses(tmp_path / "smcl-runs" / "mlflow.db", driver)
        driver.send_signal(signal.SIGTERM)
        _, error = driver.communicate(timeout=120)
    finally:
        if driver.poll() is None:
            driver.kill()
    assert driver.returncode == 1, error[-3000:]
    assert error.rstrip().splitlines()[-1].endswith(f"resume with: smcl-tune run {path}"), error[-3000:]
    assert "SIGTERM received" not in error and "Traceback" not in error, error[-3000:]
    status = subprocess.run([*command[:3], "status", "terminated"], cwd=tmp_path, capture_output=True, text=True)
    assert status.stdout.startswith("study terminated: stopped,"), status.stdout + status.stderr
