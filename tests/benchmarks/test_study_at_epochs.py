"""benchmarks/gpu/study_at_epochs.py, run as gpu_run.sh runs it: the shipped GPU study at the epoch
budget that the GPU check's packed trials leave time for, still a valid study."""

import subprocess
import sys
from pathlib import Path

import yaml

from smcl_tune.studyfile.study import load_study

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "gpu" / "study_at_epochs.py"
STUDY = ROOT / "studies" / "cifar10_lt_gpu.yaml"
# The packed trials' table as check.py prints it (the first GPU run's rows).
PACKED_TABLE = """trial      epochs   s/epoch     img/s  peak MiB  reserved MiB  ended s
packed-0        5     2.190      5620       454           488       33
packed-1        5     2.299      5354       454           488       33
packed-2        5     2.162      5692       454           488       31
packed-3        5     2.263      5447       454           492       34
"""


def _run(tmp_path: Path, *arguments: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(SCRIPT), str(STUDY), "--out", str(tmp_path / "study.yaml"), *arguments],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )


def test_the_time_left_becomes_an_equal_epoch_budget_with_the_schedule_rescaled(tmp_path):
    log = tmp_path / "gpu_check.log"
    log.write_text(PACKED_TABLE)
    done = _run(tmp_path, "--seconds", "332", "--log", str(log), "--storage", str(tmp_path / "runs"))
    assert done.returncode == 0, done.stderr
    # median 2.2265 s/epoch; 6 trials in waves of 4: 2 waves of 166 s, 45 s of each for start-up
    assert done.stdout.strip() == "2.23 s/epoch packed, 6 trials, 332 s: 54 epochs"
    study = load_study(tmp_path / "study.yaml")
    training = study.base_trial.training
    assert (training.epochs, training.milestones, training.warmup_epochs) == (54, [43, 49], 5)
    assert study.config.storage == str(tmp_path / "runs")
    assert (study.config.resources.gpus, study.config.max_concurrent) == (0.25, 4)


def test_a_short_budget_opens_the_mask_window_and_a_missing_table_is_refused(tmp_path):
    done = _run(tmp_path, "--epochs", "4")
    assert done.returncode == 0, done.stderr
    method = yaml.safe_load((tmp_path / "study.yaml").read_text())["trial"]["method"]
    assert (method["mask_start_epoch"], method["mask_end_epoch"]) == (0, 4)
    refused = _run(tmp_path, "--seconds", "300", "--log", str(tmp_path / "no-such.log"))
    assert refused.returncode == 2 and "--epochs" in refused.stderr
