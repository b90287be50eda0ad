"""Studies whose Optuna study, record and lock are in a PostgreSQL server (optuna.storage), run
through the CLI as a user runs them, on a real server."""

import subprocess
import sys
import time

import optuna
import pytest

from smcl_tune.layout import OPTUNA_FILE, STATE_FILE
from smcl_tune.store.database import optuna_storage
from smcl_tune.store.database_record import StudyTable
from smcl_tune.studyfile.study import load_study

pytestmark = [pytest.mark.ray, pytest.mark.slow]


def _completed(database: str, name: str) -> list[optuna.trial.FrozenTrial]:
    """The Optuna trials that ended (ASHA's stopped ones too: pruned)."""
    trials = optuna.load_study(study_name=name, storage=optuna_storage(database)).trials
    return [trial for trial in trials if trial.state.is_finished()]


def _record(database: str, name: str) -> dict | None:
    table = StudyTable(database)
    try:
        return table.record(name)
    finally:
        table.close()


def test_two_studies_on_one_database_at_once_keep_their_search_and_record_there_and_see_only_their_own_trials(
    tmp_path, tiny_study, run_cli, postgres_server, joining_env, monkeypatch, dashboard_studies
):
    monkeypatch.setenv("PGPASSWORD", postgres_server.study_password)
    database = postgres_server.new_database("two_studies")
    env = {**joining_env, "PGPASSWORD": postgres_server.study_password}
    drivers, paths = {}, {}
    for name, trials in (("first", 2), ("second", 1)):
        folder = tmp_path / name
        folder.mkdir()
        paths[name] = tiny_study(folder, name=name, num_trials=trials, optuna={"storage": database})
        drivers[name] = subprocess.Popen(
            [sys.executable, "-m", "smcl_tune.cli", "run", str(paths[name])],
            cwd=folder,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
    said = ""
    for name, driver in drivers.items():
        output, error = driver.communicate(timeout=600)
        assert driver.returncode == 0, (name, error[-3000:])
        said += output + error
    assert sorted(optuna.get_all_study_names(optuna_storage(database))) == ["first", "second"]
    assert len(_completed(database, "first")) == 2 and len(_completed(database, "second")) == 1
    assert postgres_server.study_password not in said

    path, folder = paths["first"], tmp_path / "first"
    assert _record(database, "first")["fingerprint"] == load_study(path).fingerprint()
    storage = folder / "smcl-runs"
    assert not list(storage.rglob(OPTUNA_FILE)) and not list(storage.rglob(STATE_FILE))  # nothing of it on disk
    status = run_cli("status", "first", "--storage", str(storage), cwd=folder, env=env)
    assert status.returncode == 0 and "finished" in status.stdout, status.stdout + status.stderr
    # `dashboard --optuna-storage`, from any folder: the database's studies
    assert dict(zip(*dashboard_studies(database, "first"))) == {"first": 2, "second": 1}

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    changed = tiny_study(elsewhere, name="first", num_trials=3, optuna={"storage": database})
    refused = run_cli("run", str(changed), cwd=elsewhere, env=env, timeout=120)
    assert refused.returncode == 2
    assert f"study 'first' already exists in the database {database} with a different study file" in refused.stderr
    assert len(_completed(database, "first")) == 2  # the refusal wrote nothing


def _reported(database: str, name: str) -> int:
    """How many epochs the study's Optuna trials have reported; 0 before the study exists."""
    try:
        trials = optuna.load_study(study_name=name, storage=optuna_storage(database)).trials
    except KeyError:
        return 0
    return sum(len(trial.intermediate_values) for trial in trials)


def _wait_for_reports(database: str, name: str, at_least: int, driver: subprocess.Popen, timeout: float = 300):
    deadline = time.time() + timeout
    while time.time() < deadline and driver.poll() is None:
        if _reported(database, name) >= at_least:
            return
        time.sleep(0.3)
    raise AssertionError(f"the study did not reach {at_least} reported epochs (driver exit {driver.poll()})")


def test_the_database_going_away_is_waited_for_then_stops_the_study_resumably(
    tmp_path, tiny_study, own_postgres_server, joining_env, monkeypatch
):
    server = own_postgres_server
    monkeypatch.setenv("PGPASSWORD", server.study_password)
    database = server.new_database("outage")
    env = {**joining_env, "PGPASSWORD": server.study_password}
    path = tiny_study(
        tmp_path,
        name="outage",
        num_trials=3,
        scheduler={"type": "fifo"},
        optuna={"storage": database, "outage_timeout_s": 8},
    )
    command = [sys.executable, "-m", "smcl_tune.cli", "run", str(path)]
    driver = subprocess.Popen(command, cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        _wait_for_reports(database, "outage", 1, driver)
        server.stop()  # shorter than optuna.outage_timeout_s: waited for
        time.sleep(3)
        server.start()
        reported = _reported(database, "outage")
        _wait_for_reports(database, "outage", reported + 2, driver)
        server.stop()  # for good
        _, error = driver.communicate(timeout=120)
    finally:
        if driver.poll() is None:
            driver.kill()
    error = error.decode()
    assert driver.returncode == 1, error[-3000:]
    stopped = [line for line in error.splitlines() if "has not answered for" in line]
    assert len(stopped) == 1 and f"the database {database} has not answered for" in stopped[0], error[-3000:]
    assert "optuna.outage_timeout_s: 8" in stopped[0] and "Traceback" not in error
    assert "answers again" in error  # the short outage, waited out

    server.start()
    table = StudyTable(database)
    try:
        assert table.holder("outage").pid == driver.pid  # nothing took the lock meanwhile
    finally:
        table.close()
    resumed = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    trials = optuna.load_study(study_name="outage", storage=optuna_storage(database)).trials
    assert len(trials) == 3 and all(trial.state.is_finished() for trial in trials)
