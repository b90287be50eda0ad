"""`smcl-tune ui` as a new user meets it: the printed link opens the study's trials in Chromium,
as model training (not MLflow's GenAI pages), one row per trial, best objective first."""

import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request

import pytest
from mlflow.tracking import MlflowClient

from tests.fixtures.ci import skip_unless_ci
from tests.fixtures.ports import free_port

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def _printed_link(process: subprocess.Popen, study: str) -> str:
    for line in process.stdout:
        if line.strip().startswith(f"{study}: http"):
            return line.split(": ", 1)[1].strip()
    raise AssertionError("smcl-tune ui printed no link for the study")


def _wait_until_serving(port: int) -> None:
    deadline = time.time() + 120
    while time.time() < deadline:
        try:
            if urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5).status == 200:
                return
        except OSError:
            time.sleep(0.5)
    raise AssertionError("the MLflow UI did not start")


def _assert_port_closes(port: int) -> None:
    deadline = time.time() + 30
    while time.time() < deadline:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) != 0:
                return
        time.sleep(0.5)
    raise AssertionError(f"something still serves on port {port} after smcl-tune ui stopped")


@pytest.mark.browser
@pytest.mark.slow
def test_the_printed_link_opens_the_trials_as_model_training(tmp_path, build_store, stop_at_teardown):
    if CHROMIUM is None:
        skip_unless_ci("Chromium is not installed (.ci/run installs Debian's chromium)")
    storage = tmp_path / "store"
    uri = build_store(storage)
    experiment = MlflowClient(uri).get_experiment_by_name("lt")
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "smcl_tune.cli", "ui", "--storage", str(storage), "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    stop_at_teardown(process)
    link = _printed_link(process, "lt")
    assert link.startswith(f"http://127.0.0.1:{port}/#/experiments/{experiment.experiment_id}/runs?")
    _wait_until_serving(port)
    dom = subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            f"--user-data-dir={tmp_path / 'profile'}",  # a new user: nothing remembered
            "--window-size=1600,1000",
            "--virtual-time-budget=30000",
            "--dump-dom",
            link,
        ],
        capture_output=True,
        text=True,
        timeout=180,
    )
    process.terminate()  # SIGTERM, as a service manager or `kill` stops it
    assert process.wait(timeout=60) == 0
    _assert_port_closes(port)  # MLflow's own server processes stopped too
    page = dom.stdout
    assert dom.returncode == 0 and "Model training" in page
    assert "<strong>6</strong> matching runs" in page  # the trials, flat; not the study's run
    rows = re.findall(r">((?:trial|baseline)-[\w-]+)(?: \[[^<]*\])?</span>", page)
    names = list(dict.fromkeys(rows))
    assert set(names) == {"trial-000", "trial-001", "trial-002", "trial-003", "trial-004", "baseline-ce"}
    # best selected validation objective first (trial-003 0.90, trial-001 0.71, trial-000 0.62)
    assert names[:3] == ["trial-003", "trial-001", "trial-000"], names
