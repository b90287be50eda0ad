"""One driver per study (study/lock.py): a second driver, or a --restart, while one runs exits
naming the first and writes or deletes nothing; a driver killed with SIGKILL leaves no lock behind."""

import os
import signal
import socket
import subprocess
import sys

import pytest

from smcl_tune.cli import main
from smcl_tune.store.lock import StudyBusy, StudyLock
from smcl_tune.store.paths import StudyPaths
from smcl_tune.store.study_record import write_study_record
from smcl_tune.studyfile.study import load_study


def test_a_second_driver_of_the_same_study_exits_naming_the_first(tmp_path, tiny_study):
    study = load_study(tiny_study(tmp_path, name="busy"))
    paths = StudyPaths.of(study)
    with StudyLock(paths.lock_file, "busy"):
        done = subprocess.run(
            [sys.executable, "-m", "smcl_tune.cli", "run", str(study.source)],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert done.returncode == 1
    error = done.stderr.strip().splitlines()
    assert len(error) == 1 and "Traceback" not in done.stderr
    assert f"study 'busy' is being run by process {os.getpid()} on {socket.gethostname()} since" in error[0]
    assert not (tmp_path / "smcl-runs" / "busy").exists()  # the second driver wrote nothing


def test_a_driver_killed_with_sigkill_leaves_no_lock_that_blocks_the_resume(tmp_path):
    lock_file = tmp_path / ".study.lock"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            (
                "import sys, time; from pathlib import Path; from smcl_tune.store.lock import StudyLock; "
                f"StudyLock(Path({str(lock_file)!r}), 'study').acquire(); print('held', flush=True); time.sleep(600)"
            ),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(StudyBusy, match=f"process {holder.pid} on"):
            StudyLock(lock_file, "study").acquire()
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=30)
    finally:
        if holder.poll() is None:
            holder.kill()
    with StudyLock(lock_file, "study"):  # the kernel released the dead driver's lock
        assert f"process {os.getpid()}" in lock_file.read_text()


def test_restart_while_another_driver_runs_the_study_exits_1_and_deletes_nothing(
    tmp_path, tiny_study, capsys, ray_starts
):
    study = load_study(tiny_study(tmp_path, name="busy"))
    paths = StudyPaths.of(study)
    write_study_record(study, paths)
    (paths.record_dir / "optuna.db").write_bytes(b"")  # an empty database: a study's state to keep
    before = sorted(path.name for path in paths.record_dir.iterdir())
    with StudyLock(paths.lock_file, "busy"):
        assert main(["run", str(study.source), "--restart"]) == 1
    error = capsys.readouterr().err.strip()
    assert error.startswith("smcl-tune: study 'busy' is being run by process") and len(error.splitlines()) == 1
    assert sorted(path.name for path in paths.record_dir.iterdir()) == before
    assert ray_starts == []


def test_status_of_a_study_whose_driver_has_started_says_it_is_starting(tmp_path, build_store):
    storage = tmp_path / "smcl-runs"

    def status(*name: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "smcl_tune.cli", "status", *name, "--storage", str(storage)],
            capture_output=True,
            text=True,
            timeout=120,
        )

    def said(*name: str) -> tuple[int, str]:
        done = status(*name)
        return done.returncode, done.stdout

    starting = (
        "study new: starting (its driver runs; this store has no run of it yet, unless it logs to a tracking.uri "
        "of its own)\n"
    )
    stray = StudyLock(storage / "..lock", "")  # held, but no study's lock: no study has an empty name
    with StudyLock(storage / ".new.lock", "new"), stray:  # as `smcl-tune run` holds it, before the store is made
        assert said("new") == (0, starting)
        assert said() == (0, starting)  # every study in the storage: this one
        build_store(storage)  # a store with another study in it, not yet this one's run
        assert said("new") == (0, starting)
        code, every = said()
        assert code == 0 and every.endswith(starting) and every.startswith("study ") and len(every.splitlines()) == 2
    after = status("new")  # no driver: not a study there
    assert after.returncode == 2 and "no study named 'new'" in after.stderr
    every = status()
    assert every.returncode == 0 and "new" not in every.stdout


def test_a_run_refused_after_it_took_the_lock_leaves_no_lock_file_nor_storage_folder(
    tmp_path, tiny_study, monkeypatch, capsys
):
    from smcl_tune.errors import ConfigError
    from smcl_tune.study import runner

    def refused(*_arguments, **_keywords):  # as Ray refuses a cluster's wrong token, once the lock is held
        raise ConfigError("--address 10.0.0.5:6379: Failed to connect (InvalidAuthToken)")

    monkeypatch.setattr(runner, "init_ray", refused)
    storage = tmp_path / "runs"
    study = tiny_study(tmp_path, name="refused", storage=str(storage))
    assert main(["run", str(study)]) == 2
    assert "InvalidAuthToken" in capsys.readouterr().err
    assert not storage.exists()  # neither the folder the lock made nor its `.refused.lock`


def test_after_a_withdrawn_lock_the_next_driver_takes_a_lock_of_its_own_that_a_third_is_refused_by(tmp_path):
    path = tmp_path / "runs" / ".s.lock"
    first = StudyLock(path, "s")
    first.acquire()
    first.withdraw()
    first.release()
    assert not path.parent.exists()  # the folder it made for its lock went with it
    second = StudyLock(path, "s")
    second.acquire()
    try:
        assert path.is_file()
        with pytest.raises(StudyBusy):
            StudyLock(path, "s").acquire()
    finally:
        second.release()
