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
