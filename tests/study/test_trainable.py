"""What a study's processes import: the driver never trains, and a Ray worker never tracks."""

import json
import subprocess
import sys

import pytest


def _loaded_after(statement: str, names: tuple[str, ...]) -> list[str]:
    probe = f"import json, sys; {statement}; print(json.dumps(sorted(n for n in {names!r} if n in sys.modules)))"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_importing_the_trainable_loads_no_torch_optuna_or_mlflow():
    # A worker needs neither Optuna nor MLflow; the driver, which imports the trainable to hand it
    # to Ray, never trains: torch loads only where a trial runs (seconds off every `smcl-tune run`).
    assert _loaded_after("import smcl_tune.study.trainable", ("optuna", "mlflow", "torch")) == []


@pytest.mark.slow
def test_the_study_driver_loads_no_torch():
    assert _loaded_after("import smcl_tune.study.runner, smcl_tune.cli.study_commands", ("torch",)) == []
