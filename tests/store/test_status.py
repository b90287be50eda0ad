"""`smcl-tune status`: where a study stands, read from a copy of its store, without Ray."""

import re
import sqlite3
import time

from smcl_tune.cli import main
from smcl_tune.results import TrialState
from smcl_tune.store.lock import StudyLock
from smcl_tune.store.paths import StudyPaths
from smcl_tune.store.sqlite_copy import copy_database
from smcl_tune.studyfile.study import load_study
from smcl_tune.tracking.tags import (
    CONDITION_TAG,
    EPOCHS_PER_TRIAL_TAG,
    OBJECTIVE_METRIC_TAG,
    OBJECTIVE_MODE_TAG,
    PLANNED_TRIALS_TAG,
    RUN_STARTED_TAG,
)
from smcl_tune.tracking.writer import StudyTracker
from tests.fixtures.stores import store_uri


def _write_study(storage, name="demo", **tags):
    """A study of 5 planned trials of 4 epochs: one finished, one failed, one still running."""
    tracker = StudyTracker(store_uri(storage), name, name, "fp", storage / "mlartifacts")
    tracker.log_study(
        None,
        None,
        {},
        {
            OBJECTIVE_METRIC_TAG: "val_balanced_accuracy",
            OBJECTIVE_MODE_TAG: "max",
            PLANNED_TRIALS_TAG: "5",
            EPOCHS_PER_TRIAL_TAG: "4",
            **tags,
        },
    )
    now = int(time.time() * 1000)
    done = tracker.trial_run("k0", "trial-000", "search", {}, {}, {CONDITION_TAG: "IF 100"})
    for epoch, value in enumerate([0.3, 0.55, 0.5, 0.52]):
        tracker.log_metrics(
            done, {"val_balanced_accuracy": value, "epoch": epoch, "trial_seconds": 10.0 * (epoch + 1)}, epoch, now
        )
    tracker.log_metrics(done, {"selected_val_balanced_accuracy": 0.55, "epochs_completed": 4}, 3, now)
    tracker.end_trial(done, TrialState.COMPLETED)
    failed = tracker.trial_run("k1", "trial-001", "search", {}, {}, {CONDITION_TAG: "IF 100"})
    tracker.log_metrics(failed, {"val_balanced_accuracy": 0.1, "epoch": 0, "trial_seconds": 10.0}, 0, now)
    tracker.end_trial(failed, TrialState.FAILED, "ValueError: temperature must be positive")
    running = tracker.trial_run("k2", "trial-002", "search", {}, {}, {CONDITION_TAG: "IF 100"})
    tracker.log_metrics(running, {"val_balanced_accuracy": 0.4, "epoch": 1, "trial_seconds": 20.0}, 1, now)
    return tracker


def test_status_of_a_running_study_shows_states_best_eta_and_last_error(tmp_path, capsys):
    storage = tmp_path / "smcl-runs"
    _write_study(storage)
    with StudyLock(storage / ".demo.lock", "demo"):  # the driver is alive
        assert main(["status", "demo", "--storage", str(storage)]) == 0
    out = capsys.readouterr().out
    assert "study demo: running, 2 of 5 trials ended" in out and "ETA " in out and "ETA unknown" not in out
    assert "trials: 1 completed, 1 failed, 1 running, 2 to go" in out
    assert "best [IF 100] trial-000: 55.0% (completed)" in out
    assert "last error: trial-001: ValueError: temperature must be positive" in out
    rows = {line.split()[0]: line.split() for line in out.splitlines() if line.startswith("trial-")}
    assert rows["trial-000"][-4:-1] == ["completed", "4", "55.0%"]
    assert rows["trial-002"][-4:-1] == ["running", "2", "40.0%"]


def test_a_study_whose_driver_is_gone_reads_as_interrupted(tmp_path, capsys):
    storage = tmp_path / "smcl-runs"
    _write_study(storage)
    (storage / ".demo.lock").touch()  # a lock file nobody holds: the driver was killed
    assert main(["status", "demo", "--storage", str(storage)]) == 0
    out = capsys.readouterr().out
    assert "study demo: interrupted" in out and "ETA" not in out.splitlines()[0]
    assert "1 interrupted" in out


def test_without_a_name_status_lists_the_studies(tmp_path, capsys):
    storage = tmp_path / "smcl-runs"
    _write_study(storage, "alpha").finish("FINISHED")
    _write_study(storage, "beta").finish("KILLED")
    assert main(["status", "--storage", str(storage)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("study alpha: finished, 2 of 3 trials ended")  # finished: no more will run
    assert lines[1].startswith("study beta: stopped, 2 of 5 trials ended")


def test_an_unknown_study_or_store_exits_2_naming_what_exists(tmp_path, capsys):
    storage = tmp_path / "smcl-runs"
    assert main(["status", "--storage", str(storage)]) == 2
    assert "no MLflow store there" in capsys.readouterr().err
    _write_study(storage)
    assert main(["status", "nope", "--storage", str(storage)]) == 2
    err = capsys.readouterr().err
    assert "no study named 'nope'" in err and "(studies there: demo)" in err


def test_status_never_waits_on_a_writer_and_reads_only_committed_data(tmp_path):
    source, copy = tmp_path / "store.db", tmp_path / "copy.db"
    writer = sqlite3.connect(source)
    writer.execute("create table t (x)")
    writer.execute("insert into t values (1)")
    writer.commit()
    writer.execute("begin immediate")  # a driver in the middle of a write
    writer.execute("insert into t values (2)")
    started = time.monotonic()
    copy_database(source, copy)
    assert time.monotonic() - started < 5
    writer.commit()
    assert sqlite3.connect(copy).execute("select x from t").fetchall() == [(1,)]


def test_a_corrupt_store_is_one_message_not_a_traceback(tmp_path, capsys):
    storage = tmp_path / "smcl-runs"
    storage.mkdir()
    (storage / "mlflow.db").write_bytes(b"not a database at all" * 100)
    assert main(["status", "--storage", str(storage)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("smcl-tune:") and "Traceback" not in err


def test_status_finds_the_lock_run_takes_and_gives_the_exact_eta(tmp_path, capsys):
    storage = tmp_path / "smcl-runs"
    study_file = tmp_path / "demo.yaml"
    study_file.write_text(f"name: demo\nnum_trials: 0\nbaselines: [{{name: ce}}]\nstorage: {storage}\n")
    _write_study(storage)
    # 7 epochs trained in 70 s: 10 s an epoch. Left: 2 epochs of the running trial and 2 trials of 4
    # epochs to go, 10 epochs, one trial at a time: 100 s.
    with StudyLock(StudyPaths.of(load_study(study_file)).lock_file, "demo"):  # the lock `run` holds
        assert main(["status", "demo", "--storage", str(storage)]) == 0
    first = capsys.readouterr().out.splitlines()[0]
    assert first.startswith("study demo: running, 2 of 5 trials ended, elapsed ")
    assert first.endswith(", ETA 1m40s")
    # The driver gone, its lock file left behind and held by nobody: the same path tells.
    assert main(["status", "demo", "--storage", str(storage)]) == 0
    first = capsys.readouterr().out.splitlines()[0]
    assert first.startswith("study demo: interrupted, 2 of 5 trials ended, started ") and first.endswith(" ago")


def test_long_trial_names_keep_the_table_in_columns(tmp_path, capsys):
    """The GPU study's names (`baseline-supcon-s0 [imbalance_factor=100]`) ran into the condition."""
    storage = tmp_path / "smcl-runs"
    tracker = _write_study(storage)
    long_name = "baseline-supcon-balanced-softmax-s0 [imbalance_factor=100]"  # 35 characters without its condition
    run = tracker.trial_run("k3", long_name, "baseline", {}, {}, {CONDITION_TAG: "imbalance_factor=100"})
    now = int(time.time() * 1000)
    tracker.log_metrics(run, {"val_balanced_accuracy": 0.6, "epoch": 0, "trial_seconds": 5.0}, 0, now)
    assert main(["status", "demo", "--storage", str(storage)]) == 0
    lines = capsys.readouterr().out.splitlines()
    header = next(line for line in lines if line.startswith("trial "))
    row = next(line for line in lines if line.startswith("baseline-supcon-balanced-softmax-s0 "))
    column = header.index("condition")
    assert row[:column].rstrip() == "baseline-supcon-balanced-softmax-s0" and row[column - 1] == " "  # one column
    assert row[column:].split()[:2] == ["imbalance_factor=100", "baseline"]


def test_a_finished_study_that_ran_fewer_confirmations_than_planned_has_none_to_go(tmp_path, capsys):
    """confirm.top_k 4 with 2 search trials completed: 2 confirmations; status said `finished, 6 of 8
    trials ended` and `2 to go` of it."""
    storage = tmp_path / "smcl-runs"
    tracker = _write_study(storage)
    tracker.end_trial(tracker.trial_run("k2", "trial-002", "search", {}, {}, {}), TrialState.PRUNED)
    tracker.finish("FINISHED")
    assert main(["status", "demo", "--storage", str(storage)]) == 0
    out = capsys.readouterr().out
    assert (
        "study demo: finished, 3 of 3 trials ended" in out and "trials: 1 completed, 1 pruned, 1 failed, 0 to go" in out
    )


def test_a_resumed_study_says_how_long_its_running_driver_has_run(tmp_path, capsys):
    # started two hours ago, down for most of them, resumed 30 s ago: the elapsed time alone misled
    storage = tmp_path / "smcl-runs"
    _write_study(storage, **{RUN_STARTED_TAG: str(int(time.time() * 1000) - 30_000)})
    with sqlite3.connect(storage / "mlflow.db") as store:
        study_runs = "SELECT run_uuid FROM tags WHERE key = 'smcl.role' AND value = 'study'"
        store.execute(f"UPDATE runs SET start_time = start_time - 7200000 WHERE run_uuid IN ({study_runs})")
    with StudyLock(storage / ".demo.lock", "demo"):
        assert main(["status", "demo", "--storage", str(storage)]) == 0
    first = capsys.readouterr().out.splitlines()[0]
    assert re.search(r", elapsed 2h00m since it started \(3\ds in this run\), ETA ", first), first
    # a study whose driver is the one that started it says nothing more
    fresh = tmp_path / "fresh"
    _write_study(fresh, **{RUN_STARTED_TAG: str(int(time.time() * 1000))})
    with StudyLock(fresh / ".demo.lock", "demo"):
        assert main(["status", "demo", "--storage", str(fresh)]) == 0
    assert "in this run" not in capsys.readouterr().out


def test_an_interrupted_study_resumed_after_a_stop_says_when_it_first_started():
    """A resumed run keeps the end time its stopped run recorded (MLflow's update_run); killed, the
    study is interrupted, and its line counts from its first start, not to that old end."""
    from smcl_tune.cli.watch_commands import _study_line
    from smcl_tune.store.progress import INTERRUPTED, StudyProgress
    from smcl_tune.store.status import StudyStatus

    now_ms = int(time.time() * 1000)
    started = now_ms - 3 * 3600 * 1000  # three hours ago; its first run stopped after ten minutes
    progress = StudyProgress("val_balanced_accuracy", "max", 4, 3)
    status = StudyStatus("demo", INTERRUPTED, started, started + 600_000, progress, run_started_ms=now_ms - 60_000)
    assert ", started 3h00m ago" in _study_line(status)
