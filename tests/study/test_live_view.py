"""`smcl-tune run` on a terminal (a real one, tmux's): a compact view redrawn in place."""

import os
import re
import shutil
import subprocess
import sys
import time

import pytest

from tests.fixtures.ci import skip_unless_ci

pytestmark = [pytest.mark.ray, pytest.mark.slow]


STUDY_LINE = re.compile(
    r"^study tiny: \d done, \d stopped early, \d failed, [1-9] running, \d to go; elapsed \S+, ETA", re.M
)


def _tmux(socket: str, *arguments: str) -> str:
    return subprocess.run(["tmux", "-L", socket, *arguments], capture_output=True, text=True, check=True).stdout


def test_live_view_redraws_in_place_and_lists_every_trial_that_ends(tmp_path, tiny_study, shared_ray):
    if shutil.which("tmux") is None:
        skip_unless_ci("tmux is not installed here (.ci/run installs it)")
    study = tiny_study(tmp_path, num_trials=3)
    socket = f"smcl-test-{os.getpid()}"
    # on the session's Ray (where Ray runs is not what this test is about)
    command = (
        f"sleep 1; RAY_ADDRESS={shared_ray} {sys.executable} -m smcl_tune.cli run {study}; echo EXIT=$?; sleep 600"
    )
    _tmux(
        socket,
        "-f",
        "/dev/null",
        "new-session",
        "-d",
        "-s",
        "run",
        "-x",
        "160",
        "-y",
        "50",
        "-c",
        str(tmp_path),
        command,
    )
    _tmux(socket, "resize-window", "-t", "run", "-x", "160", "-y", "50")  # a detached session may start at 80x24
    mid_run, final = None, None
    try:
        deadline = time.time() + 600
        while time.time() < deadline and final is None:
            screen = _tmux(socket, "capture-pane", "-p", "-t", "run")
            # a whole frame (capture-pane may catch one half drawn): the study line and a trial's bar
            if mid_run is None and STUDY_LINE.search(screen) and re.search(r"trial-\d+ .*epoch \d/3", screen):
                mid_run = screen
            if "EXIT=" in screen:
                final = _tmux(socket, "capture-pane", "-p", "-S", "-", "-t", "run")  # with the scroll-back
            time.sleep(0.3)
    finally:
        subprocess.run(["tmux", "-L", socket, "kill-server"], capture_output=True)
    assert final is not None, "the run did not end in 10 minutes"
    assert "EXIT=0" in final, final[-3000:]
    assert mid_run is not None, final[-3000:]
    assert "best val_balanced_accuracy" in mid_run
    # drawn in place: one study line on screen at any time, not one per refresh in the scroll-back
    assert len(re.findall(r"^study tiny: \d done", final, flags=re.MULTILINE)) == 1, final
    ended = re.findall(r"^(?:baseline|trial)-\S+: (?:finished after|stopped early|failed at)", final, re.MULTILINE)
    assert len(ended) == 3, final
    assert "Trial status" not in final  # Ray's own tables are gone without --verbose


def test_verbose_and_the_loggers_switch_bring_back_rays_own_tables_and_files(
    tmp_path, tiny_study, run_cli, joining_env
):
    study = tiny_study(tmp_path, num_trials=1)
    # the README's switch for Ray Tune's own loggers (TensorBoard's event files), set by the user
    env = {**joining_env, "TUNE_DISABLE_AUTO_CALLBACK_LOGGERS": "0"}
    done = run_cli("run", str(study), "--verbose", cwd=tmp_path, timeout=600, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Trial status" in done.stdout + done.stderr  # Ray Tune's status table
    assert "trial-000: finished after 3 epochs" in done.stdout  # the plain lines as well
    assert list((tmp_path / "smcl-runs" / "tiny").glob("*/events.out.tfevents.*")), "no TensorBoard event files"
