"""`whole_state_saves.py`: Ray's own `TuneController.save_to_dir`, racing Ray's own copy of its
staging folder, leaves a torn experiment state in a storage without it and never with it."""

import json

import pytest
from ray.tune.execution import tune_controller

from benchmarks.state_copy_race import STATE, torn_copies
from smcl_tune.study.whole_state_saves import whole_experiment_state_saves


def test_rays_save_racing_rays_copy_leaves_no_torn_state(tmp_path):
    # into a plain folder, as an object store takes a copy: whatever the copy read
    assert torn_copies(tmp_path / "as-ray-saves", 200)["torn"] > 0  # the race, as Ray runs it: else nothing is tested
    # nor does a copy meet the save's temporary, renamed away (it is written beside the staging folder)
    assert torn_copies(tmp_path / "whole", 200, whole_saves=True) == {"torn": 0, "vanished": 0}
    assert "open" not in vars(tune_controller)  # Ray's module as it was


def test_only_the_experiment_state_is_written_aside_and_a_failed_save_keeps_the_last(tmp_path):
    staging = tmp_path / "driver_artifacts"  # Ray's staging folder; the temporary goes beside it
    staging.mkdir()
    state = staging / STATE
    state.write_text('{"trial_data": []}')
    with whole_experiment_state_saves():
        with pytest.raises(TypeError), tune_controller.open(state, "w") as file:
            json.dump({"trial_data": [object()]}, file)  # not JSON: Ray's save fails half-way
        with tune_controller.open(staging / "other.json", "w") as file:  # any other file: written in place
            assert type(file).__module__ == "_io"
            file.write("{}")
        with tune_controller.open(staging / "other.json") as file:
            assert file.read() == "{}"
        with tune_controller.open(state, "w") as file:
            json.dump({"trial_data": [1]}, file)
            assert state.read_text() == '{"trial_data": []}'  # until it is closed
    assert json.loads(state.read_text()) == {"trial_data": [1]}
    assert sorted(path.name for path in staging.iterdir()) == [STATE, "other.json"]
    assert [path.name for path in tmp_path.iterdir()] == ["driver_artifacts"]  # no temporary left


def test_a_save_that_cannot_be_renamed_into_place_leaves_no_temporary(tmp_path):
    staging = tmp_path / "driver_artifacts"
    (staging / STATE / "in-the-way").mkdir(parents=True)  # the state's name is taken by a folder
    with whole_experiment_state_saves(), pytest.raises(OSError), tune_controller.open(staging / STATE, "w") as file:
        file.write("{}")
    assert [path.name for path in tmp_path.iterdir()] == ["driver_artifacts"]
