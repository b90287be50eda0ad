"""A trial's work folder does not outlive a killed worker for long (issue 26, item 6): the next
trial on the node removes the folders of processes that are gone, and only those."""

import os
import signal
import subprocess
import sys
import tempfile
import time

import pytest

from smcl_tune.study.scratch_folders import LOCK_NAME, remove_stale_work_folders, work_folder
from tests.fixtures.ci import skip_unless_ci

WORKER = """
import sys, time
from pathlib import Path
from smcl_tune.study.scratch_folders import work_folder
folder = work_folder()
(Path(folder.name) / "checkpoint").mkdir()
(Path(folder.name) / "checkpoint" / "trial.pt").write_bytes(b"weights" * 1000)
print(folder.name, flush=True)
time.sleep(600)
"""


def test_the_work_folder_of_a_killed_worker_is_removed_by_the_next_trial(tmp_path, monkeypatch):
    worker = subprocess.Popen(
        [sys.executable, "-c", WORKER], env={**os.environ, "TMPDIR": str(tmp_path)}, stdout=subprocess.PIPE, text=True
    )
    left = worker.stdout.readline().strip()
    worker.send_signal(signal.SIGKILL)  # no clean-up runs
    worker.wait(timeout=30)
    assert (tmp_path / left.split("/")[-1] / "checkpoint" / "trial.pt").exists()
    other = tmp_path / "smcl-trial-notes"  # not a work folder's name: left alone
    other.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    with work_folder() as mine:  # the next trial on this node
        assert sorted(path.name for path in tmp_path.iterdir()) == sorted([other.name, os.path.basename(mine)])
        assert remove_stale_work_folders(tmp_path) == []  # a live worker's folder is kept
    assert [path.name for path in tmp_path.iterdir()] == [other.name]


HOLDER = """
import fcntl, sys, time
lock = open(sys.argv[1], "w")
fcntl.flock(lock, fcntl.LOCK_EX)
print("locked", flush=True)
time.sleep(600)
"""


def _ended_pid() -> int:
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    return int(gone.stdout)


def test_a_live_owner_whose_pid_this_namespace_does_not_show_keeps_its_folder(tmp_path):
    # A trial in another PID namespace sharing this temporary folder: its folder's pid is no
    # process here, but its owner lives and holds the folder's lock.
    theirs = tmp_path / f"smcl-trial-{_ended_pid()}-abc"
    theirs.mkdir()
    owner = subprocess.Popen([sys.executable, "-c", HOLDER, str(theirs / LOCK_NAME)], stdout=subprocess.PIPE, text=True)
    try:
        assert owner.stdout.readline().strip() == "locked"
        assert remove_stale_work_folders(tmp_path) == [] and theirs.is_dir()
    finally:
        owner.kill()
        owner.wait(timeout=30)
    assert remove_stale_work_folders(tmp_path) == [theirs] and not theirs.exists()  # the kernel freed its lock


def test_a_folder_without_a_lock_file_is_removed_only_once_it_is_a_minute_old(tmp_path):
    older = tmp_path / f"smcl-trial-{_ended_pid()}-abc"  # an older smcl-tune's, or one being created
    older.mkdir()
    assert remove_stale_work_folders(tmp_path) == []
    an_hour_ago = time.time() - 3600
    os.utime(older, (an_hour_ago, an_hour_ago))
    assert remove_stale_work_folders(tmp_path) == [older]


def test_another_users_work_folder_is_never_removed(tmp_path):
    if os.getuid() != 0:
        skip_unless_ci("giving a folder to another user needs root")
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    theirs = tmp_path / f"smcl-trial-{int(gone.stdout)}-abc"  # a process that has ended
    theirs.mkdir()
    os.chown(theirs, 65534, 65534)
    assert remove_stale_work_folders(tmp_path) == [] and theirs.is_dir()


def _trial_work_folder(temporary, run: subprocess.Popen, timeout: float = 300):
    """The first work folder of the study's trial that holds a checkpoint."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for folder in temporary.glob("smcl-trial-*"):
            if (folder / "checkpoint" / "trial.pt").exists():
                return folder
        assert run.poll() is None, run.communicate()
        time.sleep(0.1)
    raise AssertionError("no trial checkpointed in time")


@pytest.mark.ray
@pytest.mark.slow
def test_no_work_folder_remains_after_a_study_whose_trial_worker_was_killed(tmp_path, tiny_study):
    study = tiny_study(tmp_path, num_trials=1, scheduler={"type": "fifo"})
    temporary = tmp_path / "tmp"
    temporary.mkdir()
    # Ray's session (and its sockets) stays in /tmp; the trials' temporary folder is the test's own.
    environment = {**os.environ, "TMPDIR": str(temporary), "RAY_TMPDIR": "/tmp"}
    run = subprocess.Popen(
        [sys.executable, "-m", "smcl_tune.cli", "run", str(study)],
        cwd=tmp_path,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        killed = _trial_work_folder(temporary, run)
        worker = int(killed.name.split("-")[2])
        os.kill(worker, signal.SIGKILL)  # the Ray worker running the trial: no clean-up of its own runs
        output, _ = run.communicate(timeout=600)
    finally:
        if run.poll() is None:
            run.kill()
            run.wait()
    assert run.returncode == 0, output
    assert "study tiny ran for" in output
    assert list(temporary.glob("smcl-trial-*")) == [], f"{killed.name} was left behind"
