"""A store whose last write was cut short (the driver killed mid-transaction) is not damaged: its
hot journal is rolled back at the next open, so the check before a resume must not refuse it.
Found while running tests/study/test_resume.py's SIGKILL case (issue 26)."""

import subprocess
import sys

from smcl_tune.store.probes import holds_experiment_state, sqlite_problem

KILLED_MID_WRITE = """
import os, signal, sqlite3, sys
store = sqlite3.connect(sys.argv[1])
store.execute("PRAGMA cache_size=1")  # pages spill into the file before the commit: the journal is hot
store.execute("CREATE TABLE trials (state BLOB)")
store.commit()
store.execute("BEGIN")
for _ in range(200):
    store.execute("INSERT INTO trials VALUES (randomblob(4000))")
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_a_store_left_by_a_killed_writer_passes_and_stays_as_it_is(tmp_path):
    store = tmp_path / "optuna.db"
    subprocess.run([sys.executable, "-c", KILLED_MID_WRITE, str(store)], check=False)
    journal = tmp_path / "optuna.db-journal"
    assert journal.exists()
    files = {path.name: path.read_bytes() for path in tmp_path.iterdir()}
    assert sqlite_problem(store) is None
    assert {path.name: path.read_bytes() for path in tmp_path.iterdir()} == files  # nothing rolled back here


def test_a_damaged_store_beside_a_journal_is_still_damaged(tmp_path):
    store = tmp_path / "optuna.db"
    subprocess.run([sys.executable, "-c", KILLED_MID_WRITE, str(store)], check=False)
    (tmp_path / "optuna.db-journal").write_bytes(b"not a journal" * 1000)
    store.write_bytes(b"not a database" * 1000)
    assert sqlite_problem(store) is not None


def test_an_experiment_holds_a_state_only_with_rays_state_file_and_an_unlistable_one_is_restored(tmp_path):
    (tmp_path / "tuner.pkl").write_bytes(b"t")  # a driver killed before Ray's first save
    assert not holds_experiment_state(str(tmp_path))
    (tmp_path / "experiment_state-2026-01-01_00-00-00.json").write_text('{"trial_data": []}')
    assert holds_experiment_state(str(tmp_path))
    # a listing that fails (here: not a folder; in an object store, no right to list) is not taken
    # for a study that saved nothing: that would start a resumable study over
    assert holds_experiment_state(str(tmp_path / "tuner.pkl"))
