"""A trial's checkpoint: everything it needs to resume exactly, written whole, read back only when
it is this trial's own.

One file, `trial.pt`: the model, the optimizer, both random generators, the epoch, the selection
so far, the history, the mask gallery, the configuration and the package version.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

import smcl_tune
from smcl_tune.atomic_write import write_atomically
from smcl_tune.config import TrialConfig
from smcl_tune.figures.mask_gallery import MaskGallery

if TYPE_CHECKING:
    from smcl_tune.trial.run import Trial

log = logging.getLogger(__name__)

CHECKPOINT_NAME = "trial.pt"
REQUIRED = frozenset({"version", "config", "epoch", "network", "optimizer"})
# Where a trial runs, not what it is: a checkpoint resumes across these.
RUN_ENVIRONMENT_FIELDS = {"data": {"root", "loader", "loader_workers"}, "training": {"device", "num_threads"}}


def trial_state(trial: Trial) -> dict[str, Any]:
    selection = trial.selection
    return {
        "version": smcl_tune.__version__,
        "config": trial.config.model_dump(mode="json"),
        "epoch": trial.epoch,
        "network": trial.network.state_dict(),
        "optimizer": trial.optimizer.state_dict(),
        "batch_generator": trial.batch_generator.get_state(),
        "step_generator": trial.step_generator.get_state(),
        "best_epoch": selection.epoch,
        "best_score": selection.score,
        "best_state": selection.weights,
        "history": trial.history,
        "gallery": None if trial.gallery is None else trial.gallery.state(),
    }


def restore(trial: Trial, state: dict[str, Any]) -> None:
    """Put `state` (a `trial_state`, read back) into `trial`."""
    trial.epoch = state["epoch"]
    trial.network.load_state_dict(state["network"])
    trial.optimizer.load_state_dict(state["optimizer"])
    trial.batch_generator.set_state(state["batch_generator"])
    trial.step_generator.set_state(state["step_generator"])
    trial.selection.epoch = state["best_epoch"]
    trial.selection.score = state["best_score"]
    trial.selection.weights = state["best_state"]
    trial.history = state["history"]
    gallery = state.get("gallery")
    trial.gallery = None if gallery is None else MaskGallery.from_state(gallery)


def save_checkpoint(trial: Trial, directory: Path) -> Path:
    """The trial's state as `directory/trial.pt`, written whole (atomic_write): a crash or a full
    storage mid-write leaves the previous checkpoint as it was; returns `directory`."""
    directory.mkdir(parents=True, exist_ok=True)
    state = trial_state(trial)
    write_atomically(directory / CHECKPOINT_NAME, lambda file: torch.save(state, file))
    return directory


def load_checkpoint(path: Path) -> dict[str, Any]:
    return torch.load(path, map_location="cpu", weights_only=True)


def _defining(config: dict[str, Any]) -> dict[str, Any]:
    return {
        section: {key: value for key, value in fields.items() if key not in RUN_ENVIRONMENT_FIELDS.get(section, ())}
        for section, fields in config.items()
    }


def resumable_state(path: Path, config: TrialConfig) -> dict[str, Any] | None:
    """The checkpoint at `path` (a file or the folder holding one) if this trial can continue from it.

    A checkpoint that cannot be read, or was written by another trial configuration or another
    version of the package, is set aside with a warning: the trial starts from scratch rather than
    failing again and again, or continuing from a state that is not its own.
    """
    path = path / CHECKPOINT_NAME if path.is_dir() else path
    try:
        state = load_checkpoint(path)
    except Exception as error:  # torch.load raises many kinds on a damaged file
        log.warning("checkpoint %s is unreadable (%s): the trial starts from scratch", path, error)
        return None
    missing = REQUIRED - set(state) if isinstance(state, dict) else {"*"}
    if missing:
        log.warning("checkpoint %s lacks %s: the trial starts from scratch", path, ", ".join(sorted(missing)))
        return None
    if state["version"] != smcl_tune.__version__:
        log.warning(
            "checkpoint %s was written by smcl-tune %s, this is %s: the trial starts from scratch",
            path,
            state["version"],
            smcl_tune.__version__,
        )
        return None
    if _defining(state["config"]) != _defining(config.model_dump(mode="json")):
        log.warning("checkpoint %s was written by another trial configuration: the trial starts from scratch", path)
        return None
    return state
