"""Which checkpoints a trial resumes from (issue 26): the version check on its own, and a run
environment that changed (data moved, another device) keeps the checkpoint."""

import logging
import shutil

import pytest
import torch

import smcl_tune
from smcl_tune.config import trial_config_from_dict
from smcl_tune.trial.checkpoint import CHECKPOINT_NAME, resumable_checkpoint
from smcl_tune.trial.fused.group_run import run_fused_group
from smcl_tune.trial.run import run_trial


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


def _as_written_on_cuda(folder):
    """The checkpoint in `folder` as a trial on CUDA (the memory loader) writes it: its batch
    generator's state is a CUDA generator's, its seed and Philox offset (16 bytes)."""
    state = torch.load(folder / CHECKPOINT_NAME, weights_only=True)
    state["batch_generator"] = torch.tensor([state["config"]["training"]["seed"] + 1, 4096]).view(torch.uint8)
    torch.save(state, folder / CHECKPOINT_NAME)
    return folder


def test_a_trial_checkpointed_on_cuda_resumes_on_the_cpu_drawing_its_data_order_anew(tmp_path, tiny_config, caplog):
    """The device is a run environment (above): the checkpoint is kept, and the batch generator's
    state, which torch does not load across device kinds, is replaced by a seed of the trial's own,
    so that the same resume gives the same trial; fused members resume the same way."""
    config = trial_config_from_dict(tiny_config())
    first_epoch = tmp_path / "after-epoch-0"

    def keep_first(metrics, checkpoint):
        if metrics["epoch"] == 0:
            shutil.copytree(checkpoint, first_epoch)

    run_trial(config, report=keep_first, checkpoint_dir=str(tmp_path / "run"))  # a str, as a script may give
    _as_written_on_cuda(first_epoch)
    with caplog.at_level(logging.WARNING, logger="smcl_tune.trial.checkpoint"):
        resumed = [run_trial(config, resume_from=first_epoch) for _ in range(2)]
        fused = run_fused_group([config, tiny_config(seed=1)], resume_from=[first_epoch, None])
    drawn_anew = "the checkpoint's data order was drawn on another kind of device than this cpu: from epoch 1 on"
    assert caplog.text.count(drawn_anew) == 3, caplog.text
    assert [len(result.history) for result in (*resumed, fused[0])] == [2, 2, 2]
    assert [epoch["loss"] for epoch in resumed[0].history] == [epoch["loss"] for epoch in resumed[1].history]
    assert resumed[0].test == resumed[1].test
    assert fused[0].history[1]["loss"] == pytest.approx(resumed[0].history[1]["loss"], rel=1e-2)
