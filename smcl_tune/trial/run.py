"""One trial: build data and model, train epoch by epoch, select on validation, evaluate on test.

In the shape of torchvision's classification reference: `train_one_epoch(...)` (epoch.py) and
`evaluate(...)` (evaluation.py) are the stages, each given what it works on; `run_trial(config)`
builds the components once (components.py) and wires them. It runs without Ray.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from smcl_tune.config import TrialConfig, trial_config_from_dict
from smcl_tune.data.splits import TrialData, build_trial_data
from smcl_tune.errors import ConfigError
from smcl_tune.method.step import StepLoss
from smcl_tune.results import TrialResult, TrialState
from smcl_tune.trial.checkpoint import TrialCheckpoint, resumable_checkpoint
from smcl_tune.trial.components import TrialComponents
from smcl_tune.trial.device import gpu_memory_metrics, resolve_device, start_gpu_memory_peak
from smcl_tune.trial.epoch import train_one_epoch
from smcl_tune.trial.evaluation import validation_metrics
from smcl_tune.trial.gallery_capture import GalleryCapture
from smcl_tune.trial.lr_schedule import epoch_learning_rate
from smcl_tune.trial.output_files import write_gallery, write_trial_files
from smcl_tune.trial.planning import class_weights, epoch_plan
from smcl_tune.trial.result import trial_result
from smcl_tune.trial.selection import Selection

log = logging.getLogger(__name__)

Report = Callable[[dict[str, Any], Path | None], None]
EpochCallback = Callable[[int, dict[str, float], nn.Module], None]


def train_epoch(config: TrialConfig, parts: TrialComponents, epoch: int, gallery: GalleryCapture) -> dict[str, float]:
    """Epoch `epoch` of the trial: its plan, criterion and learning rates, then train_one_epoch."""
    plan = epoch_plan(config, epoch, parts.samplers, parts.generators.steps)
    criterion = StepLoss(
        parts.settings, parts.generators.steps, class_weights(config.method, epoch, parts.counts), parts.counts
    )
    return train_one_epoch(
        parts.step_network,
        criterion,
        parts.optimizer,
        parts.batches.epoch(plan),
        epoch_learning_rate(config.training, epoch, len(plan)),
        parts.device,
        gallery.hook(epoch, parts.step_network, parts.generators.steps),
        parts.graphs,
    )


def restore(parts: TrialComponents, checkpoint: TrialCheckpoint) -> None:
    """The network, optimizer and generators as the checkpoint saved them."""
    parts.network.load_state_dict(checkpoint.network)
    parts.optimizer.load_state_dict(checkpoint.optimizer)
    checkpoint.restore_generators(parts.generators)


def run_trial(
    config: TrialConfig | dict[str, Any],
    report: Report | None = None,
    checkpoint_dir: str | Path | None = None,
    resume_from: str | Path | None = None,
    data: TrialData | None = None,
    on_epoch: EpochCallback | None = None,
) -> TrialResult:
    """Train and evaluate one SMCL (or baseline) model.

    config: a TrialConfig, or a mapping of data / model / method / training sections.
    report: called once per epoch with its metrics and its checkpoint folder (None without
    `checkpoint_dir`); the last report carries the final scalars, and its folder the result file.
    checkpoint_dir: where the checkpoint (and at the end the result file, CSV and PNGs) is written.
    resume_from: a checkpoint folder (or file) to continue from; one that is not there is refused
    (ConfigError), one of another configuration or version is set aside with a warning.
    data: prebuilt data (benchmarks share it between trials); built from config.data if None.
    on_epoch: called after each epoch's validation with the epoch's number (0-based), its metrics
    (those of its report) and the trial's network, holding that epoch's weights (to read, not change).
    """
    if not isinstance(config, TrialConfig):
        config = trial_config_from_dict(config)
    checkpoint_dir = None if checkpoint_dir is None else Path(checkpoint_dir)  # a str, as resume_from takes
    if resume_from is not None and not Path(resume_from).exists():  # a typo: not a checkpoint lost on the way
        raise ConfigError(f"resume_from: {resume_from}: no such checkpoint file or folder")
    training = config.training
    if training.num_threads is not None:
        torch.set_num_threads(training.num_threads)
    device = resolve_device(training.device)
    data = (data or build_trial_data(config.data)).to(device)
    parts = TrialComponents.build(config, data, device)
    start_gpu_memory_peak(device)
    epoch, selection, history = 0, Selection(), []
    gallery = GalleryCapture(parts.settings, data.mean, data.std, None)
    checkpoint = None if resume_from is None else resumable_checkpoint(Path(resume_from), config)
    if checkpoint is not None:
        restore(parts, checkpoint)
        epoch, selection, history, gallery.gallery = (
            checkpoint.epoch,
            checkpoint.selection,
            checkpoint.history,
            checkpoint.gallery,
        )
        log.info("resumed at epoch %d", epoch)

    def save(directory: Path | None) -> Path | None:
        """The checkpoint after `epoch` epochs in `directory`, with the gallery's picture once its epoch has ended."""
        if directory is None:
            return None
        state = TrialCheckpoint.of(config, epoch, parts, selection, history, gallery.gallery)
        state.save(directory)
        write_gallery(directory, gallery.gallery, epoch, data.class_names, config.method.mask_source)
        return directory

    status, reason = TrialState.COMPLETED, None
    last_metrics: dict[str, Any] = {}
    while epoch < training.epochs:
        metrics = train_epoch(config, parts, epoch, gallery)
        if not math.isfinite(metrics["loss"]):
            status, reason = TrialState.FAILED, f"non-finite loss ({metrics['loss']}) in epoch {epoch}"
            log.info("trial stopped: %s", reason)  # its result says it; a study prints it once
            break
        metrics.update(gpu_memory_metrics(device), epoch=epoch)
        if len(data.val) > 0:  # without a validation split the last epoch is the result
            metrics.update(validation_metrics(parts.network, data))
            selection.consider(epoch, metrics["val_balanced_accuracy"], parts.network.state_dict)
        history.append(metrics)
        epoch += 1
        if on_epoch is not None:
            on_epoch(epoch - 1, metrics, parts.network)
        log.info(
            "epoch %d: loss %.4f, val balanced accuracy %.4f",
            epoch - 1,
            metrics["loss"],
            metrics.get("val_balanced_accuracy", math.nan),
        )
        if epoch == training.epochs:
            # The last epoch's report is the trial's last: a scheduler may stop the trial as soon
            # as it has seen `epochs` reports.
            last_metrics = metrics
            break
        folder = save(checkpoint_dir)
        if report is not None:
            report(metrics, folder)
    # The final report: after the last epoch, or of a trial that failed or resumed after its last epoch.
    result = trial_result(parts.network, data, selection, history, status, reason)
    folder = save(checkpoint_dir)
    if folder is not None:
        write_trial_files(result, folder)
    if report is not None:
        report({**({"epoch": epoch - 1} if epoch else {}), **last_metrics, **result.final_metrics()}, folder)
    return result
