"""One trial: build data and model, train epoch by epoch, select on validation, evaluate on test.

In the shape of torchvision's classification reference: `train_one_epoch(...)` and
`evaluate(...)` are the stages, `run_trial(config)` wires them. It runs without Ray.
`report(metrics, checkpoint)` is called once per epoch with that epoch's scalar metrics and the
folder of its checkpoint; the trial's last report also carries its final scalars, and its
checkpoint folder the result file (`results.RESULT_FILE`) with the trial's CSV and PNGs beside it.
"""

from __future__ import annotations

import copy
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import torch
from torch import nn

from smcl_tune.config import TrialConfig
from smcl_tune.data.batches import ChunkEdit, Plan, TrainingBatches, evaluation_chunks
from smcl_tune.data.samplers import InstanceSampler, MinorClassSampler
from smcl_tune.data.splits import Split, StreamSplit, TrialData, build_trial_data
from smcl_tune.figures.mask_gallery import MaskGallery
from smcl_tune.method.background import background_box_sizes, background_only
from smcl_tune.method.losses import drw_class_weights
from smcl_tune.method.step import StepOutput, StepSettings, step_loss
from smcl_tune.metrics import SHOT_GROUPS, accuracy_summary, confusion_matrix, head_share, per_class_accuracy
from smcl_tune.models import build_network
from smcl_tune.results import TrialResult, TrialState
from smcl_tune.trial.checkpoint import restore, resumable_state, save_checkpoint
from smcl_tune.trial.device import (
    autocast,
    evaluation_batch_size,
    gpu_memory_metrics,
    resolve_device,
    training_network,
)
from smcl_tune.trial.gallery_capture import BatchHook, capture_gallery
from smcl_tune.trial.lr_schedule import learning_rate_factor
from smcl_tune.trial.output_files import write_gallery, write_trial_files

log = logging.getLogger(__name__)

Report = Callable[[dict[str, Any], Path | None], None]
FULL_MASK_AREA = 0.9  # a mask above this covers (nearly) the whole image: the background is gone too


@torch.no_grad()
def evaluate(
    network: nn.Module, split: Split, data: TrialData, batch_size: int | None = None, edit: ChunkEdit | None = None
) -> torch.Tensor:
    """Confusion matrix of `network` on `split` (no augmentation), [true, predicted]; `edit`
    changes each chunk of uint8 images first (the background-only test images). `batch_size`:
    images per chunk, by default the device's `evaluation_batch_size`."""
    network.eval()
    device = data.mean.device
    batch_size = batch_size or evaluation_batch_size(device)
    predictions = []
    for images in evaluation_chunks(split, data.mean, data.std, device, batch_size, edit):
        with autocast(device):
            logits, _ = network(images)
        predictions.append(logits.argmax(dim=1))
    network.train()
    return confusion_matrix(torch.cat(predictions), split.labels, data.num_classes)


def background_edit(data: TrialData) -> ChunkEdit:
    """Turns chunks of the test split into their background-only images (method/background.py):
    the known objects erased on the synthetic source, the salient boxes elsewhere."""
    sizes = background_box_sizes(len(data.test))

    def edit(images: torch.Tensor, positions: slice) -> torch.Tensor:
        if data.test_object_masks is not None:
            return background_only(images, object_masks=data.test_object_masks[positions])
        return background_only(images, sizes[positions])

    return edit


def background_head_share(network: nn.Module, data: TrialData, edit: ChunkEdit | None = None) -> float:
    """The share of the background-only test images that `network` puts in a many-shot class;
    `edit`: a `background_edit(data)` made once for several networks."""
    edit = edit or background_edit(data)
    return head_share(evaluate(network, data.test, data, edit=edit), data.groups["many"])


@dataclass
class Selection:
    """The epoch selected on validation so far: its number, balanced accuracy and weights."""

    epoch: int | None = None
    score: float = -math.inf
    weights: dict[str, torch.Tensor] | None = None


@dataclass
class Trial:
    """What one trial holds while it trains; `checkpoint.trial_state` saves all of its state."""

    config: TrialConfig
    data: TrialData
    device: torch.device
    network: nn.Module
    step_network: nn.Module  # the network the steps call: `network`, compiled when asked for
    optimizer: torch.optim.Optimizer
    batch_generator: torch.Generator
    step_generator: torch.Generator
    batches: TrainingBatches
    instance_sampler: InstanceSampler
    minor_sampler: MinorClassSampler
    settings: StepSettings
    counts: torch.Tensor  # training images per class, float32 on the device
    epoch: int = 0
    selection: Selection = field(default_factory=Selection)
    history: list[dict[str, float]] = field(default_factory=list)
    gallery: MaskGallery | None = None  # pairs of the first masking epoch

    @property
    def validates(self) -> bool:
        """Whether there is a validation split to select an epoch on (data.val_per_class > 0)."""
        return len(self.data.val) > 0


def build_trial(config: TrialConfig, data: TrialData, device: torch.device) -> Trial:
    """A new trial at epoch 0: its network, optimizer and samplers, seeded from training.seed."""
    training = config.training
    seed = training.seed
    torch.manual_seed(seed)
    network = build_network(
        config.model.architecture, data.num_classes, config.model.projection_dim, config.classifier
    ).to(device)
    if device.type == "cuda":
        network = network.to(memory_format=torch.channels_last)
        torch.cuda.reset_peak_memory_stats(device)
    optimizer = torch.optim.SGD(
        network.parameters(),
        lr=training.lr,
        momentum=training.momentum,
        weight_decay=training.weight_decay,
        nesterov=training.nesterov,
    )
    # Indices are drawn where the images are: on the device, or on the host for a stream split.
    sampling_device = torch.device("cpu") if isinstance(data.train, StreamSplit) else device
    batch_generator = torch.Generator(device=sampling_device).manual_seed(seed + 1)
    return Trial(
        config=config,
        data=data,
        device=device,
        network=network,
        step_network=training_network(network, training, device),
        optimizer=optimizer,
        batch_generator=batch_generator,
        step_generator=torch.Generator().manual_seed(seed + 2),
        batches=TrainingBatches(data.train, data.mean, data.std, training.augment, batch_generator, device),
        instance_sampler=InstanceSampler(len(data.train), training.batch_size, batch_generator),
        minor_sampler=MinorClassSampler(
            data.train.labels, data.train_counts, config.method.sampler_beta, batch_generator
        ),
        settings=StepSettings.from_config(config.method, data.num_classes),
        counts=torch.as_tensor(data.train_counts, dtype=torch.float32, device=device),
    )


def epoch_plan(trial: Trial) -> Plan:
    """This epoch's head batches and, for the steps that mask, their minor-class batches."""
    method = trial.config.method
    heads = trial.instance_sampler.epoch()
    if trial.config.training.max_steps_per_epoch is not None:
        heads = heads[: trial.config.training.max_steps_per_epoch]
    if method.name == "ce" or not (method.mask_start_epoch <= trial.epoch < trial.config.mask_end_epoch):
        return [(head, None) for head in heads]
    masking = (torch.rand(len(heads), generator=trial.step_generator) < method.mask_probability).tolist()
    return [(head, trial.minor_sampler.sample(len(head)) if masks else None) for head, masks in zip(heads, masking)]


def class_weights(trial: Trial) -> torch.Tensor | None:
    """DRW's per-class loss weights from its start epoch on; None before, and without DRW."""
    method = trial.config.method
    if method.uses_drw and trial.epoch >= method.drw_start_epoch:
        return drw_class_weights(trial.counts, method.drw_beta)
    return None


class EpochSums(NamedTuple):
    """The running sums of one epoch: one step's share (tensors), or the epoch's totals (floats)."""

    loss: Any  # each step's mean loss times its batch size
    classification_loss: Any  # L_MCE, likewise
    contrastive_loss: Any  # L_MSC, likewise
    correct: Any  # head images classified right
    mask_area: Any  # the composed images' masked area fractions, summed
    empty_masks: Any  # masks of area 0
    full_masks: Any  # masks of (nearly) the whole image: area above FULL_MASK_AREA

    @classmethod
    def of_step(cls, output: StepOutput, head_labels: torch.Tensor) -> EpochSums:
        size = len(head_labels)
        areas = output.mask_areas.detach().double()
        return cls(
            output.loss.detach().double() * size,
            output.classification_loss.detach().double() * size,
            output.contrastive_loss.detach().double() * size,
            (output.head_logits.detach().argmax(1) == head_labels).sum().double(),
            areas.sum(),
            (areas == 0).sum().double(),
            (areas > FULL_MASK_AREA).sum().double(),
        )


def train_one_epoch(trial: Trial, on_masking_batch: BatchHook | None = None) -> dict[str, float]:
    """One epoch of SMCL (or baseline) steps; its training metrics. `on_masking_batch` is called
    with each batch that masks, before its step."""
    training = trial.config.training
    trial.network.train()
    plan = epoch_plan(trial)
    weights = class_weights(trial)
    totals = torch.zeros(len(EpochSums._fields), dtype=torch.float64, device=trial.device)
    masked_steps = seen = masks = 0  # counts the host knows without asking the device
    started = time.perf_counter()
    for step, batch in enumerate(trial.batches.epoch(plan)):
        factor = learning_rate_factor(training, trial.epoch, step, len(plan))
        for group in trial.optimizer.param_groups:
            group["lr"] = training.lr * factor
        if batch.minor_images is not None and on_masking_batch is not None:
            on_masking_batch(batch)
        with autocast(trial.device):
            output = step_loss(
                trial.settings,
                trial.step_network,
                *batch[:4],
                trial.step_generator,
                weights,
                trial.counts,
                head_content=batch.head_content,
                minor_content=batch.minor_content,
            )
        trial.optimizer.zero_grad(set_to_none=True)
        output.loss.backward()
        trial.optimizer.step()
        seen += len(batch.head_labels)
        masked_steps += batch.minor_images is not None
        masks += output.mask_areas.numel()
        totals += torch.stack(EpochSums.of_step(output, batch.head_labels))
    sums = EpochSums(*totals.tolist())  # the epoch's only host synchronisation
    elapsed = time.perf_counter() - started
    return {
        "loss": sums.loss / seen,
        "loss_mce": sums.classification_loss / seen,
        "loss_msc": sums.contrastive_loss / seen,
        "train_accuracy": sums.correct / seen,
        "masked_step_fraction": masked_steps / len(plan),
        "masked_area": sums.mask_area / masks if masks else math.nan,
        "masked_empty_fraction": sums.empty_masks / masks if masks else math.nan,
        "masked_full_fraction": sums.full_masks / masks if masks else math.nan,
        "lr": training.lr * learning_rate_factor(training, trial.epoch, len(plan) - 1, len(plan)),
        "epoch_seconds": elapsed,
        "images_per_second": seen / elapsed,
    }


def finish_epoch(trial: Trial, metrics: dict[str, float]) -> None:
    """After an epoch's training: validate, keep the best weights so far, record, move on.
    Without a validation split there is nothing to select on: the last epoch is the result."""
    data = trial.data
    metrics.update(gpu_memory_metrics(trial.device))
    metrics["epoch"] = trial.epoch
    if trial.validates:
        validation = accuracy_summary(evaluate(trial.network, data.val, data), data.groups)
        metrics.update({f"val_{name}": value for name, value in validation.items()})
        selection = trial.selection
        if validation["balanced_accuracy"] > selection.score:
            selection.score = validation["balanced_accuracy"]
            selection.epoch = trial.epoch
            selection.weights = copy.deepcopy(trial.network.state_dict())
    trial.history.append(metrics)
    trial.epoch += 1


def trial_result(trial: Trial, status: str, reason: str | None) -> TrialResult:
    """The trial's result: test metrics of the weights selected on validation, or of the last
    epoch without a validation split (the trial's own network keeps its last weights)."""
    data = trial.data
    validation: dict[str, float] = {}
    test: dict[str, float] = {}
    last_test: dict[str, float] = {}
    per_class: list[float] = []
    confusion: list[list[int]] = []
    best_epoch = trial.selection.epoch if trial.validates else (trial.epoch - 1 if trial.history else None)
    if best_epoch is not None:
        if trial.validates:
            selected = copy.deepcopy(trial.network)
            selected.load_state_dict(trial.selection.weights)
            best = trial.history[best_epoch]
            validation = {key.removeprefix("val_"): value for key, value in best.items() if key.startswith("val_")}
        else:
            selected = trial.network
        matrix = evaluate(selected, data.test, data)
        test = accuracy_summary(matrix, data.groups)
        erase = background_edit(data)
        test["background_head_share"] = background_head_share(selected, data, erase)
        per_class = per_class_accuracy(matrix).tolist()
        confusion = matrix.tolist()
        if best_epoch == trial.epoch - 1:
            last_test = test
        else:
            last_test = accuracy_summary(evaluate(trial.network, data.test, data), data.groups)
            last_test["background_head_share"] = background_head_share(trial.network, data, erase)
    return TrialResult(
        status=status,
        reason=reason,
        epochs_completed=trial.epoch,
        best_epoch=best_epoch,
        validation=validation,
        test=test,
        last_test=last_test,
        test_per_class_accuracy=per_class,
        test_confusion=confusion,
        group_sizes={name: len(data.groups[name]) for name in SHOT_GROUPS},
        train_counts=data.train_counts,
        class_names=data.class_names,
        history=trial.history,
    )


def write_checkpoint(trial: Trial, directory: Path | None) -> Path | None:
    """The trial's checkpoint in `directory`, with the mask gallery's picture once its epoch has ended."""
    if directory is None:
        return None
    save_checkpoint(trial, directory)
    write_gallery(trial, directory)
    return directory


def run_trial(
    config: TrialConfig,
    report: Report | None = None,
    checkpoint_dir: Path | None = None,
    resume_from: Path | None = None,
    data: TrialData | None = None,
    on_epoch: Callable[[Trial, dict[str, float]], None] | None = None,
) -> TrialResult:
    """Train and evaluate one SMCL (or baseline) model.

    report: called once per epoch with its metrics and its checkpoint folder (None without
    `checkpoint_dir`); the last report carries the final scalars, and its folder the result file.
    checkpoint_dir: where the checkpoint (and at the end the result file, CSV and PNGs) is written.
    resume_from: a checkpoint folder (or file) to continue from.
    data: prebuilt data (benchmarks share it between trials); built from config.data if None.
    on_epoch: called with the trial and the epoch's metrics after each epoch's validation.
    """
    training = config.training
    if training.num_threads is not None:
        torch.set_num_threads(training.num_threads)
    device = resolve_device(training.device)
    data = (data or build_trial_data(config.data)).to(device)
    trial = build_trial(config, data, device)
    state = None if resume_from is None else resumable_state(Path(resume_from), config)
    if state is not None:
        restore(trial, state)
        log.info("resumed at epoch %d", trial.epoch)
    status, reason = TrialState.COMPLETED, None
    last_metrics: dict[str, Any] = {}
    while trial.epoch < training.epochs:
        metrics = train_one_epoch(trial, capture_gallery(trial))
        if not math.isfinite(metrics["loss"]):
            status, reason = TrialState.FAILED, f"non-finite loss ({metrics['loss']}) in epoch {trial.epoch}"
            log.warning("trial stopped: %s", reason)
            break
        finish_epoch(trial, metrics)
        if on_epoch is not None:
            on_epoch(trial, metrics)
        log.info(
            "epoch %d: loss %.4f, val balanced accuracy %.4f",
            trial.epoch - 1,
            metrics["loss"],
            metrics.get("val_balanced_accuracy", math.nan),
        )
        if trial.epoch == training.epochs:
            # The last epoch's report is the trial's last: a scheduler may stop the trial as soon
            # as it has seen `epochs` reports.
            last_metrics = metrics
            break
        checkpoint = write_checkpoint(trial, checkpoint_dir)
        if report is not None:
            report(metrics, checkpoint)
    # The final report: after the last epoch, or of a trial that failed or resumed after its last epoch.
    result = trial_result(trial, status, reason)
    checkpoint = write_checkpoint(trial, checkpoint_dir)
    if checkpoint is not None:
        write_trial_files(result, checkpoint)
    if report is not None:
        epoch = {"epoch": trial.epoch - 1} if trial.epoch else {}
        report({**epoch, **last_metrics, **result.final_metrics()}, checkpoint)
    return result
