"""The study record and the storage (study/paths.py): a changed study file, or changed run
settings, under an existing name are refused unless --restart; an unreadable record is named;
--restart deletes only what the record proves to be the study's own; the tracking URI is shown
without its credentials."""

import json
from pathlib import Path

import optuna
import pytest
from mlflow.tracking import MlflowClient

from smcl_tune.cli import main
from smcl_tune.errors import ConfigError
from smcl_tune.store.paths import StudyPaths, default_tracking_uri
from smcl_tune.store.study_record import RECORD_FORMAT, check_study_record, write_study_record
from smcl_tune.study.runner import _prepare_state
from smcl_tune.studyfile.study import load_study
from smcl_tune.tracking.writer import StudyTracker

OLD_RECORD = {"format": RECORD_FORMAT, "fingerprint": "0123456789abcdef", "source": "old.yaml"}


def _files(folder: Path) -> list[str]:
    return sorted(str(path.relative_to(folder)) for path in folder.rglob("*"))


def _runs(tracker: StudyTracker, count: int) -> None:
    for index in range(count):
        tracker.trial_run(f"k{index}", f"trial-{index:03d}", "search", {}, {})
    tracker.finish()


def _active(client, study: str) -> int:
    experiment = client.get_experiment_by_name("shared")
    runs = client.search_runs([experiment.experiment_id], filter_string=f"tags.`smcl.study` = '{study}'")
    return len(runs)


@pytest.mark.ray
@pytest.mark.slow
def test_changed_study_file_is_refused_before_anything_starts_and_restart_replaces_it(
    tmp_path, capsys, tiny_study, trial_runs, shared_ray, ray_starts
):
    path = tiny_study(tmp_path, name="same-name", num_trials=1)
    path.write_text(
        path.read_text().replace("epochs: 3", "epochs: 1").replace("mask_end_epoch: 10", "mask_end_epoch: 1")
    )
    storage = tmp_path / "smcl-runs"
    record = storage / "same-name"
    record.mkdir(parents=True)
    (record / "smcl-study.json").write_text(json.dumps(OLD_RECORD))
    (record / "optuna.db").write_text("the old study's Optuna record")

    assert main(["run", str(path)]) == 2
    error = capsys.readouterr().err
    assert "study 'same-name' already exists" in error and "--restart" in error
    assert ray_starts == []
    assert _files(storage) == ["same-name", "same-name/optuna.db", "same-name/smcl-study.json"]
    assert json.loads((record / "smcl-study.json").read_text()) == OLD_RECORD

    assert main(["run", str(path), "--restart"]) == 0  # on the session's Ray
    assert json.loads((record / "smcl-study.json").read_text())["fingerprint"] != OLD_RECORD["fingerprint"]
    study = optuna.load_study(study_name="same-name", storage=f"sqlite:///{record / 'optuna.db'}")
    assert [trial.state for trial in study.get_trials()] == [optuna.trial.TrialState.COMPLETE]
    client = MlflowClient(tracking_uri=default_tracking_uri(storage))
    assert [run.info.run_name for run in trial_runs(client, "same-name")] == ["trial-000"]


def test_restart_discards_the_record_the_optuna_study_and_the_mlflow_runs(tmp_path, tiny_study):
    from smcl_tune.store.paths import StudyPaths
    from smcl_tune.study.runner import _prepare_state
    from smcl_tune.studyfile.study import load_study
    from smcl_tune.tracking.writer import StudyTracker

    study = load_study(tiny_study(tmp_path, name="again"))
    paths = StudyPaths.of(study)
    assert _prepare_state(study, paths, restart=False) is False
    tracker = StudyTracker(
        paths.tracking_uri, paths.experiment, study.name, study.fingerprint(), paths.local_root / "mlartifacts"
    )
    tracker.trial_run("optuna-0", "trial-000", "search", {"temperature": 0.1}, {})
    (paths.record_dir / "optuna.db").write_text("stale")
    left = paths.local_root / ".again.discarded-4242"  # an earlier --restart, killed while it deleted
    (left / "deep").mkdir(parents=True)
    other = paths.local_root / ".again.discarded-4242.lock"  # a file of another study's name (again.discarded-4242)
    other.write_text("")
    assert _prepare_state(study, paths, restart=True) is False
    assert not (paths.record_dir / "optuna.db").exists()
    assert not left.exists() and other.exists()
    assert [path.name for path in paths.local_root.iterdir() if ".discarded-" in path.name] == [other.name]
    assert (paths.record_dir / "smcl-study.json").exists()
    experiment = tracker.client.get_experiment_by_name(paths.experiment)
    assert tracker.client.search_runs([experiment.experiment_id]) == []


def test_restart_deletes_no_folder_that_its_record_does_not_prove_to_be_the_studys(
    tmp_path, tiny_study, capsys, refused_by_main
):
    papers = tmp_path / "papers"
    (papers / "thesis").mkdir(parents=True)
    (papers / "thesis" / "chapter1.tex").write_text("years of work")
    study = tiny_study(tmp_path, name="thesis", storage=str(papers))
    error = refused_by_main(["run", str(study), "--restart"], capsys)
    assert "holds no study record (smcl-study.json), so it is not study 'thesis''s state; not deleting it" in error
    # nor is it taken over by a plain run (whose record a later --restart would take for proof)
    error = refused_by_main(["run", str(study)], capsys)
    assert error == (
        f"smcl-tune: {papers / 'thesis'} already holds files and no study record (smcl-study.json), so it is not "
        "study 'thesis''s state; not writing into it: move it away, or choose another study name or storage"
    )
    assert sorted(path.name for path in papers.rglob("*")) == ["chapter1.tex", "thesis"]
    assert (papers / "thesis" / "chapter1.tex").read_text() == "years of work"


def test_an_empty_folder_or_a_link_to_one_is_offered_to_a_new_study(tmp_path, tiny_study):
    """Made ahead by the user (a link puts Ray's results on another disk): nothing of anyone's in it."""
    from smcl_tune.store.study_record import check_study_record
    from smcl_tune.studyfile.study import load_study

    storage = tmp_path / "smcl-runs"
    (tmp_path / "big-disk").mkdir()
    storage.mkdir()
    (storage / "linked").symlink_to(tmp_path / "big-disk")
    (storage / "made").mkdir()
    for name in ("linked", "made"):
        study = load_study(tiny_study(tmp_path, name=name, storage=str(storage)))
        assert check_study_record(study, StudyPaths.of(study), restart=False) is None


def test_restart_deletes_nothing_outside_the_storage(tmp_path, tiny_study, capsys, refused_by_main):
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "smcl-study.json").write_text(json.dumps({"name": "linked"}))
    storage = tmp_path / "smcl-runs"
    storage.mkdir()
    (storage / "linked").symlink_to(outside)
    error = refused_by_main(["run", str(tiny_study(tmp_path, name="linked")), "--restart"], capsys)
    assert "does not lie inside the storage" in error
    assert (outside / "smcl-study.json").exists()


def test_a_resumed_study_refuses_changed_run_settings_it_cannot_honour(tmp_path, tiny_study):
    first = load_study(tiny_study(tmp_path, name="settled", max_concurrent=2))
    write_study_record(first, StudyPaths.of(first))
    changed = load_study(tiny_study(tmp_path, name="settled", max_concurrent=4))
    with pytest.raises(ConfigError, match=r"max_concurrent was 2 when the study started and is 4 now"):
        check_study_record(changed, StudyPaths.of(changed), restart=False)
    moved = load_study(
        tiny_study(tmp_path, name="settled", max_concurrent=2, tracking={"uri": f"sqlite:///{tmp_path / 'other.db'}"})
    )
    with pytest.raises(ConfigError, match=r"tracking_uri was .* when the study started"):
        check_study_record(moved, StudyPaths.of(moved), restart=False)
    check_study_record(changed, StudyPaths.of(changed), restart=True)  # --restart starts over with them


@pytest.mark.parametrize("record", ["", '{"name": "cut', "[1, 2]"], ids=["empty", "truncated", "not an object"])
def test_an_unreadable_study_record_is_named(tmp_path, tiny_study, capsys, refused_by_main, record):
    study = tiny_study(tmp_path, name="torn")
    (tmp_path / "smcl-runs" / "torn").mkdir(parents=True)
    (tmp_path / "smcl-runs" / "torn" / "smcl-study.json").write_text(record)
    error = refused_by_main(["run", str(study)], capsys)
    assert "smcl-study.json: the study record is" in error and "--restart" in error


@pytest.mark.parametrize("command", ["run", "validate"])
def test_a_storage_path_that_is_a_file_is_refused(tmp_path, tiny_study, capsys, refused_by_main, command):
    (tmp_path / "notes.txt").write_text("not a folder")
    error = refused_by_main([command, str(tiny_study(tmp_path, storage=str(tmp_path / "notes.txt")))], capsys)
    assert f"storage: {tmp_path / 'notes.txt'} is a file, not a folder" in error


@pytest.mark.parametrize("command", ["run", "validate"])
def test_a_storage_path_under_a_file_is_refused(tmp_path, tiny_study, capsys, refused_by_main, command):
    (tmp_path / "notes.txt").write_text("not a folder")
    storage = tmp_path / "notes.txt" / "runs"
    error = refused_by_main([command, str(tiny_study(tmp_path, storage=str(storage)))], capsys)
    assert f"storage: {storage} cannot be made: {tmp_path / 'notes.txt'} is a file, not a folder" in error
    assert (tmp_path / "notes.txt").read_text() == "not a folder"


def test_a_storage_folder_the_file_system_will_not_make_is_refused(tmp_path, tiny_study, capsys, refused_by_main):
    """/proc takes no new folder (the same path as a folder this user may not write in)."""
    error = refused_by_main(["run", str(tiny_study(tmp_path, storage="/proc/smcl-runs"))], capsys)
    assert error == "smcl-tune: storage: /proc/smcl-runs cannot be made (No such file or directory)"


@pytest.mark.parametrize("command", ["run", "validate"])
def test_a_storage_path_that_cannot_be_looked_into_is_refused(tmp_path, tiny_study, capsys, refused_by_main, command):
    """A folder this user may not read (as root: a link to itself, which no one can follow)."""
    (tmp_path / "loop").symlink_to(tmp_path / "loop")
    storage = tmp_path / "loop" / "runs"
    error = refused_by_main([command, str(tiny_study(tmp_path, storage=str(storage)))], capsys)
    assert f"storage: {storage}: cannot resolve it (Symlink loop" in error


def test_the_user_part_of_the_tracking_uri_never_reaches_the_output(tmp_path, tiny_study, capsys):
    # a password there is refused (tests/studyfile/test_uri_credentials.py); a user name is still not shown
    study = tiny_study(tmp_path, name="secret", tracking={"uri": "https://alice-at-work@mlflow.example.org"})
    assert main(["validate", str(study)]) == 0
    shown = capsys.readouterr().out
    assert "alice-at-work" not in shown and "https://***@mlflow.example.org" in shown
    loaded = load_study(study)
    assert "alice-at-work" not in loaded.source_text() + json.dumps(loaded.display_dict())


def test_restart_in_a_shared_experiment_deletes_only_its_own_studys_runs(tmp_path, tiny_study):
    study = load_study(tiny_study(tmp_path, name="mine", tracking={"experiment": "shared"}))
    paths = StudyPaths.of(study)
    write_study_record(study, paths)
    mine = StudyTracker(paths.tracking_uri, "shared", "mine", study.fingerprint(), paths.artifact_root)
    _runs(mine, 2)
    _runs(StudyTracker(paths.tracking_uri, "shared", "other", "fp-other", paths.artifact_root), 3)
    assert (_active(mine.client, "mine"), _active(mine.client, "other")) == (3, 4)  # trial runs and a study run
    _prepare_state(study, paths, restart=True)
    assert (_active(mine.client, "mine"), _active(mine.client, "other")) == (0, 4)


def _as_an_older_smcl_tune_left_it(paths: StudyPaths) -> None:
    """The record as smcl-tune wrote it before RECORD_FORMAT (and TrialSpec): the same, without "format"."""
    record = json.loads(paths.record_file.read_text())
    del record["format"]
    paths.record_file.write_text(json.dumps(record))


@pytest.mark.slow  # a subprocess that imports Ray, torch and MLflow
def test_a_study_an_older_smcl_tune_started_is_refused_and_left_as_it_is(tmp_path, tiny_study, run_cli):
    study = load_study(tiny_study(tmp_path, name="older"))
    paths = StudyPaths.of(study)
    write_study_record(study, paths)
    _as_an_older_smcl_tune_left_it(paths)
    before = {path: path.read_bytes() for path in sorted(tmp_path.rglob("*")) if path.is_file()}
    done = run_cli("run", str(study.source), cwd=tmp_path)
    assert done.returncode == 2, done.stdout[-2000:] + done.stderr[-2000:]
    error = done.stderr.strip()
    assert len(error.splitlines()) == 1 and "Traceback" not in done.stderr, error
    assert (
        f"study 'older' in {paths.record_dir} was started by an older smcl-tune and cannot be resumed by this one"
        in error
    )
    assert "give the study a new name (or another storage) to start it afresh" in error
    assert {path: path.read_bytes() for path in sorted(tmp_path.rglob("*")) if path.is_file()} == before


def test_a_study_whose_record_is_format_2_is_resumed(tmp_path, tiny_study):
    # format 2: the same state before Ray wrote the storage through atomic_storage.py
    study = load_study(tiny_study(tmp_path, name="format2"))
    paths = StudyPaths.of(study)
    write_study_record(study, paths)
    record = json.loads(paths.record_file.read_text())
    paths.record_file.write_text(json.dumps({**record, "format": 2}))
    check_study_record(study, paths, restart=False)


def test_a_study_a_newer_smcl_tune_started_is_refused(tmp_path, tiny_study):
    study = load_study(tiny_study(tmp_path, name="newer"))
    paths = StudyPaths.of(study)
    write_study_record(study, paths)
    record = json.loads(paths.record_file.read_text())
    paths.record_file.write_text(json.dumps({**record, "format": RECORD_FORMAT + 1}))
    with pytest.raises(ConfigError, match=r"was started by a newer smcl-tune and cannot be resumed by this one"):
        check_study_record(study, paths, restart=False)
    check_study_record(study, paths, restart=True)  # --restart may discard it


def _started_under_other_defaults(paths: StudyPaths, **method) -> None:
    """The record as a study leaves it that started when smcl-tune's defaults were `method`'s."""
    record = json.loads(paths.record_file.read_text())
    record["resolved_trial"]["method"].update(method)
    paths.record_file.write_text(json.dumps(record))


def test_a_study_started_under_other_defaults_is_refused_in_one_line_naming_them(
    tmp_path, tiny_study, capsys, refused_by_main
):
    study = load_study(tiny_study(tmp_path, name="defaults"))
    paths = StudyPaths.of(study)
    write_study_record(study, paths)
    check_study_record(study, paths, restart=False)  # the same defaults: resumed
    _started_under_other_defaults(paths, saliency="gradient")
    error = refused_by_main(["run", str(study.source)], capsys)
    assert "started with other defaults than this smcl-tune's (trial.method.saliency: 'gradient' -> " in error
    assert "'cam')" in error and "--restart" in error
    check_study_record(study, paths, restart=True)  # --restart starts it over under the new ones


def test_a_study_started_before_a_field_was_added_resumes_under_its_default(tmp_path, tiny_study):
    """training.cuda_graph came later: a record without it is not a study of other defaults."""
    study = load_study(tiny_study(tmp_path, name="older"))
    paths = StudyPaths.of(study)
    write_study_record(study, paths)
    record = json.loads(paths.record_file.read_text())
    del record["resolved_trial"]["training"]["cuda_graph"]
    paths.record_file.write_text(json.dumps(record))
    check_study_record(study, paths, restart=False)
    record["resolved_trial"]["training"]["compile"] = True  # a field it had, changed: still refused
    paths.record_file.write_text(json.dumps(record))
    with pytest.raises(ConfigError, match=r"trial.training.compile: True -> False"):
        check_study_record(study, paths, restart=False)


def test_a_study_file_that_sets_the_changed_default_as_it_was_resumes_as_the_refusal_says(tmp_path, tiny_study):
    import yaml

    from smcl_tune.store.health_check import check_tracking_store
    from smcl_tune.study.parent_run import study_tags

    path = tiny_study(tmp_path, name="pinned")
    study = load_study(path)
    paths = StudyPaths.of(study)
    write_study_record(study, paths)
    first = study.fingerprint()
    StudyTracker(paths.tracking_uri, paths.experiment, study.name, first, paths.artifact_root)
    _started_under_other_defaults(paths, saliency="spectral_residual")  # before cam was the default
    with pytest.raises(ConfigError, match="set these values in the study file as they were"):
        check_study_record(study, paths, restart=False)

    text = yaml.safe_load(path.read_text())
    text["trial"]["method"]["saliency"] = "spectral_residual"  # what the refusal asks for
    path.write_text(yaml.safe_dump(text))
    pinned = load_study(path)
    for _ in range(2):  # resumed, and resumed again once the record and the study run hold the new file
        record = check_study_record(pinned, paths, restart=False)
        check_tracking_store(pinned, paths, restart=False, resumed=record["fingerprint"])
        write_study_record(pinned, paths)  # as run does: the record, then the study run's tags
        tracker = StudyTracker(paths.tracking_uri, paths.experiment, pinned.name, pinned.fingerprint(), None)
        tracker.log_study(None, None, {}, study_tags(pinned, paths))
        # a trial's tracker, restored by Ray with the first run's arguments, changes nothing
        StudyTracker(paths.tracking_uri, paths.experiment, pinned.name, first, None)

    text["trial"]["method"]["saliency"] = "gradient"  # another value is another study
    path.write_text(yaml.safe_dump(text))
    with pytest.raises(ConfigError, match="with a different study file"):
        check_study_record(load_study(path), paths, restart=False)


def test_a_record_from_before_the_resolved_trial_was_kept_is_resumed(tmp_path, tiny_study):
    study = load_study(tiny_study(tmp_path, name="older-record"))
    paths = StudyPaths.of(study)
    write_study_record(study, paths)
    record = json.loads(paths.record_file.read_text())
    del record["resolved_trial"]
    paths.record_file.write_text(json.dumps(record))
    check_study_record(study, paths, restart=False)


def _started_before_text_was_read_as_numbers(tmp_path, tiny_study, name: str):
    """A study file writing `epochs: "3"`, and the record smcl-tune wrote for it before 2026-12-07."""
    path = tiny_study(tmp_path, name=name)
    path.write_text(path.read_text().replace("epochs: 3", 'epochs: "3"'))
    study = load_study(path)
    paths = StudyPaths.of(study)
    write_study_record(study, paths)
    record = json.loads(paths.record_file.read_text())
    paths.record_file.write_text(json.dumps({**record, "fingerprint": study.fingerprints()[1]}))
    return path, study, paths


def test_a_study_run_tagged_before_text_was_read_as_numbers_is_this_files_on_a_shared_server(tmp_path, tiny_study):
    from smcl_tune.store.health_check import check_tracking_store

    _, study, paths = _started_before_text_was_read_as_numbers(tmp_path, tiny_study, "tagged")
    StudyTracker(paths.tracking_uri, paths.experiment, study.name, study.fingerprints()[1], paths.artifact_root)
    check_tracking_store(study, paths, restart=False, resumed=None)  # no record read: the server's tag alone


def test_a_study_started_then_under_other_defaults_resumes_once_they_are_pinned(tmp_path, tiny_study):
    path, _, paths = _started_before_text_was_read_as_numbers(tmp_path, tiny_study, "pinned-then")
    _started_under_other_defaults(paths, saliency="spectral_residual")
    path.write_text(path.read_text().replace("method:", "method:\n    saliency: spectral_residual", 1))
    pinned = load_study(path)
    assert pinned.config.trial["method"]["saliency"] == "spectral_residual"
    assert check_study_record(pinned, paths, restart=False) is not None


def test_a_study_started_when_numbers_written_as_text_counted_as_text_resumes_and_takes_the_numbers(
    tmp_path, tiny_study
):
    from smcl_tune.store.health_check import check_tracking_store

    path, study, paths = _started_before_text_was_read_as_numbers(tmp_path, tiny_study, "texts")
    fingerprint, before = study.fingerprints()
    assert before != fingerprint
    StudyTracker(paths.tracking_uri, paths.experiment, study.name, before, paths.artifact_root)

    assert check_study_record(study, paths, restart=False)["fingerprint"] == before  # resumed
    check_tracking_store(study, paths, restart=False, resumed=before)
    write_study_record(study, paths)  # as run does: the record now holds the number's fingerprint
    path.write_text(path.read_text().replace('epochs: "3"', "epochs: 3"))  # the same study, spelt otherwise
    assert check_study_record(load_study(path), paths, restart=False)["fingerprint"] == fingerprint
    path.write_text(path.read_text().replace("epochs: 3", "epochs: 4"))  # another value is another study
    with pytest.raises(ConfigError, match="with a different study file"):
        check_study_record(load_study(path), paths, restart=False)
