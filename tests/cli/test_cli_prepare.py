"""The data stage of `smcl-tune run` and `smcl-tune prepare`: a shipped CIFAR study fetches its data
once, before anything starts; a fetch that fails is one line, exit 2, with nothing started."""

import subprocess
import sys
import time
from pathlib import Path

import yaml

from smcl_tune.cli.app import main
from tests.fixtures.archives import ArchiveServer

STUDIES = Path(__file__).resolve().parents[2] / "studies"


def _cifar_study(folder: Path, mirror: str) -> Path:
    """The shipped CIFAR-10 study, its archive served by `mirror`."""
    study = yaml.safe_load((STUDIES / "cifar10_lt.yaml").read_text())
    study["trial"]["data"]["mirror"] = mirror
    path = folder / "cifar10_lt.yaml"
    path.write_text(yaml.safe_dump(study))
    return path


def test_a_study_whose_data_cannot_be_fetched_stops_in_one_line_before_anything_starts(tmp_path):
    path = _cifar_study(tmp_path, "http://127.0.0.1:9/")  # a closed port
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "smcl_tune.cli", "run", path.name], cwd=tmp_path, capture_output=True, text=True
    )
    assert time.monotonic() - started < 30
    assert done.returncode == 2, done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("smcl-tune:")]
    assert errors == [
        f"smcl-tune: could not fetch cifar10 from 127.0.0.1:9 into {tmp_path / 'data'} ([Errno 111] Connection "
        f"refused); put cifar-10-batches-py (or cifar-10-python.tar.gz) in {tmp_path / 'data'} by hand, or run "
        "`smcl-tune prepare STUDY.yaml` where there is a network (data.mirror: a URL that serves the same file)"
    ]
    assert "Traceback" not in done.stderr and "Ray" not in done.stderr
    assert not (tmp_path / "smcl-runs").exists()  # no Optuna study, no MLflow run, no Ray experiment
    assert not (tmp_path / "data").exists()  # nor an empty data folder


def test_a_served_file_that_is_not_the_archive_is_refused_by_prepare_in_one_line(tmp_path):
    server = ArchiveServer(b"not the archive")
    try:
        path = _cifar_study(tmp_path, server.url)
        done = subprocess.run(
            [sys.executable, "-m", "smcl_tune.cli", "prepare", path.name], cwd=tmp_path, capture_output=True, text=True
        )
    finally:
        server.close()
    assert done.returncode == 2
    assert "is not cifar-10-python.tar.gz (MD5" in done.stderr and "nothing was kept" in done.stderr
    assert not (tmp_path / "data" / "cifar-10-python.tar.gz").exists()


def test_prepare_fetches_the_data_once_with_progress_and_run_then_finds_it(
    tmp_path, monkeypatch, capsys, body, published
):
    server = ArchiveServer(body, chunks=3, pause_s=0.1)
    monkeypatch.chdir(tmp_path)
    try:
        path = _cifar_study(tmp_path, server.url)
        assert main(["prepare", path.name]) == 0
        assert main(["prepare", path.name]) == 0  # there already: nothing fetched
    finally:
        server.close()
    output = capsys.readouterr()
    assert len(server.requests) == 1
    assert f"fetching cifar10 (0 MiB) from {server.url}cifar-10-python.tar.gz into {tmp_path / 'data'}" in output.err
    assert "cifar10: 0.0 of 0.0 MiB" in output.err  # the progress, a line at a time off a terminal
    assert f"cifar10: fetched and checked, in {tmp_path / 'data' / 'cifar-10-batches-py'}" in output.out
    assert f"cifar10: in {tmp_path / 'data' / 'cifar-10-batches-py'}" in output.out
    assert "study 'cifar10_lt': its data is in place" in output.out


def test_sigterm_during_a_fetch_stops_prepare_as_ctrl_c_does_leaving_no_partial_file(tmp_path):
    server = ArchiveServer(b"x" * (4 << 20), chunks=40, pause_s=0.5)  # 20 s: long enough to be stopped
    try:
        path = _cifar_study(tmp_path, server.url)
        command = [sys.executable, "-m", "smcl_tune.cli", "prepare", path.name]
        fetching = subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 60
        while not list((tmp_path / "data").glob(".cifar-10-python.tar.gz.part-*")) and time.monotonic() < deadline:
            time.sleep(0.1)
        fetching.terminate()  # SIGTERM: `kill PID`, `timeout`, a service manager
        _, error = fetching.communicate(timeout=60)
    finally:
        server.close()
    assert fetching.returncode == 1 and error.rstrip().endswith("smcl-tune: interrupted"), error[-2000:]
    assert "Traceback" not in error
    assert sorted(path.name for path in (tmp_path / "data").iterdir()) == [".cifar-10-python.tar.gz.lock"]
