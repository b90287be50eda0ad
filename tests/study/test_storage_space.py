"""A study whose storage fills up (issue 26, item 3): `smcl-tune run` stops with one message that
names the storage and the space needed (exit 1, no traceback), leaves no checkpoint half-written,
and the same command finishes the study once space is freed, with every epoch logged once."""

import errno
import shutil
import subprocess
import sys

import pytest
import torch
from mlflow.tracking import MlflowClient

from smcl_tune.atomic_write import StorageFull
from smcl_tune.layout import ARTIFACT_FOLDER
from smcl_tune.report.publish import publish_leaderboard
from smcl_tune.store.paths import default_tracking_uri
from tests.fixtures.ci import skip_unless_ci
from tests.fixtures.tracking_store import wait_for_logged_losses

pytestmark = [pytest.mark.ray, pytest.mark.slow]

# a study of two tiny trials of the small CNN needs about 10 MB; 4 MB are free at first, so the disk
# fills while the trials write their checkpoints
SIZE_MB, BALLAST_MB = 16, 12


@pytest.fixture
def small_storage(tmp_path):
    folder = tmp_path / "storage"
    folder.mkdir()
    mount = ["mount", "-t", "tmpfs", "-o", f"size={SIZE_MB}m", "tmpfs", str(folder)]
    mounted = subprocess.run(mount, capture_output=True, text=True)
    if mounted.returncode != 0:
        skip_unless_ci(
            f"cannot mount a tmpfs here ({mounted.stderr.strip()}); tests/test_atomic_write.py caps files instead"
        )
    yield folder
    subprocess.run(["umount", "-l", str(folder)], check=True)


def _run(study, cwd, environment: dict[str, str]) -> subprocess.CompletedProcess:
    """`smcl-tune run` joining the session's Ray (`environment`): where Ray runs is not the subject here."""
    return subprocess.run(
        [sys.executable, "-m", "smcl_tune.cli", "run", str(study)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=600,
        env={**environment, "RAY_DEDUP_LOGS": "0"},
    )


def test_a_full_storage_stops_the_study_and_the_same_command_finishes_it(
    tmp_path, small_storage, tiny_study, trial_runs, joining_env
):
    ballast = small_storage / "ballast"
    ballast.write_bytes(b"\0" * (BALLAST_MB << 20))
    storage = small_storage / "smcl-runs"
    study = tiny_study(  # the small CNN: the tiny one's checkpoints fit the disk
        tmp_path, architecture="small_cnn", num_trials=2, scheduler={"type": "fifo"}, storage=str(storage)
    )

    full = _run(study, tmp_path, joining_env)
    output = full.stdout + full.stderr
    assert full.returncode == 1, output
    assert "Traceback" not in output
    last = full.stderr.strip().splitlines()[-1]
    assert last.startswith(f"smcl-tune: {small_storage}: the storage is full ("), output
    assert "needs" in last and "MB" in last and "run the same command again" in last
    assert not [path for path in storage.rglob("*") if ".partial" in path.name or path.suffix == ".tmp"]
    checkpoints = list(storage.rglob("trial.pt"))
    assert checkpoints, sorted(str(path) for path in storage.rglob("*"))  # the epochs before the disk filled
    for checkpoint in checkpoints:  # each one whole: it loads
        torch.load(checkpoint, map_location="cpu", weights_only=True)

    ballast.unlink()  # space is freed
    _finishes_with_every_epoch_once(study, tmp_path, joining_env, default_tracking_uri(storage), trial_runs)


def _fill(folder) -> None:
    with (folder / "ballast").open("wb") as ballast:
        try:
            while True:
                ballast.write(b"\0" * (64 << 10))
                ballast.flush()
        except OSError as error:
            assert error.errno == errno.ENOSPC, error


def test_the_driver_finding_its_stores_full_stops_the_study_naming_them_and_the_same_command_finishes_it(
    tmp_path, small_storage, tiny_study, trial_runs, joining_env
):
    # the driver's own writes on the small disk: the MLflow and Optuna stores (the trials' checkpoints are not)
    tracking, optuna_file = small_storage / "mlflow.db", small_storage / "optuna.db"
    study = tiny_study(
        tmp_path,
        num_trials=2,
        scheduler={"type": "fifo"},
        storage=str(tmp_path / "smcl-runs"),
        tracking={"uri": f"sqlite:///{tracking}"},
        optuna={"storage": f"sqlite:///{optuna_file}"},
    )
    command = [sys.executable, "-m", "smcl_tune.cli", "run", str(study)]
    driver = subprocess.Popen(command, cwd=tmp_path, env=joining_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        wait_for_logged_losses(tracking, driver)  # the study is under way
        _fill(small_storage)
        output, error = driver.communicate(timeout=300)
    finally:
        if driver.poll() is None:
            driver.kill()
    error = error.decode()
    assert driver.returncode == 1, output.decode()[-2000:] + error[-3000:]
    *before, last = error.strip().splitlines()
    assert last.startswith(f"smcl-tune: {small_storage}: the storage is full (0.0 MB free of {SIZE_MB}.0 MB)"), error
    assert not [line for line in before if "full" in line or "Error" in line or "Traceback" in line], error

    (small_storage / "ballast").unlink()  # space is freed
    _finishes_with_every_epoch_once(study, tmp_path, joining_env, f"sqlite:///{tracking}", trial_runs)


def _finishes_with_every_epoch_once(study, cwd, environment, tracking_uri: str, trial_runs) -> None:
    """The same command, run again, finishes the study: each trial one run, each epoch logged once."""
    finished = _run(study, cwd, environment)
    assert finished.returncode == 0, finished.stdout + finished.stderr
    client = MlflowClient(tracking_uri)
    runs = trial_runs(client, "tiny")
    assert sorted(run.data.tags["mlflow.runName"] for run in runs) == ["trial-000", "trial-001"]  # none twice
    for run in runs:
        assert run.info.status == "FINISHED"
        assert sorted(metric.step for metric in client.get_metric_history(run.info.run_id, "loss")) == [0, 1, 2]


def test_a_leaderboard_that_does_not_fit_its_storage_is_one_message_and_a_later_run_logs_it(small_storage, build_store):
    """A finished study's last write, its leaderboard's CSV and HTML logged to MLflow, on a full disk:
    StorageFull (the CLI's one line, exit 1) naming the storage and the files' size, nothing left
    half-written; `smcl-tune run` again logs them once there is space."""
    storage = small_storage / "smcl-runs"
    uri = build_store(storage)
    ballast = small_storage / "ballast"
    ballast.write_bytes(b"\0" * (shutil.disk_usage(small_storage).free - (64 << 10)))  # 64 KB left
    artifacts = storage / ARTIFACT_FOLDER
    with pytest.raises(StorageFull) as refused:
        publish_leaderboard(uri, "lt", artifacts)
    message = str(refused.value)
    assert message.startswith(f"{small_storage}: the storage is full ("), message
    assert "writing the leaderboard's CSV and HTML needs" in message and "run the same command again" in message
    written = sorted(path.name for path in artifacts.rglob("leaderboard/*"))
    assert written in ([], ["lt.csv"]), written  # the small CSV may fit; no part of the HTML, no staged file

    ballast.unlink()
    assert publish_leaderboard(uri, "lt", artifacts) is not None
    assert sorted(path.name for path in artifacts.rglob("leaderboard/*")) == ["lt.csv", "lt.html"]
