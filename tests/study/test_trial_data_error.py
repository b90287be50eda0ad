"""Data a trial cannot read stops the study in one line, as a user runs it: an image folder whose
listing passes the driver's check but one of whose images cannot be decoded. No trial is recorded
as failed, and once the image is fixed the same command resumes the study to its end."""

import copy
import sqlite3
import subprocess
import sys
from pathlib import Path

import optuna
import pytest
from PIL import Image

from smcl_tune.layout import OPTUNA_FILE

pytestmark = [pytest.mark.ray, pytest.mark.slow]

CLASSES = ("ant", "bee", "cat")


def _image_folder(root: Path) -> Path:
    for split, count in (("train", 16), ("test", 4)):
        for number, name in enumerate(CLASSES):
            (root / split / name).mkdir(parents=True)
            for index in range(count):
                colour = (80 * number, 10 * index, 120)
                Image.new("RGB", (16, 16), colour).save(root / split / name / f"{index}.png")
    return root


def _optuna_states(storage: Path, name: str) -> list[str]:
    trials = optuna.load_study(study_name=name, storage=f"sqlite:///{storage / name / OPTUNA_FILE}").trials
    return [trial.state.name for trial in trials]


def _trial_run_statuses(storage: Path) -> list[str]:
    with sqlite3.connect(storage / "mlflow.db") as database:
        rows = database.execute(
            "select status from runs where run_uuid not in "
            "(select run_uuid from tags where key = 'smcl.role' and value = 'study')"
        ).fetchall()
    return [status for (status,) in rows]


@pytest.mark.parametrize("fuse", [1, 2], ids=["one trial a process", "fused in twos"])
def test_an_unreadable_image_stops_the_study_in_one_line_and_the_same_command_resumes_it(
    tmp_path, tiny_study, joining_env, fuse
):
    images = _image_folder(tmp_path / "images")
    broken = images / "train" / "bee" / "3.png"
    whole = broken.read_bytes()
    broken.write_bytes(b"not a png")  # listed like any image: the driver's check passes
    trial = copy.deepcopy(tiny_study.args[0])
    trial["data"] = {"source": "image_folder", "root": str(images), "imbalance_factor": 2, "val_per_class": 2}
    resources = {"cpus": 1, "fuse": fuse}
    path = tiny_study.func(
        trial, tmp_path, name="unreadable", num_trials=3, scheduler={"type": "fifo"}, resources=resources
    )
    command = [sys.executable, "-m", "smcl_tune.cli", "run", str(path)]
    storage = tmp_path / "smcl-runs"

    stopped = subprocess.run(command, cwd=tmp_path, env=joining_env, capture_output=True, text=True, timeout=600)
    assert stopped.returncode == 1, stopped.stderr[-3000:]
    said = [line for line in stopped.stderr.splitlines() if line.startswith("smcl-tune:")]
    assert len(said) == 1, stopped.stderr[-3000:]
    assert "a trial could not read the study's data:" in said[0] and str(broken) in said[0]
    assert "fix the data and run the same command again" in said[0]
    assert "Traceback" not in stopped.stderr
    assert "FAIL" not in _optuna_states(storage, "unreadable")  # the trial that hit it is not a failed trial
    assert set(_trial_run_statuses(storage)) <= {"KILLED"}  # nor a finished MLflow run: interrupted, as on Ctrl-C
    status = subprocess.run([*command[:3], "status", "unreadable"], cwd=tmp_path, capture_output=True, text=True)
    assert status.stdout.startswith("study unreadable: stopped,"), status.stdout + status.stderr  # not `failed`

    broken.write_bytes(whole)
    resumed = subprocess.run(command, cwd=tmp_path, env=joining_env, capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    # Ray's warning on its result grid, of the trial the stop left without result files, read as a failure
    assert "Failed to fetch metrics" not in resumed.stderr + resumed.stdout
    assert _optuna_states(storage, "unreadable") == ["COMPLETE"] * 3
    assert _trial_run_statuses(storage) == ["FINISHED"] * 3
