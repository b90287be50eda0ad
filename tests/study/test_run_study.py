"""One real study (Ray Tune + Optuna + MLflow), run once, checked from several sides."""

import math

import optuna
import pytest
import ray
from mlflow.tracking import MlflowClient

from smcl_tune.cli import main
from smcl_tune.tracking import default_tracking_uri

from .conftest import tiny_study


@pytest.fixture(scope="module")
def finished_study(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("study")
    # Baselines run first, one trial at a time: `ce` learns, `diverges` turns NaN in its first
    # epoch; the sampled trials then barely train (lr ~1e-7), so ASHA stops them against `ce`.
    path = tiny_study(
        tmp_path, name="e2e",
        search={"training.lr": {"loguniform": [1e-8, 1e-7]}, "method.temperature": {"loguniform": [0.05, 0.5]}},
        baselines=[{"name": "ce", "overrides": {"method.name": "ce"}},
                   {"name": "diverges", "overrides": {"training.lr": 1e20}}],
    )
    code = main(["run", str(path)])
    ray.shutdown()
    storage = tmp_path / "smcl-runs"
    client = MlflowClient(tracking_uri=default_tracking_uri(storage))
    experiment = client.get_experiment_by_name("e2e")
    runs = client.search_runs([experiment.experiment_id], max_results=100)
    optuna_study = optuna.load_study(study_name="e2e", storage=f"sqlite:///{storage / 'e2e' / 'optuna.db'}")
    return code, client, runs, optuna_study


def test_study_exits_0_and_mlflow_nests_one_run_per_trial(finished_study):
    code, client, runs, _ = finished_study
    assert code == 0
    parents = [run for run in runs if run.data.tags.get("smcl.role") == "study"]
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"
    children = [run for run in runs if run.data.tags.get("mlflow.parentRunId") == parents[0].info.run_id]
    assert len(children) == 5  # 3 sampled + 2 baselines
    assert sorted(run.info.run_name for run in children) == [
        "baseline-ce", "baseline-diverges", "trial-000", "trial-001", "trial-002"]
    assert not [run for run in children if run.info.status == "RUNNING"]
    assert client.list_artifacts(parents[0].info.run_id, "study")


def test_completed_trial_has_epoch_metrics_test_metrics_and_artifacts(finished_study):
    _, client, runs, _ = finished_study
    ce = next(run for run in runs if run.info.run_name == "baseline-ce")
    assert ce.info.status == "FINISHED" and ce.data.tags["smcl.state"] == "completed"
    history = client.get_metric_history(ce.info.run_id, "val_balanced_accuracy")
    assert sorted(m.step for m in history) == [0, 1, 2]
    for key in ("loss", "loss_mce", "train_accuracy", "test_top1", "test_balanced_accuracy", "test_many", "test_few"):
        assert key in ce.data.metrics, key
    assert ce.data.params["name"] == "ce"
    artifacts = {item.path for item in client.list_artifacts(ce.info.run_id)}
    assert {"per_class_accuracy.csv", "confusion_matrix.png", "trial_config.json"} <= artifacts


def test_nan_trial_fails_with_its_reason_and_the_study_goes_on(finished_study):
    _, _, runs, _ = finished_study
    diverged = next(run for run in runs if run.info.run_name == "baseline-diverges")
    assert diverged.info.status == "FAILED"
    assert "non-finite loss" in diverged.data.tags["smcl.reason"]


def test_asha_stopped_trials_reach_optuna_as_pruned_with_intermediate_values(finished_study):
    _, _, runs, optuna_study = finished_study
    trials = optuna_study.get_trials()
    assert len(trials) == 3
    pruned = [t for t in trials if t.state == optuna.trial.TrialState.PRUNED]
    assert pruned, [t.state for t in trials]
    for trial in pruned:
        assert 1 <= len(trial.intermediate_values) < 3
        assert all(math.isfinite(v) for v in trial.intermediate_values.values())
    for trial in trials:
        if trial.state == optuna.trial.TrialState.COMPLETE:
            assert len(trial.intermediate_values) == 3
    by_name = {run.info.run_name: run for run in runs}
    for trial in pruned:
        run = by_name[f"trial-{trial.number:03d}"]
        assert run.data.tags["smcl.state"] == "pruned" and run.info.status == "KILLED"
        assert "lr" in run.data.params and "temperature" in run.data.params
