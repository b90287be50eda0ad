"""A trial's checkpoint: everything it needs to resume exactly, written whole, read back only when
it is this trial's own.

One file, `trial.pt`: the model, the optimizer, both random generators, the epoch, the selection
so far, the history, the mask gallery, the configuration and the package version.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

import smcl_tune
from smcl_tune.atomic_write import write_atomically
from smcl_tune.config import TrialConfig, trial_config_changes
from smcl_tune.figures.mask_gallery import MaskGallery
from smcl_tune.trial.components import TrialComponents, TrialGenerators
from smcl_tune.trial.selection import Selection

log = logging.getLogger(__name__)

RESUMED_SEED_STRIDE = 1_000_003  # a prime: resumed seeds of nearby training.seeds and epochs do not collide

CHECKPOINT_NAME = "trial.pt"
REQUIRED = frozenset(
    {"version", "config", "epoch", "network", "optimizer", "batch_generator", "step_generator", "best_epoch"}
    | {"best_score", "best_state", "history"}
)
# Where a trial runs, not what it is: a checkpoint resumes across these.
RUN_ENVIRONMENT_FIELDS = {"data": {"root", "loader", "loader_workers"}, "training": {"device", "num_threads"}}


@dataclass
class TrialCheckpoint:
    """A trial's state after `epoch` epochs, part by part: what `trial.pt` holds. `config` is the
    trial's configuration as JSON; the network, optimizer and generators as their states."""

    config: dict[str, Any]
    epoch: int
    network: dict[str, torch.Tensor]
    optimizer: dict[str, Any]
    batch_generator: torch.Tensor
    step_generator: torch.Tensor
    selection: Selection
    history: list[dict[str, float]]
    gallery: MaskGallery | None = None

    def save(self, directory: Path) -> Path:
        """As `directory/trial.pt`, written whole (atomic_write): a crash or a full storage mid-write
        leaves the previous checkpoint as it was; returns `directory`."""
        directory.mkdir(parents=True, exist_ok=True)
        state = {
            "version": smcl_tune.__version__,
            "config": self.config,
            "epoch": self.epoch,
            "network": self.network,
            "optimizer": self.optimizer,
            "batch_generator": self.batch_generator,
            "step_generator": self.step_generator,
            "best_epoch": self.selection.epoch,
            "best_score": self.selection.score,
            "best_state": self.selection.weights,
            "history": self.history,
            "gallery": None if self.gallery is None else self.gallery.state(),
        }
        write_atomically(directory / CHECKPOINT_NAME, lambda file: torch.save(state, file))
        return directory

    @classmethod
    def of(
        cls,
        config: TrialConfig,
        epoch: int,
        parts: TrialComponents,
        selection: Selection,
        history: list[dict[str, float]],
        gallery: MaskGallery | None,
    ) -> TrialCheckpoint:
        """The state of a trial after `epoch` epochs: its components' and its own."""
        return cls(
            config=config.model_dump(mode="json"),
            epoch=epoch,
            network=parts.network.state_dict(),
            optimizer=parts.optimizer.state_dict(),
            batch_generator=parts.generators.batches.get_state(),
            step_generator=parts.generators.steps.get_state(),
            selection=selection,
            history=history,
            gallery=gallery,
        )

    def restore_generators(self, generators: TrialGenerators) -> None:
        """The generators' states as saved. The batch generator lives where the images are drawn
        (CUDA with the memory loader, else the CPU), and torch loads no state of one kind into the
        other (a CUDA generator's is its seed and Philox offset, 16 bytes; a CPU one's, 5,056): a
        trial resumed on the other kind draws its data order from a seed of its own and the epoch.
        The two kinds' draws differ anyway, so no run on the new device could have matched."""
        if self.batch_generator.numel() == generators.batches.get_state().numel():
            generators.batches.set_state(self.batch_generator)
        else:
            log.warning(
                "the checkpoint's data order was drawn on another kind of device than this %s: "
                "from epoch %d on it is drawn anew (seeded from training.seed and the epoch)",
                generators.batches.device.type,
                self.epoch,
            )
            generators.batches.manual_seed(self.config["training"]["seed"] + 1 + RESUMED_SEED_STRIDE * self.epoch)
        generators.steps.set_state(self.step_generator)

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> TrialCheckpoint:
        """A checkpoint read back (`load_checkpoint`)."""
        gallery = state.get("gallery")
        return cls(
            config=state["config"],
            epoch=state["epoch"],
            network=state["network"],
            optimizer=state["optimizer"],
            batch_generator=state["batch_generator"],
            step_generator=state["step_generator"],
            selection=Selection(state["best_epoch"], state["best_score"], state["best_state"]),
            history=state["history"],
            gallery=None if gallery is None else MaskGallery.from_state(gallery),
        )


def load_checkpoint(path: Path) -> dict[str, Any]:
    return torch.load(path, map_location="cpu", weights_only=True)


def _defining(config: dict[str, Any]) -> dict[str, Any]:
    return {
        section: {key: value for key, value in fields.items() if key not in RUN_ENVIRONMENT_FIELDS.get(section, ())}
        for section, fields in config.items()
    }


def resumable_checkpoint(path: Path, config: TrialConfig) -> TrialCheckpoint | None:
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
    changes = trial_config_changes(_defining(state["config"]), _defining(config.model_dump(mode="json")))
    if changes:
        log.warning(
            "checkpoint %s was written by another trial configuration (%s): the trial starts from scratch",
            path,
            changes,
        )
        return None
    return TrialCheckpoint.from_state(state)
