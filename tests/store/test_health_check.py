"""A damaged or unreachable store is refused in one line that names it and says what to do,
before Ray starts, and nothing of it is deleted or rewritten (study/store_health.py; issue 26); a
shared tracking store never mixes two study files of one name. The slow tests run
`smcl-tune run` as a user does; the fast ones the same command in this process."""

import pickle
from pathlib import Path

import pytest

from smcl_tune.cli import main
from smcl_tune.store.health_check import check_study_stores
from smcl_tune.store.paths import StudyPaths
from smcl_tune.store.study_record import write_study_record
from smcl_tune.studyfile.study import load_study
from smcl_tune.tracking.writer import StudyTracker
from tests.fixtures.ports import free_port

JUNK = b"this is not a database, nor a pickle, nor JSON\n" * 50


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(path.relative_to(folder)): path.read_bytes() for path in sorted(folder.rglob("*")) if path.is_file()}


def _started_study(tmp_path, tiny_study, **changes):
    """A study file and the record an earlier run of it left (as `run` writes it)."""
    study = load_study(tiny_study(tmp_path, **changes))
    paths = StudyPaths.of(study)
    write_study_record(study, paths)
    return study, paths


def _refused_by_cli(run_cli, study, tmp_path, code: int) -> str:
    before = _snapshot(tmp_path)
    done = run_cli("run", str(study.source), cwd=tmp_path)
    assert done.returncode == code, done.stderr
    error = done.stderr.strip()
    assert len(error.splitlines()) == 1 and "Traceback" not in error, error
    assert _snapshot(tmp_path) == before  # nothing deleted, rewritten or added
    return error


@pytest.mark.slow  # a subprocess that imports Ray, torch and MLflow
def test_a_damaged_optuna_storage_is_named_and_left_as_it_is(tmp_path, tiny_study, run_cli):
    study, paths = _started_study(tmp_path, tiny_study)
    (paths.record_dir / "optuna.db").write_bytes(JUNK)
    error = _refused_by_cli(run_cli, study, tmp_path, 1)
    assert error == (
        f"smcl-tune: {paths.record_dir / 'optuna.db'}: study 'tiny''s Optuna storage is damaged (file is not a "
        "database); nothing was changed: restore it from a backup, or run again with --restart to start the study over"
    )
    assert (paths.record_dir / "optuna.db").read_bytes() == JUNK


@pytest.mark.slow  # a subprocess that imports Ray, torch and MLflow
def test_a_damaged_mlflow_store_is_named_and_left_as_it_is(tmp_path, tiny_study, run_cli):
    study = load_study(tiny_study(tmp_path))
    database = tmp_path / "smcl-runs" / "mlflow.db"
    database.parent.mkdir()
    database.write_bytes(JUNK)
    error = _refused_by_cli(run_cli, study, tmp_path, 1)
    assert error.startswith(f"smcl-tune: {database}: the MLflow store is damaged (file is not a database)")
    assert "restore it from a backup, or point storage (or tracking.uri) elsewhere" in error
    assert database.read_bytes() == JUNK


@pytest.mark.slow  # a subprocess that imports Ray, torch and MLflow
def test_a_tracking_server_that_does_not_answer_is_a_wrong_uri(tmp_path, tiny_study, run_cli):
    uri = f"http://127.0.0.1:{free_port()}"
    study = load_study(tiny_study(tmp_path, tracking={"uri": uri}))
    error = _refused_by_cli(run_cli, study, tmp_path, 2)
    assert error == (
        f"smcl-tune: tracking.uri: {uri} does not answer (Connection refused); start the tracking server, "
        "or point the URI at one that runs"
    )
    assert not (tmp_path / "smcl-runs").exists()
    done = run_cli("status", "tiny", "--tracking-uri", uri, cwd=tmp_path, timeout=60)  # not minutes of retries
    assert done.returncode == 2
    assert done.stderr.strip() == f"smcl-tune: --tracking-uri: {uri} does not answer (Connection refused); " + (
        "start the tracking server, or check the URI"
    )


@pytest.mark.slow  # a subprocess that imports Ray, torch and MLflow
def test_an_unreadable_ray_experiment_is_named_and_left_as_it_is(tmp_path, tiny_study, run_cli):
    study, paths = _started_study(tmp_path, tiny_study)
    (paths.record_dir / "tuner.pkl").write_bytes(JUNK)
    error = _refused_by_cli(run_cli, study, tmp_path, 1)
    assert error.startswith(
        f"smcl-tune: {paths.record_dir / 'tuner.pkl'}: Ray's saved state of study 'tiny' is unreadable (not a pickle"
    )
    assert f"restore {paths.record_dir} from a backup, or run again with --restart to start the study over" in error


@pytest.mark.parametrize(
    ("damaged", "content", "problem"),
    [
        ("experiment_state-2026-01-01_00-00-00.json", JUNK, "not JSON"),
        ("experiment_state-2026-01-01_00-00-00.json", b'{"trial_data": 3}', "it holds no list of trials"),
        ("searcher-state-2026-01-01_00-00-00.pkl", pickle.dumps({"kept": 1})[:-1], "not a pickle"),
    ],
    ids=["state not JSON", "state without trials", "searcher cut short"],
)
def test_each_file_ray_restores_from_is_checked(tmp_path, tiny_study, capsys, damaged, content, problem, ray_starts):
    study, paths = _started_study(tmp_path, tiny_study)
    (paths.record_dir / "tuner.pkl").write_bytes(pickle.dumps({"a": "tuner"}))
    (paths.record_dir / "experiment_state-2025-12-31_00-00-00.json").write_bytes(JUNK)  # older: Ray reads the newest
    (paths.record_dir / "experiment_state-2026-01-01_00-00-00.json").write_text('{"trial_data": []}')
    (paths.record_dir / damaged).write_bytes(content)
    before = _snapshot(tmp_path)
    assert main(["run", str(study.source)]) == 1
    error = capsys.readouterr().err.strip()
    assert error.startswith(f"smcl-tune: {paths.record_dir / damaged}: Ray's saved state of study 'tiny' is unreadable")
    assert f"({problem}" in error
    assert _snapshot(tmp_path) == before and ray_starts == []


def test_restart_sets_the_damaged_study_state_aside_but_not_a_damaged_tracking_store(tmp_path, tiny_study):
    study, paths = _started_study(tmp_path, tiny_study)
    (paths.record_dir / "optuna.db").write_bytes(JUNK)
    (paths.record_dir / "tuner.pkl").write_bytes(JUNK)
    check_study_stores(study, paths, restart=True)  # --restart discards them: nothing to refuse
    (paths.local_root / "mlflow.db").write_bytes(JUNK)
    with pytest.raises(Exception, match="the MLflow store is damaged"):
        check_study_stores(study, paths, restart=True)  # --restart deletes runs in that store: it must be readable


@pytest.mark.ray
@pytest.mark.slow
def test_run_restart_over_damaged_study_state_starts_the_study_afresh_and_runs_it(
    tmp_path, tiny_study, run_cli, joining_env
):
    # the run without --restart is refused: test_a_damaged_optuna_storage_is_named_and_left_as_it_is
    study, paths = _started_study(tmp_path, tiny_study, num_trials=1, scheduler={"type": "fifo"})
    (paths.record_dir / "optuna.db").write_bytes(JUNK)
    (paths.record_dir / "tuner.pkl").write_bytes(JUNK)
    done = run_cli("run", str(study.source), "--restart", cwd=tmp_path, env=joining_env, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    status = run_cli("status", "tiny", "--storage", str(paths.local_root), cwd=tmp_path)
    assert "study tiny: finished, 1 of 1 trials ended" in status.stdout, status.stdout + status.stderr


def test_a_shared_tracking_store_never_mixes_two_study_files_of_one_name(tmp_path, tiny_study, capsys, refused_by_main):
    uri = f"sqlite:///{tmp_path / 'server.db'}"
    StudyTracker(uri, "shared", "paper", "0123456789abcdef", tmp_path / "artifacts").finish()  # another lab's study
    study = tiny_study(
        tmp_path, name="paper", storage=str(tmp_path / "mine"), tracking={"uri": uri, "experiment": "shared"}
    )
    error = refused_by_main(["run", str(study)], capsys)
    assert "the MLflow experiment 'shared'" in error and "already holds a study named 'paper'" in error
    assert "fingerprint 0123456789abcdef" in error
    assert not (tmp_path / "mine").exists()
