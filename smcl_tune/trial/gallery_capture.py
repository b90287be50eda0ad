"""What SMCL's masks look like on the user's data: the gallery of masked pairs a trial captures.

Captured from the first masking epoch (the pairs of its first masking steps, exactly as the step
composes them) by an epoch hook, `capture_gallery`, and kept in the trial's checkpoint;
`figures/mask_gallery.py` holds the record and draws it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import torch

from smcl_tune.data.batches import Batch
from smcl_tune.figures.mask_gallery import GALLERY_PAIRS, MaskGallery
from smcl_tune.method.step import mask_batch
from smcl_tune.results import GALLERY_FILE as GALLERY_FILE  # imported from here by train and the callback
from smcl_tune.trial.device import autocast

if TYPE_CHECKING:
    from smcl_tune.trial.run import Trial

BatchHook = Callable[[Batch], None]


def to_pixels(images: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """Normalised float [N, 3, H, W] back to uint8 pixels."""
    pixels = images.detach().float().cpu() * std.view(1, -1, 1, 1).cpu() + mean.view(1, -1, 1, 1).cpu()
    return (pixels.clamp(0, 1) * 255).round().to(torch.uint8)


def capture(
    epoch: int,
    head_images: torch.Tensor,
    head_labels: torch.Tensor,
    minor_images: torch.Tensor,
    minor_labels: torch.Tensor,
    parts,
    mean: torch.Tensor,
    std: torch.Tensor,
    compose: str,
    limit: int = GALLERY_PAIRS,
) -> MaskGallery:
    """The first `limit` pairs of one masking step; `parts` is the step's MaskedBatch."""
    n = min(limit, len(head_labels))
    return MaskGallery(
        epoch=epoch,
        head=to_pixels(head_images[:n], mean, std),
        minor=to_pixels(minor_images[:n], mean, std),
        saliency=parts.saliency[:n].detach().float().cpu(),
        mask=parts.mask[:n, 0].detach().float().cpu(),
        composite=to_pixels(parts.composite[:n], mean, std),
        head_labels=head_labels[:n].detach().cpu(),
        minor_labels=minor_labels[:n].detach().cpu(),
        targets=parts.targets[:n].detach().float().cpu(),
        compose=compose,
    )


MASKING_METHODS = ("smcl", "mask_only")


def capture_gallery(trial: Trial) -> BatchHook | None:
    """An epoch hook: called as an epoch starts, it returns what to call with each of the epoch's
    masking batches before its step (None in an epoch that adds nothing to the gallery). The
    gallery holds the pairs of the first masking epoch, up to GALLERY_PAIRS."""
    if trial.settings.method not in MASKING_METHODS:
        return None
    if trial.gallery is not None and trial.gallery.epoch != trial.epoch:
        return None

    def add(batch: Batch) -> None:
        if trial.gallery is None or len(trial.gallery) < GALLERY_PAIRS:
            _add_pairs(trial, batch)

    return add


def _add_pairs(trial: Trial, batch: Batch) -> None:
    """The step's own pairs, masked as the step is about to mask them (a copy of its generator)."""
    generator = torch.Generator()
    generator.set_state(trial.step_generator.get_state())
    settings = trial.settings
    with autocast(trial.device):
        parts = mask_batch(
            settings,
            trial.step_network,
            *batch[:4],
            generator,
            head_content=batch.head_content,
            minor_content=batch.minor_content,
        )
    pairs = capture(trial.epoch, *batch[:4], parts, trial.data.mean, trial.data.std, compose=settings.compose)
    trial.gallery = pairs if trial.gallery is None else trial.gallery.extended(pairs)
