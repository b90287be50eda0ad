"""`smcl-tune --help` and `validate` answer without loading torch, MLflow or Ray (also of a study
whose data is an image folder or file lists: listing its files is the check); a trial loads torch
but not torch._dynamo, whose import is about 1 s of every trial process's start-up."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from PIL import Image

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("torch", "torchvision", "torch._dynamo", "mlflow", "ray", "optuna", "plotly")
# Runs the CLI's main in this interpreter, then names the heavy packages it imported.
PROBE = f"""
import sys
from smcl_tune.cli import main
try:
    code = main(sys.argv[1:])
except SystemExit as exit:
    code = exit.code
print("loaded:", ",".join(sorted(name for name in {HEAVY!r} if name in sys.modules)))
sys.exit(code)
"""


def _loaded(*arguments: str) -> tuple[list[str], str]:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, *arguments], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    last = done.stdout.strip().splitlines()[-1]
    assert last.startswith("loaded:"), done.stdout
    return [name for name in last.removeprefix("loaded:").strip().split(",") if name], done.stdout


@pytest.mark.parametrize(
    "arguments",
    [("--help",), ("validate", "studies/quickstart.yaml"), ("validate", "studies/cifar100_lt.yaml")],
    ids=["help", "validate", "validate a CIFAR study"],
)
def test_the_quick_commands_load_no_heavy_library(arguments):
    loaded, output = _loaded(*arguments)
    assert loaded == [], f"smcl-tune {' '.join(arguments)} imported {loaded}"
    if arguments[0] == "validate":  # and still did its work
        assert f"study '{Path(arguments[1]).stem}' is valid" in output


def test_a_trial_trains_without_importing_torch_dynamo(tmp_path, tiny_config):
    """torch.optim's optimizers and torchvision's ops import torch._dynamo: a synthetic trial
    (small CNN, SGD with momentum) uses neither."""
    trial = tmp_path / "trial.yaml"
    trial.write_text(yaml.safe_dump(tiny_config(epochs=1, num_threads=1)))
    loaded, output = _loaded("trial", str(trial), "--output", str(tmp_path / "out"))
    assert "status: completed" in output
    assert loaded == ["torch"], f"a trial imported {loaded}"


def _image_folder(root: Path) -> Path:
    for split, count in (("train", 12), ("test", 3)):
        for name in ("ant", "bee"):
            (root / split / name).mkdir(parents=True)
            for index in range(count):
                Image.new("RGB", (8, 8), (index * 20, 0, 0)).save(root / split / name / f"{index}.png")
    return root


def test_validating_a_study_of_an_image_folder_or_file_lists_loads_no_heavy_library(tmp_path):
    folder = _image_folder(tmp_path / "images")
    lists = tmp_path / "lists"
    lists.mkdir()
    for split in ("train", "val", "test"):
        files = sorted((folder / ("test" if split == "val" else split)).rglob("*.png"))
        lines = [f"{os.path.relpath(path, lists)} {int(path.parent.name == 'bee')}" for path in files]
        (lists / f"{split}.txt").write_text("\n".join(lines) + "\n")
    study = yaml.safe_load((ROOT / "studies" / "quickstart.yaml").read_text())
    data = {"image_size": 8, "n_max": 12, "imbalance_factor": 2, "val_per_class": 2, "many_above": 10, "few_below": 3}
    for source, root in (("image_folder", folder), ("file_list", lists)):
        study["trial"]["data"] = {"source": source, "root": str(root), **data}
        path = tmp_path / f"{source}.yaml"
        path.write_text(yaml.safe_dump({**study, "name": source}))
        loaded, output = _loaded("validate", str(path))
        assert f"study '{source}' is valid" in output
        assert loaded == [], f"validating a study of an {source} imported {loaded}"
