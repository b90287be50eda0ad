"""Which checkpoint replaces one that Ray's saved experiment state names but Ray deleted.
(tests/study/test_resume.py runs the repair on Ray's real state after a `kill -9`.)"""

import json

from smcl_tune.study.experiment_state_repair import restore_missing_checkpoints


def _experiment(tmp_path, named: str, on_disk: list[str]):
    trial_dir = tmp_path / "train_study_trial_1"
    for name in on_disk:
        (trial_dir / name).mkdir(parents=True)
        (trial_dir / name / "trial.pt").write_text(name)
    trial = json.dumps({"relative_logdir": trial_dir.name})
    runtime = json.dumps({"last_result": {"epoch": 1, "checkpoint_dir_name": named}})
    (tmp_path / "experiment_state-2026-01-01_00-00-00.json").write_text(json.dumps({"trial_data": [[trial, runtime]]}))
    return trial_dir


def test_the_first_checkpoint_after_the_deleted_one_takes_its_name(tmp_path):
    trial_dir = _experiment(tmp_path, "checkpoint_000001", ["checkpoint_000002", "checkpoint_000003"])
    assert restore_missing_checkpoints(tmp_path) == [trial_dir / "checkpoint_000001"]
    # checkpoint 3 holds an epoch the driver never logged; checkpoint 2 is the one Ray registered
    assert (trial_dir / "checkpoint_000001" / "trial.pt").read_text() == "checkpoint_000002"
    assert sorted(path.name for path in trial_dir.iterdir()) == ["checkpoint_000001", "checkpoint_000003"]


def test_a_checkpoint_that_exists_is_left_alone(tmp_path):
    trial_dir = _experiment(tmp_path, "checkpoint_000001", ["checkpoint_000001", "checkpoint_000002"])
    assert restore_missing_checkpoints(tmp_path) == []
    assert (trial_dir / "checkpoint_000001" / "trial.pt").read_text() == "checkpoint_000001"


def test_an_unreadable_state_changes_nothing(tmp_path):
    trial_dir = _experiment(tmp_path, "checkpoint_000001", ["checkpoint_000002"])
    (tmp_path / "experiment_state-2026-01-01_00-00-00.json").write_text("{not json")
    assert restore_missing_checkpoints(tmp_path) == []
    assert [path.name for path in trial_dir.iterdir()] == ["checkpoint_000002"]


def test_with_two_saved_states_the_newest_one_is_repaired(tmp_path):
    trial_dir = _experiment(tmp_path, "checkpoint_000001", ["checkpoint_000004"])  # the older state
    trial = json.dumps({"relative_logdir": trial_dir.name})
    runtime = json.dumps({"last_result": {"epoch": 3, "checkpoint_dir_name": "checkpoint_000003"}})
    newer = tmp_path / "experiment_state-2026-01-01_00-05-00.json"  # Ray restores the newest by name
    newer.write_text(json.dumps({"trial_data": [[trial, runtime]]}))
    assert restore_missing_checkpoints(tmp_path) == [trial_dir / "checkpoint_000003"]
    assert (trial_dir / "checkpoint_000003" / "trial.pt").read_text() == "checkpoint_000004"
    assert [path.name for path in trial_dir.iterdir()] == ["checkpoint_000003"]


def test_without_a_later_checkpoint_the_newest_earlier_one_takes_the_name(tmp_path):
    trial_dir = _experiment(tmp_path, "checkpoint_000005", ["checkpoint_000002", "checkpoint_000003"])
    assert restore_missing_checkpoints(tmp_path) == [trial_dir / "checkpoint_000005"]
    assert (trial_dir / "checkpoint_000005" / "trial.pt").read_text() == "checkpoint_000003"
    assert sorted(path.name for path in trial_dir.iterdir()) == ["checkpoint_000002", "checkpoint_000005"]


def test_on_an_object_store_the_replacement_is_copied_to_the_name_and_then_deleted(s3_server, monkeypatch):
    """S3 (a real S3 API server) has no folders to rename: the same repair, by copy and delete."""
    import pyarrow.fs

    from tests.fixtures.cluster_stores import S3_ENVIRONMENT

    for name, value in S3_ENVIRONMENT.items():
        monkeypatch.setenv(name, value)
    fs, root = pyarrow.fs.FileSystem.from_uri(s3_server.storage("repair/study"))
    trial = json.dumps({"relative_logdir": "train_study_trial_1"})
    runtime = json.dumps({"last_result": {"epoch": 1, "checkpoint_dir_name": "checkpoint_000001"}})
    with fs.open_output_stream(f"{root}/experiment_state-2026-01-01_00-00-00.json") as stream:
        stream.write(json.dumps({"trial_data": [[trial, runtime]]}).encode())
    for name in ("checkpoint_000002", "checkpoint_000003"):
        with fs.open_output_stream(f"{root}/train_study_trial_1/{name}/trial.pt") as stream:
            stream.write(name.encode())

    restored = restore_missing_checkpoints(root, fs)

    assert [path.name for path in restored] == ["checkpoint_000001"]
    with fs.open_input_stream(f"{root}/train_study_trial_1/checkpoint_000001/trial.pt") as stream:
        assert stream.readall() == b"checkpoint_000002"
    files = [key for key in s3_server.keys("repair/study/train_study_trial_1/") if key.endswith("/trial.pt")]
    assert sorted(key.split("/")[-2] for key in files) == [
        "checkpoint_000001",
        "checkpoint_000003",
    ]
