"""A store whose last write was cut short (the driver killed mid-transaction) is not damaged: its
hot journal is rolled back at the next open, so the check before a resume must not refuse it.
Found while running tests/study/test_resume.py's SIGKILL case (issue 26)."""

import subprocess
import sys

from smcl_tune.store.probes import sqlite_problem

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
