"""The importance plot says how many completed trials it rests on, and warns when they are too few."""

import shutil

import optuna
import pytest

from smcl_tune.cli import main
from smcl_tune.report.leaderboard import load_leaderboard
from smcl_tune.report.plots import IMPORTANCE_MIN_TRIALS, importance_figures


def _optuna_studies(path, completed):
    """One Optuna study per condition with `completed[condition]` completed trials, plus one
    pruned and one failed trial that the count must leave out."""
    url = f"sqlite:///{path}"
    for condition, count in completed.items():
        study = optuna.create_study(
            study_name=f"lt/{condition}", storage=url, direction="maximize", sampler=optuna.samplers.RandomSampler(0)
        )
        for index in range(count + 2):
            trial = study.ask()
            temperature = trial.suggest_float("method.temperature", 0.03, 0.5, log=True)
            weight = trial.suggest_float("method.loss_weight", 0.1, 2.0)
            if index == count:
                study.tell(trial, state=optuna.trial.TrialState.PRUNED)
            elif index == count + 1:
                study.tell(trial, state=optuna.trial.TrialState.FAIL)
            else:
                study.tell(trial, 0.5 + temperature - 0.01 * weight)
    return url


def test_importance_counts_completed_trials_and_warns_below_the_threshold(tmp_path, build_store, capsys):
    assert IMPORTANCE_MIN_TRIALS == 10
    url = _optuna_studies(tmp_path / "optuna.db", {"imbalance_factor=10": 7, "imbalance_factor=100": 12})
    storage = tmp_path / "store"
    board = load_leaderboard(build_store(storage, optuna_storage=url), "lt")
    (few, enough), notes = importance_figures(board)
    assert few.layout.title.text == (
        "Hyperparameter importance for val_balanced_accuracy (imbalance_factor=10) "
        "(fANOVA, 7 completed trials: too few to rank)"
    )
    assert [a.text for a in few.layout.annotations] == ["too few trials to rank: 7 completed trials (fewer than 10)"]
    assert enough.layout.title.text == (
        "Hyperparameter importance for val_balanced_accuracy (imbalance_factor=100) (fANOVA, 12 completed trials)"
    )
    assert not enough.layout.annotations
    assert sorted(enough.data[0].y) == ["loss_weight", "temperature"]  # as the other plots and MLflow name them
    assert notes == [
        "hyperparameter importance (imbalance_factor=10) rests on 7 completed trials, fewer than 10: "
        "too few to rank the hyperparameters; the order can change with the next trials"
    ]

    report = tmp_path / "report.html"
    assert main(["leaderboard", "lt", "--storage", str(storage), "--format", "html", "--output", str(report)]) == 0
    page = report.read_text()
    assert '<p class="note">hyperparameter importance (imbalance_factor=10) rests on 7 completed trials' in page
    assert "(fANOVA, 12 completed trials)" in page and "imbalance_factor=100) rests on" not in page


def test_search_trials_that_all_scored_the_same_get_a_note_that_says_so(tmp_path, build_store, caplog):
    url = f"sqlite:///{tmp_path / 'optuna.db'}"
    for condition, values in (("imbalance_factor=10", [0.6, 0.6, 0.6]), ("imbalance_factor=100", [0.4])):
        study = optuna.create_study(study_name=f"lt/{condition}", storage=url, direction="maximize")
        for value in values:
            trial = study.ask()
            trial.suggest_float("method.temperature", 0.03, 0.5, log=True)
            study.tell(trial, value)
    board = load_leaderboard(build_store(tmp_path / "store", optuna_storage=url), "lt")
    figures, notes = importance_figures(board)
    assert figures == []
    assert notes == [
        "hyperparameter importance (imbalance_factor=10): its 3 completed search trials all scored 0.6, so no "
        "hyperparameter explains a difference",
        "hyperparameter importance (imbalance_factor=100) needs at least 2 completed search trials, the condition "
        "has 1",
    ]
    assert "unavailable" not in caplog.text  # fANOVA's own error ("zero total variance") is not shown


def test_a_search_of_one_hyperparameter_gets_a_note_not_a_bar_at_one(tmp_path, build_store):
    url = f"sqlite:///{tmp_path / 'optuna.db'}"
    study = optuna.create_study(study_name="lt/imbalance_factor=10", storage=url, direction="maximize")
    for value in (0.4, 0.5, 0.6):
        trial = study.ask()
        trial.suggest_float("method.temperature", 0.03, 0.5, log=True)
        study.tell(trial, value)
    storage = tmp_path / "store"
    board = load_leaderboard(build_store(storage, optuna_storage=url), "lt")
    figures, notes = importance_figures(board)
    assert figures == []
    one = (
        "hyperparameter importance (imbalance_factor=10): one hyperparameter is searched (temperature), "
        "so there is nothing to rank"
    )
    assert notes[0] == one

    report = tmp_path / "report.html"
    assert main(["leaderboard", "lt", "--storage", str(storage), "--format", "html", "--output", str(report)]) == 0
    assert f'<p class="note">{one}</p>' in report.read_text()


@pytest.mark.parametrize("kept", ["moved", "copied", "lost"])
def test_a_store_read_from_another_folder_reads_the_optuna_storage_beside_it(tmp_path, build_store, kept):
    """A study's store run on a GPU machine and copied back (or moved) is read from its new folder;
    its Optuna storage, recorded with its old absolute path, is read from there too, and a reader
    never creates one where the recorded path points."""
    storage = tmp_path / "gpu" / "smcl-runs"
    (storage / "lt").mkdir(parents=True)
    url = _optuna_studies(storage / "lt" / "optuna.db", {"imbalance_factor=10": 11, "imbalance_factor=100": 12})
    build_store(storage, optuna_storage=url)
    if kept == "copied":
        shutil.copytree(tmp_path / "gpu", tmp_path / "laptop")
        (storage / "lt" / "optuna.db").unlink()  # the original's, which a copy must not be read from
    else:
        shutil.move(tmp_path / "gpu", tmp_path / "laptop")
    if kept == "lost":
        (tmp_path / "laptop" / "smcl-runs" / "lt" / "optuna.db").unlink()

    report = tmp_path / "report.html"
    where = str(tmp_path / "laptop" / "smcl-runs")
    assert main(["leaderboard", "lt", "--storage", where, "--format", "html", "--output", str(report)]) == 0
    page = report.read_text()
    if kept == "lost":
        assert f"hyperparameter importance: no Optuna storage at {where}/lt/optuna.db" in page
        assert not (tmp_path / "laptop" / "smcl-runs" / "lt" / "optuna.db").exists()
    else:
        assert "(fANOVA, 11 completed trials)" in page and "(fANOVA, 12 completed trials)" in page
    assert not (storage / "lt" / "optuna.db").exists()
