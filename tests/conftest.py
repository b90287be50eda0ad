"""Checks that hold for the whole suite."""

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
RUN_STATE = ("mlruns", "mlartifacts", "smcl-runs", "mlflow.db")


@pytest.fixture(scope="session", autouse=True)
def repository_stays_clean():
    """Tests keep Ray, MLflow and Optuna state in temporary folders, never in the repository."""
    before = {name for name in RUN_STATE if (ROOT / name).exists()}
    yield
    written = {name for name in RUN_STATE if (ROOT / name).exists()} - before
    assert not written, f"a test wrote run state into the repository: {sorted(written)}"
