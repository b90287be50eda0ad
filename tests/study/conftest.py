"""Fixtures of the study tests: a tiny study (5 classes of 16-px synthetic images, 3 epochs per
trial), and the trial runs of a study's MLflow experiment."""

import functools
import json
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import yaml


def _write_tiny_study(trial: dict, folder: Path, name: str = "tiny", **changes) -> Path:
    study = {
        "name": name,
        "trial": trial,
        "search": {"method.temperature": {"loguniform": [0.05, 0.5]}, "method.loss_weight": {"uniform": [0.1, 1.0]}},
        "num_trials": 3,
        "max_concurrent": 1,
        "resources": {"cpus": 1},
        "scheduler": {"type": "asha", "grace_period": 1, "reduction_factor": 2},
        "storage": str(folder / "smcl-runs"),
        "seed": 0,
    }
    study.update(changes)
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(study))
    return path


def _trial_runs(client, experiment_name: str) -> list:
    """The trial runs (not the study run) of an MLflow experiment; [] before it exists."""
    experiment = client.get_experiment_by_name(experiment_name)
    if experiment is None:
        return []
    return [
        run
        for run in client.search_runs([experiment.experiment_id], max_results=100)
        if run.data.tags.get("smcl.role") != "study"
    ]


@pytest.fixture(scope="session")
def tiny_study(tiny_config):
    """`tiny_study(folder, name="tiny", **changes)` writes a tiny study file and returns its path;
    `changes` replace top-level keys of the study. Its trials are `tiny_config`'s for 3 epochs,
    with 10 validation and test images per class, masking on half of the steps."""
    trial = tiny_config(epochs=3, num_threads=1)
    trial["data"]["val_per_class"] = 10
    trial["data"]["synthetic"].update(test_per_class=10, val_pool_per_class=10)
    trial["method"] = {"name": "smcl", "mask_start_epoch": 0, "mask_end_epoch": 10}
    return functools.partial(_write_tiny_study, trial)


@pytest.fixture(scope="session")
def trial_runs():
    """`trial_runs(client, experiment_name)`: the trial runs of a study's experiment."""
    return _trial_runs


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _cli(*arguments, cwd, timeout=120, env=None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "smcl_tune.cli", *arguments],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )


def _dashboard_details(storage, study: str) -> list[dict]:
    """Start `smcl-tune dashboard`, read each study it serves over HTTP, stop it: the studies'
    details as optuna-dashboard's API gives them (with `name` set to the study's name)."""
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "smcl_tune.cli", "dashboard", study, "--storage", str(storage), "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}/api/studies"
    try:
        deadline = time.time() + 120
        while True:
            try:
                with urllib.request.urlopen(base, timeout=10) as answer:
                    summaries = json.load(answer)["study_summaries"]
                break
            except OSError:
                assert process.poll() is None, process.stdout.read()
                assert time.time() < deadline, "the dashboard never answered"
                time.sleep(0.5)
        details = []
        for summary in summaries:
            with urllib.request.urlopen(f"{base}/{summary['study_id']}", timeout=30) as answer:
                details.append({**json.load(answer), "name": summary["study_name"]})
        return details
    finally:
        process.terminate()
        process.wait(timeout=30)


def _dashboard_studies(storage, study: str) -> tuple[list[str], list[int]]:
    """Start `smcl-tune dashboard`, read its studies over HTTP, stop it: (study names, their trial counts)."""
    details = _dashboard_details(storage, study)
    return [detail["name"] for detail in details], [len(detail["trials"]) for detail in details]


@pytest.fixture(scope="session")
def run_cli():
    """`run_cli(*arguments, cwd=folder, env=None)`: `smcl-tune ARGUMENTS` in a subprocess, its output captured."""
    return _cli


@pytest.fixture(scope="session")
def dashboard_studies():
    """`dashboard_studies(storage, study)`: the study names and trial counts `smcl-tune dashboard` serves."""
    return _dashboard_studies


@pytest.fixture(scope="session")
def dashboard_details():
    """`dashboard_details(storage, study)`: each study `smcl-tune dashboard` serves, as its API gives it."""
    return _dashboard_details


def _refused_by_main(ray_starts: list, arguments: list[str], capsys) -> str:
    from smcl_tune.cli import main

    assert main(arguments) == 2
    error = capsys.readouterr().err.strip()
    assert "Traceback" not in error and len(error.splitlines()) == 1, error
    assert ray_starts == []  # refused before Ray was started or joined
    return error


@pytest.fixture
def refused_by_main(ray_starts):
    """`refused_by_main(arguments, capsys)`: `smcl-tune ARGUMENTS` in this process exits 2 with one
    line and no traceback, before Ray starts; the line."""
    return functools.partial(_refused_by_main, ray_starts)
