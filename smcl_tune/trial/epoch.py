"""One epoch of training steps, in the shape of torchvision's `train_one_epoch`: the network, the
criterion (the step's loss), the optimizer, the epoch's batches and the learning rate per step."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable
from typing import Any, NamedTuple, Protocol

import torch
from torch import nn

from smcl_tune.method.batch import Batch
from smcl_tune.method.step import StepOutput
from smcl_tune.trial.capturable_sgd import CapturableSGD
from smcl_tune.trial.device import autocast

Criterion = Callable[[nn.Module, Batch], StepOutput]
BatchHook = Callable[[Batch], None]
FULL_MASK_AREA = 0.9  # a mask above this covers (nearly) the whole image: the background is gone too


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


class StepShare(NamedTuple):
    """What one step adds to its epoch: its share of the sums (a device tensor in EpochSums' order)
    and the number of images it composed (known to the host from the step's shapes)."""

    sums: torch.Tensor
    composed: int


def training_step(network: nn.Module, criterion: Criterion, optimizer: CapturableSGD, batch: Batch) -> StepShare:
    """One step: the loss, its gradients and the optimizer's update, at the rate the optimizer holds."""
    with autocast(batch.head_images.device):
        output = criterion(network, batch)
    optimizer.zero_grad(set_to_none=True)
    output.loss.backward()
    optimizer.step()
    return StepShare(torch.stack(EpochSums.of_step(output, batch.head_labels)), output.mask_areas.numel())


class StepRunner(Protocol):
    """Runs the steps in a way of its own (trial/graph_step.py), each at the rate given."""

    def step(self, criterion: Criterion, batch: Batch, rate: float) -> StepShare: ...


def train_one_epoch(
    network: nn.Module,
    criterion: Criterion,
    optimizer: CapturableSGD,
    batches: Iterable[Batch],
    learning_rate: Callable[[int], float],
    device: torch.device,
    on_masking_batch: BatchHook | None = None,
    graphs: StepRunner | None = None,
) -> dict[str, float]:
    """One epoch of SMCL (or baseline) steps; its training metrics.

    network: the network the steps call (compiled when asked for); criterion: one step's loss;
    learning_rate: the rate of each step of the epoch, by its index; on_masking_batch: called with
    each batch that masks, before its step; graphs: the trial's step graphs (training.cuda_graph),
    which then run the steps. The step makes no host synchronisation: the epoch reads its sums back
    once, at its end.
    """
    network.train()
    totals = torch.zeros(len(EpochSums._fields), dtype=torch.float64, device=device)
    steps = masked_steps = seen = masks = 0  # counts the host knows without asking the device
    started = time.perf_counter()
    for steps, batch in enumerate(batches, start=1):
        rate = learning_rate(steps - 1)
        if batch.masks and on_masking_batch is not None:
            on_masking_batch(batch)
        if graphs is None:
            for group in optimizer.param_groups:
                group["lr"] = rate
            share = training_step(network, criterion, optimizer, batch)
        else:
            share = graphs.step(criterion, batch, rate)
        seen += len(batch.head_labels)
        masked_steps += batch.masks
        masks += share.composed
        totals += share.sums
    sums = EpochSums(*totals.tolist())  # the epoch's only host synchronisation
    return epoch_metrics(sums, EpochCounts(steps, masked_steps, seen, masks), learning_rate(steps - 1), started)


class EpochCounts(NamedTuple):
    """What the host counts of an epoch without asking the device."""

    steps: int
    masked_steps: int
    seen: int  # head images trained on
    masks: int  # composed images


def epoch_metrics(sums: EpochSums, counts: EpochCounts, last_lr: float, started: float) -> dict[str, float]:
    """An epoch's training metrics from its sums (floats) and counts; `started`: perf_counter at its start."""
    elapsed = time.perf_counter() - started
    seen, masks = counts.seen, counts.masks
    return {
        "loss": sums.loss / seen,
        "loss_mce": sums.classification_loss / seen,
        "loss_msc": sums.contrastive_loss / seen,
        "train_accuracy": sums.correct / seen,
        "masked_step_fraction": counts.masked_steps / counts.steps,
        "masked_area": sums.mask_area / masks if masks else math.nan,
        "masked_empty_fraction": sums.empty_masks / masks if masks else math.nan,
        "masked_full_fraction": sums.full_masks / masks if masks else math.nan,
        "lr": last_lr,
        "epoch_seconds": elapsed,
        "images_per_second": seen / elapsed,
    }
