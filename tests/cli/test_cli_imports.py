"""`smcl-tune --help` and `validate` answer without loading torch, MLflow or Ray; a trial loads
torch but not torch._dynamo, whose import is about 1 s of every trial process's start-up."""

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

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
