"""One real study (Ray Tune + Optuna + MLflow), run once, checked from several sides."""

import csv
import io
import math

import optuna
import pytest
import ray
from mlflow.tracking import MlflowClient

from smcl_tune.cli import main

pytestmark = [pytest.mark.ray, pytest.mark.slow]


@pytest.fixture(scope="module")
def finished_study(tmp_path_factory, tiny_study):
    tmp_path = tmp_path_factory.mktemp("study")
    # Baselines run first, one trial at a time: `ce` learns, `diverges` turns NaN in its first
    # epoch, `no-few` is `ce` with shot thresholds that leave no few-shot class; the sampled
    # trials then barely train (lr ~1e-7), so ASHA stops them against `ce`. The MLflow store is
    # a tracking URI and experiment of the study file's own choosing.
    tracking_uri = f"sqlite:///{tmp_path / 'tracking.db'}"
    path = tiny_study(
        tmp_path,
        name="e2e",
        search={"training.lr": {"loguniform": [1e-8, 1e-7]}, "method.temperature": {"loguniform": [0.05, 0.5]}},
        baselines=[
            {"name": "ce", "overrides": {"method.name": "ce"}},
            {"name": "diverges", "overrides": {"training.lr": 1e20}},
            {"name": "no-few", "overrides": {"method.name": "ce", "data.few_below": 1}},
        ],
        tracking={"uri": tracking_uri, "experiment": "e2e-experiment"},
    )
    code = main(["run", str(path)])
    ray.shutdown()
    storage = tmp_path / "smcl-runs"
    assert not (storage / "mlflow.db").exists()  # the study's tracking URI, not the default store
    client = MlflowClient(tracking_uri=tracking_uri)
    experiment = client.get_experiment_by_name("e2e-experiment")
    runs = client.search_runs([experiment.experiment_id], max_results=100)
    optuna_study = optuna.load_study(study_name="e2e", storage=f"sqlite:///{storage / 'e2e' / 'optuna.db'}")
    return code, client, runs, optuna_study


def test_study_exits_0_and_mlflow_nests_one_run_per_trial(finished_study):
    code, client, runs, _ = finished_study
    assert code == 0
    parents = [run for run in runs if run.data.tags.get("smcl.role") == "study"]
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"
    children = [run for run in runs if run.data.tags.get("mlflow.parentRunId") == parents[0].info.run_id]
    assert len(children) == 6  # 3 sampled + 3 baselines
    assert sorted(run.info.run_name for run in children) == [
        "baseline-ce",
        "baseline-diverges",
        "baseline-no-few",
        "trial-000",
        "trial-001",
        "trial-002",
    ]
    assert not [run for run in children if run.info.status == "RUNNING"]
    assert client.list_artifacts(parents[0].info.run_id, "study")
    published = {item.path for item in client.list_artifacts(parents[0].info.run_id, "leaderboard")}
    assert published == {"leaderboard/e2e.csv", "leaderboard/e2e.html"}


def test_an_empty_shot_group_is_missing_in_mlflow_and_in_the_leaderboard(finished_study, capsys):
    _, client, runs, _ = finished_study
    no_few = next(run for run in runs if run.info.run_name == "baseline-no-few")
    assert no_few.data.tags["smcl.state"] == "completed"
    assert "test_few" not in no_few.data.metrics and "test_many" in no_few.data.metrics  # missing, not 0
    assert no_few.data.metrics["few_classes"] == 0

    assert main(["leaderboard", "e2e", "--tracking-uri", client.tracking_uri, "--format", "csv"]) == 0
    rows = {row["trial"]: row for row in csv.DictReader(io.StringIO(capsys.readouterr().out))}
    assert rows["baseline-no-few"]["test_few"] == "" and rows["baseline-ce"]["test_few"] != ""
    assert main(["leaderboard", "e2e", "--tracking-uri", client.tracking_uri, "--format", "markdown"]) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("|")]
    header = [cell.strip() for cell in lines[0].strip("|").split("|")]
    cells = {
        row[header.index("trial")]: row
        for row in ([cell.strip() for cell in line.strip("|").split("|")] for line in lines[2:])
    }
    assert cells["baseline-no-few [baseline]"][header.index("few")] == "n/a"
    assert cells["baseline-ce [baseline]"][header.index("few")] not in ("", "n/a")


def test_completed_trial_has_epoch_metrics_test_metrics_and_artifacts(finished_study):
    _, client, runs, _ = finished_study
    ce = next(run for run in runs if run.info.run_name == "baseline-ce")
    assert ce.info.status == "FINISHED" and ce.data.tags["smcl.state"] == "completed"
    history = client.get_metric_history(ce.info.run_id, "val_balanced_accuracy")
    assert sorted(m.step for m in history) == [0, 1, 2]
    for key in ("loss", "loss_mce", "train_accuracy", "test_top1", "test_balanced_accuracy", "test_many", "test_few"):
        assert key in ce.data.metrics, key
    assert ce.data.params["name"] == "ce"
    ray_keys = {
        "training_iteration",
        "time_this_iter_s",
        "time_total_s",
        "pid",
        "timestamp",
        "iterations_since_restore",
        "epochs_planned",
        "done",
    }
    assert not ray_keys & set(ce.data.metrics)  # only the trial's own metric names reach MLflow
    artifacts = {item.path for item in client.list_artifacts(ce.info.run_id)}
    assert {"per_class_accuracy.csv", "confusion_matrix.png", "trial_config.json", "result.json"} <= artifacts


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
