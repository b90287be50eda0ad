"""What a Ray worker imports: the trainable, without Optuna or MLflow."""

import subprocess
import sys

import pytest


@pytest.mark.slow
def test_importing_the_trainable_imports_neither_optuna_nor_mlflow():
    probe = (
        "import sys, smcl_tune.study.trainable; "
        "print(sorted(name for name in ('optuna', 'mlflow') if name in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "[]"
