"""Which checkpoints a trial resumes from (issue 26): the version check on its own, and a run
environment that changed (data moved, another device) keeps the checkpoint."""

import logging

import pytest
import torch

import smcl_tune
from smcl_tune.config import trial_config_from_dict
from smcl_tune.trial.checkpoint import CHECKPOINT_NAME, resumable_checkpoint


def _checkpoint(folder, config, version=smcl_tune.__version__):
    """A checkpoint file as a trial writes it (its weights do not matter to the check)."""
    folder.mkdir()
    generator = torch.Generator().get_state()
    state = {
        **{"version": version, "config": config.model_dump(mode="json"), "epoch": 1, "network": {}, "optimizer": {}},
        **{"batch_generator": generator, "step_generator": generator, "history": [{}]},
        **{"best_epoch": None, "best_score": float("-inf"), "best_state": None},
    }
    torch.save(state, folder / CHECKPOINT_NAME)
    return folder


def test_a_checkpoint_of_another_version_alone_is_set_aside(tmp_path, tiny_config, caplog):
    config = trial_config_from_dict(tiny_config())
    assert resumable_checkpoint(_checkpoint(tmp_path / "same", config), config) is not None
    with caplog.at_level(logging.WARNING, logger="smcl_tune.trial.checkpoint"):
        assert resumable_checkpoint(_checkpoint(tmp_path / "older", config, version="0.0.1"), config) is None
    assert f"was written by smcl-tune 0.0.1, this is {smcl_tune.__version__}: the trial starts from scratch" in (
        caplog.text
    )


@pytest.mark.parametrize(
    "moved",
    [
        {"data": {"root": "/mnt/new-place/data"}},
        {"training": {"device": "cuda:1", "num_threads": 3}},
        {"data": {"root": "/mnt/new-place/data", "loader": "stream", "loader_workers": 2}},
    ],
    ids=["data root moved", "another device", "another loader"],
)
def test_a_changed_run_environment_keeps_the_checkpoint(tmp_path, tiny_config, moved, caplog):
    first = tiny_config()
    first["data"]["root"] = "/srv/old-place/data"
    now = tiny_config()
    now["data"]["root"] = first["data"]["root"]
    for section, values in moved.items():
        now[section].update(values)
    written = trial_config_from_dict(first)
    folder = _checkpoint(tmp_path / "checkpoint", written)
    with caplog.at_level(logging.WARNING, logger="smcl_tune.trial.checkpoint"):
        state = resumable_checkpoint(folder, trial_config_from_dict(now))
    assert state is not None and state.epoch == 1, caplog.text
    assert "starts from scratch" not in caplog.text


def test_a_checkpoint_written_before_a_field_was_added_is_kept(tmp_path, tiny_config, caplog):
    """training.cuda_graph came later; a checkpoint without it was written under its default."""
    config = trial_config_from_dict(tiny_config())
    folder = _checkpoint(tmp_path / "older", config)
    state = torch.load(folder / CHECKPOINT_NAME, weights_only=True)
    del state["config"]["training"]["cuda_graph"]
    torch.save(state, folder / CHECKPOINT_NAME)
    with caplog.at_level(logging.WARNING, logger="smcl_tune.trial.checkpoint"):
        assert resumable_checkpoint(folder, config) is not None
    assert "starts from scratch" not in caplog.text


def test_a_checkpoint_of_another_configuration_is_set_aside_naming_what_differs(tmp_path, tiny_config, caplog):
    written = trial_config_from_dict(tiny_config())
    now = tiny_config()
    now["method"] = {**now.get("method", {}), "temperature": 0.3}
    folder = _checkpoint(tmp_path / "other", written)
    with caplog.at_level(logging.WARNING, logger="smcl_tune.trial.checkpoint"):
        assert resumable_checkpoint(folder, trial_config_from_dict(now)) is None
    assert (
        f"was written by another trial configuration (method.temperature: {written.method.temperature!r} -> 0.3)"
        in (caplog.text)
    )
