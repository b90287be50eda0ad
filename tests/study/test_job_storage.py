"""Under a Ray job, `smcl-tune run` refuses a study whose state Ray would delete with the job.

Ray's job supervisor marks the entrypoint's environment with RAY_JOB_CONFIG_JSON_ENV_VAR; these
tests set it by hand in a subprocess's environment, so no Ray starts (the real job is in
test_ray_job_submit.py)."""

import json
import os
import subprocess
import sys

import pytest
import yaml

from smcl_tune.cli import main
from smcl_tune.errors import ConfigError
from smcl_tune.store.paths import StudyPaths
from smcl_tune.study.job_storage import RAY_JOB_CONFIG_ENV, check_job_storage
from smcl_tune.studyfile.study import load_study

JOB_ID = "raysubmit_T3stJ0b"


def _job_environment() -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key != "RAY_ADDRESS"}
    env[RAY_JOB_CONFIG_ENV] = json.dumps({"runtime_env": {}, "metadata": {"job_submission_id": JOB_ID}})
    return env


def _run_as_job(study, cwd) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "smcl_tune.cli", "run", str(study)],
        cwd=cwd,
        env=_job_environment(),
        capture_output=True,
        text=True,
        timeout=120,
    )


def _assert_refused(done: subprocess.CompletedProcess, *phrases: str) -> str:
    assert done.returncode == 2, done.stdout + done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr  # one line, no traceback
    assert all(phrase in lines[0] for phrase in (JOB_ID, "absolute path on a folder every node shares", *phrases))
    return lines[0]


@pytest.mark.slow
def test_a_job_refuses_a_relative_storage_before_anything_starts(tmp_path, tiny_study):
    study = tiny_study(tmp_path, storage="smcl-runs")
    line = _assert_refused(_run_as_job(study, tmp_path), "storage: 'smcl-runs' is relative")
    assert line.startswith(f"smcl-tune: {study}: ")
    assert sorted(path.name for path in tmp_path.iterdir()) == [study.name]  # nothing written


def _refused_in_process(study, monkeypatch, capsys, ray_starts) -> str:
    monkeypatch.setenv(RAY_JOB_CONFIG_ENV, _job_environment()[RAY_JOB_CONFIG_ENV])
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    assert main(["run", str(study)]) == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and JOB_ID in error and "absolute path on a folder every node shares" in error
    assert ray_starts == []
    return error


def test_a_job_refuses_a_relative_sqlite_tracking_store(tmp_path, tiny_study, monkeypatch, capsys, ray_starts):
    monkeypatch.chdir(tmp_path)
    study = tiny_study(tmp_path, tracking={"uri": "sqlite:///runs/mlflow.db"})
    error = _refused_in_process(study, monkeypatch, capsys, ray_starts)
    assert "tracking.uri: 'sqlite:///runs/mlflow.db' names a relative path" in error
    assert not (tmp_path / "smcl-runs").exists() and not (tmp_path / "runs").exists()


def test_a_job_refuses_an_absolute_storage_inside_rays_session_folder(
    tmp_path, tiny_study, monkeypatch, capsys, ray_starts
):
    session = tmp_path / "ray" / "session_2026-11-30_03-00-00_000000_1"
    working_dir = session / "runtime_resources" / "working_dir_files" / "_ray_pkg_0123"
    working_dir.mkdir(parents=True)
    (tmp_path / "ray" / "session_latest").symlink_to(session)
    monkeypatch.chdir(working_dir)
    storage = tmp_path / "ray" / "session_latest" / "runtime_resources" / "working_dir_files" / "_ray_pkg_0123" / "runs"
    study = tiny_study(tmp_path, storage=str(storage))
    error = _refused_in_process(study, monkeypatch, capsys, ray_starts)
    assert f"storage: {working_dir / 'runs'} lies inside Ray's session folder {session}" in error
    assert not storage.exists()


@pytest.mark.parametrize(
    "environment, changes",
    [
        ({}, {"storage": "smcl-runs"}),
        ({}, {"tracking": {"uri": "sqlite:///runs/mlflow.db"}}),
        ({RAY_JOB_CONFIG_ENV: json.dumps({"metadata": {"job_submission_id": JOB_ID}})}, {}),
        ({RAY_JOB_CONFIG_ENV: "{}"}, {"tracking": {"uri": "http://127.0.0.1:5000"}}),
    ],
    ids=["relative storage, no job", "relative tracking, no job", "absolute storage in a job", "server in a job"],
)
def test_what_a_job_keeps_and_what_runs_outside_a_job_pass(tmp_path, tiny_study, environment, changes):
    study = load_study(tiny_study(tmp_path, **changes))
    check_job_storage(study, StudyPaths.of(study), environment)


def test_a_run_in_process_leaves_the_environment_as_it_found_it(tmp_path, tiny_study, monkeypatch, capsys, ray_starts):
    # A plain run picks Tune's quiet reporter through RAY_AIR_NEW_OUTPUT; a leftover value would take
    # Ray's own tables away from a later `--verbose` run started from the same process (CI saw it).
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("RAY_AIR_NEW_OUTPUT", raising=False)
    _refused_in_process(tiny_study(tmp_path, storage="smcl-runs"), monkeypatch, capsys, ray_starts)
    assert "RAY_AIR_NEW_OUTPUT" not in os.environ


def _in_a_ray_job_folder(tmp_path, monkeypatch):
    session = tmp_path / "ray" / "session_2026-12-04_03-00-00_000000_1"
    working_dir = session / "runtime_resources" / "working_dir_files" / "_ray_pkg_4567"
    working_dir.mkdir(parents=True)
    (tmp_path / "ray" / "session_latest").symlink_to(session)
    monkeypatch.chdir(working_dir)
    return working_dir


def test_a_job_whose_every_store_is_remote_is_accepted(tmp_path, tiny_study, monkeypatch):
    _in_a_ray_job_folder(tmp_path, monkeypatch)
    study = load_study(
        tiny_study(
            tmp_path,
            storage="s3://bucket/runs?endpoint_override=127.0.0.1:9000&scheme=http",
            optuna={"storage": "postgresql://smcl@db:5432/studies"},
            tracking={"uri": "http://mlflow:5000"},
        )
    )
    check_job_storage(study, StudyPaths.of(study), _job_environment())


@pytest.mark.parametrize(
    "changes, field",
    [
        ({"tracking": {"uri": "http://mlflow:5000"}}, "optuna.storage (unset: the Optuna study"),
        ({"optuna": {"storage": "postgresql://smcl@db:5432/studies"}}, "tracking.uri (unset: the MLflow store"),
    ],
    ids=["no database", "no tracking server"],
)
def test_a_job_with_s3_storage_that_would_keep_a_store_in_its_folder_is_refused_naming_the_field(
    tmp_path, tiny_study, monkeypatch, changes, field
):
    working_dir = _in_a_ray_job_folder(tmp_path, monkeypatch)
    study = load_study(tiny_study(tmp_path, storage="s3://bucket/runs", **changes))
    with pytest.raises(ConfigError) as refused:
        check_job_storage(study, StudyPaths.of(study), _job_environment())
    assert f"{field}" in str(refused.value) and f"{working_dir / 'smcl-runs'} lies inside Ray's session folder" in str(
        refused.value
    )


def _cifar_study(tiny_study, folder, **changes):
    """The tiny study on CIFAR-10 under a relative data.root, fetched on first run (none here)."""
    path = tiny_study(folder, name="cifar", **changes)
    study = yaml.safe_load(path.read_text())
    study["trial"]["data"] = {"source": "cifar10", "root": "data", "download": True, "val_per_class": 10}
    path.write_text(yaml.safe_dump(study))
    return path


def test_a_job_refuses_a_cifar_fetch_into_its_working_folder_and_a_relative_storage_before_any_fetch(
    tmp_path, tiny_study, monkeypatch, capsys, ray_starts
):
    working_dir = _in_a_ray_job_folder(tmp_path, monkeypatch)  # a relative data.root lands in it
    study = _cifar_study(tiny_study, tmp_path)
    error = _refused_in_process(study, monkeypatch, capsys, ray_starts)
    assert f"trial.data.root: cifar10 would be fetched into {working_dir / 'data'}, inside Ray's session" in error
    assert "fetch it there once with smcl-tune prepare" in error and not (working_dir / "data").exists()

    relative = _cifar_study(tiny_study, tmp_path, storage="smcl-runs")
    error = _refused_in_process(relative, monkeypatch, capsys, ray_starts)  # this machine has no network:
    assert "storage: 'smcl-runs' is relative" in error  # a fetch first would have failed with its own line
