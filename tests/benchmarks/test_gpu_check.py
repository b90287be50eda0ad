"""benchmarks/gpu/check.py's dry run on the CPU, as its README runs it, on a tiny image folder:
the training table and the packed trials, which the study's own trainable runs through Ray Tune."""

import subprocess
import sys
from pathlib import Path

import pytest
import torch
from PIL import Image

ROOT = Path(__file__).resolve().parents[2]
# check.py trains on the folder as prepare_data.py writes it (the published subset, no validation split).
TRAIN_PER_CLASS, TEST_PER_CLASS = 102, 2


def _image_folder(root: Path) -> Path:
    generator = torch.Generator().manual_seed(0)
    for split, count in (("train", TRAIN_PER_CLASS), ("test", TEST_PER_CLASS)):
        for name in ("airplane", "bird"):
            folder = root / split / name
            folder.mkdir(parents=True)
            for index in range(count):
                pixels = torch.randint(0, 256, (32, 32, 3), dtype=torch.uint8, generator=generator)
                Image.fromarray(pixels.numpy()).save(folder / f"{index}.png")
    return root


@pytest.mark.ray
@pytest.mark.slow
def test_the_cpu_dry_run_trains_both_methods_and_reports_four_packed_trials(tmp_path):
    data = _image_folder(tmp_path / "data")
    command = [sys.executable, "benchmarks/gpu/check.py", "--cpu", "--data", str(data), "--epochs", "1"]
    command += ["--ray-epochs", "1", "--steps-per-epoch", "1", "--ray-storage", str(tmp_path / "ray")]
    completed = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    summary = completed.stdout.split("=== summary ===")[1].splitlines()
    trained = {line.split()[0]: line.split() for line in summary if line.startswith(("ce ", "smcl "))}
    assert sorted(trained) == ["ce", "smcl"]
    assert all(cells[1] == "1" for cells in trained.values())  # epochs
    packed = {line.split()[0]: line.split() for line in summary if line.startswith("packed-")}
    assert sorted(packed) == [f"packed-{seed}" for seed in range(4)], summary
    for cells in packed.values():
        epochs, seconds_per_epoch, images_per_second, ended = int(cells[1]), float(cells[2]), cells[3], float(cells[-1])
        assert epochs == 1 and seconds_per_epoch > 0 and images_per_second.isdigit() and ended > 0
    assert any(line.startswith("combined: ") for line in summary)
    assert list((tmp_path / "ray" / "packed").glob("*/checkpoint_*")), "the trainable checkpoints every epoch"
