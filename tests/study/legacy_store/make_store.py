"""Writes `format3_store.tar.gz`: a study that smcl-tune's record format 3 started and a SIGINT
interrupted, as the architecture moves of issue 36 found it (commit 3929dc4). The test in
tests/study/test_legacy_store.py resumes it with today's code.

The store names its own absolute paths (the study record, MLflow's artifact locations, Ray's
experiment state), so it is written in, and extracted to, one fixed folder: LEGACY_FOLDER.

    python tests/study/legacy_store/make_store.py   # with the smcl-tune of that commit installed
"""

import os
import shutil
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import yaml
from mlflow.tracking import MlflowClient

LEGACY_FOLDER = Path("/tmp/smcl-tune-legacy-format3")
STUDY = "legacy"
ARCHIVE = Path(__file__).with_name("format3_store.tar.gz")


def study_file() -> dict:
    trial = {
        "data": {
            "source": "synthetic",
            "num_classes": 5,
            "n_max": 60,
            "imbalance_factor": 10,
            "val_per_class": 6,
            "many_above": 30,
            "few_below": 10,
            "synthetic": {"image_size": 16, "test_per_class": 10, "val_pool_per_class": 10},
        },
        "model": {"architecture": "small_cnn"},
        "method": {"name": "smcl", "mask_start_epoch": 0, "mask_end_epoch": 10},
        "training": {
            "epochs": 4,
            "batch_size": 32,
            "lr": 0.05,
            "warmup_epochs": 0,
            "milestones": [],
            "milestone_factors": [],
            "device": "cpu",
            "num_threads": 1,
        },
    }
    return {
        "name": STUDY,
        "trial": trial,
        "conditions": {"data.imbalance_factor": [10]},
        "search": {"method.temperature": {"loguniform": [0.05, 0.5]}},
        "baselines": [{"name": "ce", "overrides": {"method.name": "ce"}}],
        "num_trials": 2,
        "max_concurrent": 1,
        "resources": {"cpus": 1},
        "scheduler": {"type": "fifo"},
        "storage": "smcl-runs",
        "seed": 0,
    }


def main() -> None:
    shutil.rmtree(LEGACY_FOLDER, ignore_errors=True)
    LEGACY_FOLDER.mkdir(parents=True)
    (LEGACY_FOLDER / f"{STUDY}.yaml").write_text(yaml.safe_dump(study_file()))
    driver = subprocess.Popen(
        [sys.executable, "-m", "smcl_tune.cli", "run", f"{STUDY}.yaml"],
        cwd=LEGACY_FOLDER,
        start_new_session=True,
    )
    record = LEGACY_FOLDER / "smcl-runs" / STUDY / "smcl-study.json"
    deadline = time.time() + 600
    while not record.exists() and time.time() < deadline:  # the driver has made its MLflow store
        time.sleep(0.5)
    time.sleep(5)
    client = MlflowClient(tracking_uri=f"sqlite:///{LEGACY_FOLDER / 'smcl-runs' / 'mlflow.db'}")
    while time.time() < deadline:  # until the baseline has ended and a search trial has two epochs
        time.sleep(0.5)
        try:
            runs = [r for r in client.search_runs(["1"]) if r.data.tags.get("smcl.role") != "study"]
        except Exception:
            continue
        ended = [r for r in runs if r.info.status != "RUNNING"]
        running = [
            r for r in runs if r.info.status == "RUNNING" and len(client.get_metric_history(r.info.run_id, "loss")) >= 2
        ]
        if ended and running:
            break
    os.killpg(driver.pid, signal.SIGINT)
    assert driver.wait(timeout=120) == 1
    time.sleep(5)  # Ray's workers outlive the driver's group for a moment
    with tarfile.open(ARCHIVE, "w:gz") as archive:
        archive.add(LEGACY_FOLDER, arcname=LEGACY_FOLDER.name)
    print(f"wrote {ARCHIVE} ({ARCHIVE.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
