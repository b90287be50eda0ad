"""`smcl-tune dashboard --refresh N` shows trials a running study adds, within N seconds, from its
copy of the study's storage; a refresh that is not a number of seconds in (0, one day] is refused."""

import time

import optuna
import pytest

from tests.fixtures.dashboards import served_studies, serving_dashboard


def _trial_counts(port: int) -> list[int]:
    return [len(study["trials"]) for study in served_studies(port)]


@pytest.mark.slow
def test_a_dashboard_shows_a_trial_the_study_adds_within_its_refresh(tmp_path):
    database = tmp_path / "smcl-runs" / "tiny" / "optuna.db"
    database.parent.mkdir(parents=True)
    study = optuna.create_study(study_name="tiny", storage=f"sqlite:///{database}")
    study.optimize(lambda trial: 1.0, n_trials=2)
    with serving_dashboard("tiny", "--storage", str(tmp_path / "smcl-runs"), "--refresh", "1") as port:
        assert _trial_counts(port) == [2]
        # Twice, each trial as soon as the last one showed: a refresh of 10 s (the default) instead
        # of 1 would leave one of them unseen for about 10 s.
        for trials in (3, 4):
            study.optimize(lambda trial: 2.0, n_trials=1)  # the study goes on while the dashboard serves
            added = time.monotonic()
            while _trial_counts(port) != [trials]:
                assert time.monotonic() - added < 6, f"trial {trials} did not show within 6 s of a 1 s refresh"
                time.sleep(0.25)


def test_a_study_files_own_sqlite_optuna_storage_is_served_from_its_url(tmp_path, run_cli):
    """`optuna.storage: sqlite:///PATH` in a study file: not in the storage folder, nor a server."""
    database = tmp_path / "shared" / "studies.db"
    database.parent.mkdir()
    optuna.create_study(study_name="own", storage=f"sqlite:///{database}").optimize(lambda trial: 1.0, n_trials=3)
    with serving_dashboard("own", "--optuna-storage", f"sqlite:///{database}") as port:
        assert _trial_counts(port) == [3]
    missing = run_cli("dashboard", "own", "--optuna-storage", f"sqlite:///{tmp_path / 'none.db'}", cwd=tmp_path)
    assert missing.returncode == 2 and missing.stdout == ""
    assert missing.stderr.strip() == (
        f"smcl-tune: --optuna-storage: {tmp_path / 'none.db'}: no such file; give the study's optuna.storage"
    )
    assert not (tmp_path / "none.db").exists()


@pytest.mark.parametrize("refresh", ["0", "-1", "nan", "inf", "86401"])
def test_a_refresh_that_is_not_a_number_of_seconds_up_to_a_day_is_refused(tmp_path, refresh, run_cli):
    done = run_cli("dashboard", "tiny", "--storage", str(tmp_path), "--refresh", refresh, cwd=tmp_path)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.strip() == (
        f"smcl-tune: --refresh: must be a number of seconds above 0 and at most 86,400, not {refresh}"
    )
