"""SIGTERM to a running `smcl-tune run` (`kill PID`, `ray job stop`, a service manager) stops the
study as Ctrl-C does: exit 1 with the resume line, the study `stopped`, no stack dump of Ray's."""

import os
import signal
import subprocess
import sys

import pytest

from tests.fixtures.tracking_store import wait_for_logged_losses

pytestmark = [pytest.mark.ray, pytest.mark.slow]


def test_sigterm_stops_the_study_as_ctrl_c_does(tmp_path, tiny_study, joining_env):
    # fused in twos, both trials start at once: Ray counts the trials its fit stopped as terminated,
    # and a study whose every trial had started was recorded finished, exit 0
    resources = {"cpus": 1, "fuse": 2}
    path = tiny_study(tmp_path, name="terminated", num_trials=2, scheduler={"type": "fifo"}, resources=resources)
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


def test_sigterm_to_the_whole_process_group_ends_the_run_in_seconds_resumable(tmp_path, tiny_study):
    """`timeout 60 smcl-tune run`, a service manager's stop: the signal kills the local Ray the run
    started too, and the driver waited Ray's 60 s for its GCS before it ended (benchmarks/
    process_group_sigterm.py: 60.06 s, 5.39 s now)."""
    path = tiny_study(tmp_path, name="grouped", num_trials=2, scheduler={"type": "fifo"}, resources={"cpus": 1})
    path.write_text(path.read_text().replace("epochs: 3", "epochs: 30"))
    command = [sys.executable, "-m", "smcl_tune.cli", "run", str(path)]
    driver = subprocess.Popen(  # its own local Ray, in its own process group
        command, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        wait_for_logged_losses(tmp_path / "smcl-runs" / "mlflow.db", driver)
        os.killpg(driver.pid, signal.SIGTERM)
        driver.communicate(timeout=40)
    finally:
        if driver.poll() is None:
            os.killpg(driver.pid, signal.SIGKILL)
    status = subprocess.run([*command[:3], "status", "grouped"], cwd=tmp_path, capture_output=True, text=True)
    assert status.stdout.startswith("study grouped: interrupted,"), status.stdout + status.stderr


KEEPS_ITS_HANDLER = """
import os, signal
from smcl_tune.cli.interruption import sigterm_as_interrupt
from smcl_tune.study.ray_session import init_ray, leave_ray
from smcl_tune.study.termination import sigint_restored_after
with sigterm_as_interrupt():
    ours = signal.getsignal(signal.SIGTERM)
    init_ray(os.environ["RAY_ADDRESS"])
    print("after init", signal.getsignal(signal.SIGTERM) is ours)
    before = signal.getsignal(signal.SIGINT)
    with sigint_restored_after():
        signal.signal(signal.SIGINT, lambda *_: None)  # as Ray Tune's fit leaves its own
    print("after the fit", signal.getsignal(signal.SIGINT) is before)
    leave_ray()
    print("after leave", signal.getsignal(signal.SIGTERM) is ours)
"""


def test_rays_calls_and_the_fit_leave_the_handlers_smcl_tune_set(joining_env):
    # ray.init puts in Ray's own SIGTERM handler (sys.exit(15): no resume line, no clean-up), and
    # Ray Tune's fit leaves its SIGINT handler, which swallowed Ctrl-C and SIGTERM after the fit
    done = subprocess.run(
        [sys.executable, "-c", KEEPS_ITS_HANDLER], env=joining_env, capture_output=True, text=True, timeout=120
    )
    assert done.stdout.split("\n")[:3] == ["after init True", "after the fit True", "after leave True"], (
        done.stdout + done.stderr[-2000:]
    )
