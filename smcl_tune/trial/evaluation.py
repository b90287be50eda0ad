"""Evaluating a trial's network: the confusion matrix of a split, validation's accuracy summary, and
the background head share on the test images with their salient box (or object) erased."""

from __future__ import annotations

import torch
from torch import nn

from smcl_tune.data.batches import ChunkEdit, evaluation_chunks
from smcl_tune.data.splits import Split, TrialData
from smcl_tune.method.background import background_box_sizes, background_only
from smcl_tune.metrics import accuracy_summary, confusion_matrix, head_share
from smcl_tune.trial.device import autocast, evaluation_batch_size


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


def validation_metrics(network: nn.Module, data: TrialData) -> dict[str, float]:
    """The network's accuracy summary on the validation split, as `val_<name>` metrics."""
    summary = accuracy_summary(evaluate(network, data.val, data), data.groups)
    return {f"val_{name}": value for name, value in summary.items()}


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
