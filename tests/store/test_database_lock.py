"""One driver per study when the study's state is in a PostgreSQL server (optuna.storage): the
lock row, its holder, its heartbeat, and the record beside it, on a real server."""

import os
import signal
import subprocess
import sys
import time

import pytest

from smcl_tune.errors import StudyBusy
from smcl_tune.store.database_lock import DatabaseLock, stale_after
from smcl_tune.store.database_record import StudyTable, studies


@pytest.fixture
def database(postgres_server, request, monkeypatch):
    monkeypatch.setenv("PGPASSWORD", postgres_server.study_password)
    return postgres_server.new_database(f"lock_{request.node.name[:40].lower()}".replace("[", "_").replace("]", ""))


def test_a_second_driver_is_refused_naming_the_first_and_takes_the_lock_once_it_is_released(database):
    first = DatabaseLock(database, "lt", outage_timeout_s=60)
    first.acquire()
    try:
        with pytest.raises(StudyBusy) as refused:
            DatabaseLock(database, "lt", outage_timeout_s=60).acquire()
        assert f"process {os.getpid()}" in str(refused.value) and "PGPASSWORD" not in str(refused.value)
        with DatabaseLock(database, "another-study", outage_timeout_s=60):
            pass  # one lock per study, not per database
    finally:
        first.release()
    with DatabaseLock(database, "lt", outage_timeout_s=60):
        pass


def test_the_lock_of_a_killed_driver_of_this_host_is_taken_at_once(database):
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time\n"
            "from smcl_tune.store.database_lock import DatabaseLock\n"
            f"DatabaseLock({database!r}, 'lt', 600).acquire()\n"
            "print('held', flush=True)\n"
            "time.sleep(600)\n",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(StudyBusy):
            DatabaseLock(database, "lt", outage_timeout_s=600).acquire()
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    with DatabaseLock(database, "lt", outage_timeout_s=600):  # its heartbeat is fresh, its process gone
        pass


def _held_elsewhere(database: str, heartbeat_age_s: float) -> None:
    table = StudyTable(database)
    try:
        table.take("lt", stale_after_s=1)
        with table.engine.begin() as connection:
            connection.execute(
                studies.update()
                .where(studies.c.name == "lt")
                .values(holder_host="another-host", holder_pid=4242, heartbeat=time.time() - heartbeat_age_s)
            )
    finally:
        table.close()


def test_a_driver_on_another_host_keeps_the_lock_while_its_heartbeat_is_fresh(database):
    _held_elsewhere(database, heartbeat_age_s=30)
    with pytest.raises(StudyBusy) as refused:
        DatabaseLock(database, "lt", outage_timeout_s=60).acquire()
    assert "process 4242 on another-host" in str(refused.value)
    assert f"free {stale_after(60):.0f} s after" in str(refused.value)


def test_a_lock_whose_heartbeat_stopped_longer_than_the_outage_wait_is_free(database):
    _held_elsewhere(database, heartbeat_age_s=stale_after(60) + 5)
    with DatabaseLock(database, "lt", outage_timeout_s=60):
        table = StudyTable(database)
        try:
            assert table.holder("lt").pid == os.getpid()
        finally:
            table.close()


def test_the_record_is_read_back_and_discarded_without_freeing_the_lock(database):
    table = StudyTable(database)
    try:
        assert table.record("lt") is None
        table.write_record("lt", {"fingerprint": "abc", "format": 3})
        assert table.record("lt") == {"fingerprint": "abc", "format": 3}
        token, _ = table.take("lt", stale_after_s=60)
        table.discard_record("lt")
        assert table.record("lt") is None and table.holder("lt").token == token
    finally:
        table.close()


def test_a_restart_discards_this_studys_optuna_studies_and_record_and_no_other(database):
    import optuna

    from smcl_tune.store.database import optuna_storage
    from smcl_tune.store.database_record import discard_study

    storage = optuna_storage(database)
    for name in ("lt", "lt/imbalance_factor=10", "lt-2", "other"):
        optuna.create_study(study_name=name, storage=storage).optimize(lambda trial: trial.suggest_float("x", 0, 1), 1)
    table = StudyTable(database)
    try:
        table.write_record("lt", {"format": 3})
        table.write_record("lt-2", {"format": 3})
        assert discard_study(database, "lt") == 2
        assert sorted(optuna.get_all_study_names(storage)) == ["lt-2", "other"]
        assert table.record("lt") is None and table.record("lt-2") == {"format": 3}
    finally:
        table.close()


def test_drivers_opening_a_fresh_database_at_once_all_get_its_optuna_storage_and_table(postgres_server, monkeypatch):
    """Each creates Optuna's tables and the study table; PostgreSQL refuses all but one creation."""
    import threading

    from smcl_tune.store.database import optuna_storage

    monkeypatch.setenv("PGPASSWORD", postgres_server.study_password)
    for round_ in range(3):
        database = postgres_server.new_database(f"fresh_{round_}")
        start, failures = threading.Barrier(4), []

        def open_it(database=database, start=start, failures=failures):
            start.wait()
            try:
                optuna_storage(database)
                StudyTable(database).close()
            except Exception as error:
                failures.append(error)

        threads = [threading.Thread(target=open_it) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert failures == []
