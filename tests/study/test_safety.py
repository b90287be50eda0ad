"""What a user types or a crash does never loses or mixes results (issue 13): refusals come
before Ray starts, and name what to change."""

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import ray

from smcl_tune.cli import main
from smcl_tune.config import ConfigError
from smcl_tune.study.cluster import LocalStorageGuard
from smcl_tune.study.lock import StudyBusy, StudyLock
from smcl_tune.study.paths import StudyPaths, check_study_record, write_study_record
from smcl_tune.study_config import load_study
from smcl_tune.tracking import StudyTracker


@pytest.fixture(autouse=True)
def no_ray_before():
    """Each test here starts without Ray, so that 'Ray was not started' means something."""
    if ray.is_initialized():
        ray.shutdown()


def _files(folder: Path) -> list[str]:
    return sorted(str(path.relative_to(folder)) for path in folder.rglob("*"))


def _refused(arguments: list[str], capsys) -> str:
    assert main(arguments) == 2
    error = capsys.readouterr().err.strip()
    assert "Traceback" not in error and len(error.splitlines()) == 1, error
    assert not ray.is_initialized()
    return error


def test_restart_deletes_no_folder_that_its_record_does_not_prove_to_be_the_studys(tmp_path, tiny_study, capsys):
    papers = tmp_path / "papers"
    (papers / "thesis").mkdir(parents=True)
    (papers / "thesis" / "chapter1.tex").write_text("years of work")
    study = tiny_study(tmp_path, name="thesis", storage=str(papers))
    error = _refused(["run", str(study), "--restart"], capsys)
    assert "holds no study record (smcl-study.json), so it is not study 'thesis''s state; not deleting it" in error
    assert (papers / "thesis" / "chapter1.tex").read_text() == "years of work"


def test_restart_deletes_nothing_outside_the_storage(tmp_path, tiny_study, capsys):
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "smcl-study.json").write_text(json.dumps({"name": "linked"}))
    storage = tmp_path / "smcl-runs"
    storage.mkdir()
    (storage / "linked").symlink_to(outside)
    error = _refused(["run", str(tiny_study(tmp_path, name="linked")), "--restart"], capsys)
    assert "does not lie inside the storage" in error
    assert (outside / "smcl-study.json").exists()


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
                "import sys, time; from pathlib import Path; from smcl_tune.study.lock import StudyLock; "
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


def test_a_shared_tracking_store_never_mixes_two_study_files_of_one_name(tmp_path, tiny_study, capsys):
    uri = f"sqlite:///{tmp_path / 'server.db'}"
    StudyTracker(uri, "shared", "paper", "0123456789abcdef", tmp_path / "artifacts").finish()  # another lab's study
    study = tiny_study(
        tmp_path, name="paper", storage=str(tmp_path / "mine"), tracking={"uri": uri, "experiment": "shared"}
    )
    error = _refused(["run", str(study)], capsys)
    assert "the MLflow experiment 'shared'" in error and "already holds a study named 'paper'" in error
    assert "fingerprint 0123456789abcdef" in error
    assert not (tmp_path / "mine").exists()


def test_a_resumed_study_refuses_changed_run_settings_it_cannot_honour(tmp_path, tiny_study):
    first = load_study(tiny_study(tmp_path, name="settled", max_concurrent=2))
    write_study_record(first, StudyPaths.of(first))
    changed = load_study(tiny_study(tmp_path, name="settled", max_concurrent=4))
    with pytest.raises(ConfigError, match=r"max_concurrent was 2 when the study started and is 4 now"):
        check_study_record(changed, StudyPaths.of(changed), restart=False)
    moved = load_study(
        tiny_study(tmp_path, name="settled", max_concurrent=2, tracking={"uri": f"sqlite:///{tmp_path / 'other.db'}"})
    )
    with pytest.raises(ConfigError, match=r"tracking_uri was .* when the study started"):
        check_study_record(moved, StudyPaths.of(moved), restart=False)
    check_study_record(changed, StudyPaths.of(changed), restart=True)  # --restart starts over with them


def test_resources_no_local_slot_can_hold_are_refused_before_ray_starts(tmp_path, tiny_study, capsys):
    study = tiny_study(tmp_path, name="greedy", resources={"cpus": 512})
    error = _refused(["run", str(study)], capsys)
    assert f"resources.cpus: a trial asks for 512 CPUs and this machine has {os.cpu_count()}" in error
    assert not (tmp_path / "smcl-runs").exists()


@pytest.mark.parametrize("record", ["", '{"name": "cut', "[1, 2]"], ids=["empty", "truncated", "not an object"])
def test_an_unreadable_study_record_is_named(tmp_path, tiny_study, capsys, record):
    study = tiny_study(tmp_path, name="torn")
    (tmp_path / "smcl-runs" / "torn").mkdir(parents=True)
    (tmp_path / "smcl-runs" / "torn" / "smcl-study.json").write_text(record)
    error = _refused(["run", str(study)], capsys)
    assert "smcl-study.json: the study record is" in error and "--restart" in error


def test_a_storage_path_that_is_a_file_is_refused(tmp_path, tiny_study, capsys):
    (tmp_path / "notes.txt").write_text("not a folder")
    error = _refused(["run", str(tiny_study(tmp_path, storage=str(tmp_path / "notes.txt")))], capsys)
    assert f"storage: {tmp_path / 'notes.txt'} is a file, not a folder" in error


def test_credentials_in_the_tracking_uri_never_reach_the_output(tmp_path, tiny_study, capsys):
    study = tiny_study(tmp_path, name="secret", tracking={"uri": "https://alice:hunter2@mlflow.example.org"})
    assert main(["validate", str(study)]) == 0
    shown = capsys.readouterr().out
    assert "hunter2" not in shown and "alice" not in shown and "https://***@mlflow.example.org" in shown
    loaded = load_study(study)
    assert "hunter2" not in loaded.source_text() and "hunter2" not in json.dumps(loaded.display_dict())


def test_a_trial_on_a_host_the_cluster_did_not_have_at_the_start_stops_the_study():
    guard = LocalStorageGuard(["10.0.0.1"])
    assert guard("t1", {"node_ip": "10.0.0.1"}) is False and not guard.stop_all()
    assert guard("t2", {"node_ip": "10.0.0.7"}) is True  # an autoscaled node
    assert guard.stop_all() and guard.foreign == "10.0.0.7"


@pytest.mark.ray
@pytest.mark.slow
def test_a_local_ray_refuses_clients_without_its_token_and_keeps_the_token_private(tmp_path):
    home, stranger = tmp_path / "home", tmp_path / "stranger"
    home.mkdir()
    stranger.mkdir()
    script = (
        "import os, stat, subprocess, sys, ray\n"
        "from smcl_tune.study.runner import _init_ray\n"
        "_init_ray(None)\n"
        "token = os.path.expanduser('~/.ray/auth_token')\n"
        "print('mode', oct(stat.S_IMODE(os.stat(token).st_mode)))\n"
        "address = ray.get_runtime_context().gcs_address\n"
        f"env = {{**os.environ, 'HOME': {str(stranger)!r}, 'RAY_AUTH_MODE': 'disabled'}}\n"
        "probe = subprocess.run([sys.executable, '-c', f'import ray; ray.init(address={address!r})'], env=env,\n"
        "                       capture_output=True, text=True, timeout=120)\n"
        "print('stranger', probe.returncode, 'token-auth' in probe.stderr or 'auth' in probe.stderr.lower())\n"
        "ray.shutdown()\n"
    )
    env = {key: value for key, value in os.environ.items() if not key.startswith("RAY_")}
    done = subprocess.run(
        [sys.executable, "-c", script], env={**env, "HOME": str(home)}, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.splitlines()
    assert "mode 0o600" in lines  # Ray wrote it world-readable; only its owner can read it now
    assert "stranger 1 True" in lines  # a client without the token is refused
