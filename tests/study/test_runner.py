"""One real study (Ray Tune + Optuna + MLflow), run once, checked from several sides: two
conditions, baselines, a search per condition, and the confirmation stage."""

import csv
import io
import math
import subprocess
from pathlib import Path

import optuna
import pytest
from mlflow.tracking import MlflowClient

import smcl_tune
from smcl_tune.cli import main
from smcl_tune.study import whole_state_saves

pytestmark = [pytest.mark.ray, pytest.mark.slow]

IF10, IF4 = "imbalance_factor=10", "imbalance_factor=4"
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def study_folder(tmp_path_factory):
    return tmp_path_factory.mktemp("study")


@pytest.fixture(scope="module")
def finished_study(study_folder, tiny_study, shared_ray_for_module):
    tmp_path = study_folder
    # Two conditions: IF 10 (60 .. 6 training images: a few-shot class) and IF 4 (60 .. 15: none).
    # In each, baselines first, one trial at a time: `ce` learns, `diverges` turns NaN in its
    # first epoch; then 3 sampled trials with learning rates far apart, compared by ASHA only with
    # each other; then the best one retrained with seed 1. The MLflow store is a tracking URI and
    # experiment of the study file's own choosing.
    tracking_uri = f"sqlite:///{tmp_path / 'tracking.db'}"
    path = tiny_study(
        tmp_path,
        name="e2e",
        conditions={"data.imbalance_factor": [10, 4]},
        search={"training.lr": {"loguniform": [1e-5, 0.2]}, "method.temperature": {"loguniform": [0.05, 0.5]}},
        baselines=[
            {"name": "ce", "overrides": {"method.name": "ce"}},
            {"name": "diverges", "overrides": {"training.lr": 1e20}},
        ],
        confirm={"top_k": 1, "seeds": [1]},
        tracking={"uri": tracking_uri, "experiment": "e2e-experiment"},
    )
    saved_whole = []  # Ray's experiment state saves that whole_state_saves took (a spy; the saves are real)

    class _Counted(whole_state_saves._RenamedWhenClosed):
        def __init__(self, path, encoding):
            saved_whole.append(Path(path).name)
            super().__init__(path, encoding)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(whole_state_saves, "_RenamedWhenClosed", _Counted)
        code = main(["run", str(path)])  # on the session's Ray
    storage = tmp_path / "smcl-runs"
    assert not (storage / "mlflow.db").exists()  # the study's tracking URI, not the default store
    client = MlflowClient(tracking_uri=tracking_uri)
    experiment = client.get_experiment_by_name("e2e-experiment")
    runs = client.search_runs([experiment.experiment_id], max_results=100)
    studies = {
        label: optuna.load_study(study_name=f"e2e/{label}", storage=f"sqlite:///{storage / 'e2e' / 'optuna.db'}")
        for label in (IF10, IF4)
    }
    return code, client, runs, studies, saved_whole


def test_ray_tune_keeps_its_trial_logs_but_writes_no_tensorboard_files(finished_study, study_folder):
    # tensorboardX would load torch into the driver, which never trains; MLflow holds the curves
    assert finished_study[0] == 0
    experiment = study_folder / "smcl-runs" / "e2e"
    assert len(list(experiment.glob("*/progress.csv"))) == 12 and len(list(experiment.glob("*/result.json"))) == 12
    assert not list(experiment.rglob("events.out.tfevents*"))
    # every file reached the storage whole (atomic_storage.py): none is left half-written beside it
    assert not list(experiment.rglob("*.partial")) and len(list(experiment.rglob("checkpoint_*"))) >= 12


def test_ray_saved_its_experiment_state_whole_and_its_module_is_as_it_was(finished_study):
    from ray.tune.execution import tune_controller

    saved_whole = finished_study[4]
    assert saved_whole and all(name.startswith("experiment_state-") for name in saved_whole)
    assert "open" not in vars(tune_controller)


def _run(runs, name):
    return next(run for run in runs if run.info.run_name == name)


def test_study_exits_0_and_mlflow_nests_one_run_per_trial(finished_study):
    code, client, runs, _, _ = finished_study
    assert code == 0
    parents = [run for run in runs if run.data.tags.get("smcl.role") == "study"]
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"
    # when its driver started, which `status` of a resumed study reads
    assert (
        parents[0].info.start_time - 60_000
        <= int(parents[0].data.tags["smcl.run_started_ms"])
        <= (parents[0].info.end_time)
    )
    children = [run for run in runs if run.data.tags.get("mlflow.parentRunId") == parents[0].info.run_id]
    assert len(children) == 12  # per condition: 2 baselines + 3 sampled + 1 confirmation run
    for label in (IF10, IF4):
        names = {
            run.info.run_name.removesuffix(f" [{label}]")
            for run in children
            if run.data.tags["smcl.condition"] == label
        }
        confirmations = {name for name in names if name.startswith("confirm-") and name.endswith("-s1")}
        assert len(confirmations) == 1
        assert names - confirmations == {"baseline-ce", "baseline-diverges", "trial-000", "trial-001", "trial-002"}
    assert not [run for run in children if run.info.status == "RUNNING"]
    assert client.list_artifacts(parents[0].info.run_id, "study")
    # what reproduces it: the package's version, and the commit of its checkout (none outside one)
    checkout = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    commit = checkout.stdout.strip() if checkout.returncode == 0 else None
    assert parents[0].data.tags.get("smcl.git_commit") == commit
    assert parents[0].data.tags["smcl.version"] == parents[0].data.params["version"] == smcl_tune.__version__
    published = {item.path for item in client.list_artifacts(parents[0].info.run_id, "leaderboard")}
    assert published == {"leaderboard/e2e.csv", "leaderboard/e2e.html"}


def test_each_condition_has_its_own_optuna_study_and_asha_rungs(finished_study):
    _, _, runs, studies, _ = finished_study
    pruned = []
    for label, study in studies.items():
        trials = study.get_trials()
        assert len(trials) == 3  # the confirmation runs and baselines stay out of Optuna
        for trial in trials:
            run = _run(runs, f"trial-{trial.number:03d} [{label}]")
            assert run.data.tags["smcl.condition"] == label
            assert run.data.params["imbalance_factor"] == label.split("=")[1]  # the condition, logged with the trial
            if trial.state == optuna.trial.TrialState.PRUNED:
                pruned.append(trial)
                assert 1 <= len(trial.intermediate_values) < 3
                assert all(math.isfinite(v) for v in trial.intermediate_values.values())
                assert run.data.tags["smcl.state"] == "pruned" and run.info.status == "KILLED"
            if trial.state == optuna.trial.TrialState.COMPLETE:
                assert len(trial.intermediate_values) == 3
    assert pruned, "ASHA stopped no trial in either condition"


def test_baselines_and_confirmation_runs_train_their_full_budget(finished_study):
    _, _, runs, studies, _ = finished_study
    for label, study in studies.items():
        ce = _run(runs, f"baseline-ce [{label}]")
        assert ce.data.tags["smcl.state"] == "completed" and ce.data.metrics["epochs_completed"] == 3
        (confirmation,) = [
            run
            for run in runs
            if run.data.tags.get("smcl.role") == "confirm" and run.data.tags["smcl.condition"] == label
        ]
        best = max(study.get_trials(states=(optuna.trial.TrialState.COMPLETE,)), key=lambda trial: trial.value)
        assert confirmation.data.tags["smcl.configuration"] == f"trial-{best.number:03d}"
        assert confirmation.data.tags["smcl.seed"] == "1" and confirmation.data.params["seed"] == "1"
        assert confirmation.data.params["temperature"] == str(best.params["method.temperature"])
        assert confirmation.data.tags["smcl.state"] == "completed"


def test_an_empty_shot_group_is_missing_in_mlflow_and_in_the_leaderboard(finished_study, capsys):
    _, client, runs, _, _ = finished_study
    no_few = _run(runs, f"baseline-ce [{IF4}]")
    assert no_few.data.tags["smcl.state"] == "completed"
    assert "test_few" not in no_few.data.metrics and "test_many" in no_few.data.metrics  # missing, not 0
    assert no_few.data.metrics["few_classes"] == 0

    assert main(["leaderboard", "e2e", "--tracking-uri", client.tracking_uri, "--format", "csv"]) == 0
    rows = {(row["condition"], row["trial"]): row for row in csv.DictReader(io.StringIO(capsys.readouterr().out))}
    assert rows[(IF4, "baseline-ce")]["test_few"] == "" and rows[(IF10, "baseline-ce")]["test_few"] != ""
    assert main(["leaderboard", "e2e", "--tracking-uri", client.tracking_uri, "--format", "markdown"]) == 0
    table = next(block for block in capsys.readouterr().out.split("\n\n") if block.startswith("|"))
    lines = table.splitlines()
    header = [cell.strip() for cell in lines[0].strip("|").split("|")]
    cells = {
        (row[header.index("condition")], row[header.index("trial")]): row
        for row in ([cell.strip() for cell in line.strip("|").split("|")] for line in lines[2:])
    }
    assert cells[(IF4, "baseline-ce [baseline]")][header.index("few")] == "n/a"
    assert cells[(IF10, "baseline-ce [baseline]")][header.index("few")] not in ("", "n/a")


def test_completed_trial_has_epoch_metrics_test_metrics_and_artifacts(finished_study):
    _, client, runs, _, _ = finished_study
    ce = _run(runs, f"baseline-ce [{IF10}]")
    assert ce.info.status == "FINISHED" and ce.data.tags["smcl.state"] == "completed"
    history = client.get_metric_history(ce.info.run_id, "val_balanced_accuracy")
    assert sorted(m.step for m in history) == [0, 1, 2]
    for key in (
        "loss",
        "loss_mce",
        "train_accuracy",
        "test_top1",
        "test_balanced_accuracy",
        "test_many",
        "test_few",
        "last_test_top1",
    ):
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
    _, _, runs, _, _ = finished_study
    diverged = _run(runs, f"baseline-diverges [{IF10}]")
    assert diverged.info.status == "FAILED"
    assert "non-finite loss" in diverged.data.tags["smcl.reason"]


def test_restart_of_a_study_whose_optuna_file_is_outside_its_folder_starts_its_search_afresh(
    tmp_path, tiny_study, shared_ray_for_module
):
    # The study's folder is removed on --restart; an Optuna file of the study file's own choosing
    # kept the first run's trials, which the restarted search took up and counted.
    optuna_url = f"sqlite:///{tmp_path / 'searches.db'}"
    path = tiny_study(tmp_path, name="elsewhere", num_trials=1, optuna={"storage": optuna_url})
    assert main(["run", str(path)]) == 0
    optuna.create_study(study_name="another", storage=optuna_url)  # not the study's: kept
    assert main(["run", str(path), "--restart"]) == 0
    trials = optuna.load_study(study_name="elsewhere", storage=optuna_url).get_trials()
    assert [trial.number for trial in trials] == [0]  # the restarted run's one trial, not the first run's too
    assert "another" in optuna.get_all_study_names(optuna_url)


def test_running_the_finished_study_again_trains_nothing_and_keeps_its_elapsed_time(
    finished_study, study_folder, capsys
):
    """Last in this file: it runs the module's study again."""
    _, client, runs, _, _ = finished_study
    parent = next(run for run in runs if run.data.tags.get("smcl.role") == "study")
    capsys.readouterr()
    assert main(["run", str(study_folder / "e2e.yaml")]) == 0
    out = capsys.readouterr().out
    assert "12 ended in an earlier run" in out and "baseline-ce [baseline]" in out, out[-2000:]
    again = client.get_run(parent.info.run_id)
    assert again.info.status == "FINISHED" and again.info.end_time == parent.info.end_time
    children = client.search_runs(
        [parent.info.experiment_id], filter_string=f"tags.`mlflow.parentRunId` = '{parent.info.run_id}'"
    )
    assert len(children) == 12  # nothing trained or logged twice
