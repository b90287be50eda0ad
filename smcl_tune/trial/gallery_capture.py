"""What SMCL's masks look like on the user's data: the gallery of masked pairs a trial captures.

Captured from the first masking epoch (the pairs of its first masking steps, exactly as the step
composes them) by an epoch hook, `GalleryCapture.hook`, and kept in the trial's checkpoint;
`figures/mask_gallery.py` holds the record and draws it.
"""

from __future__ import annotations

import torch
from torch import nn

from smcl_tune.figures.mask_gallery import GALLERY_PAIRS, MaskGallery
from smcl_tune.method.batch import Batch
from smcl_tune.method.step import MaskedBatch, StepSettings, mask_batch
from smcl_tune.trial.device import autocast
from smcl_tune.trial.epoch import BatchHook


def to_pixels(images: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """Normalised float [N, 3, H, W] back to uint8 pixels."""
    pixels = images.detach().float().cpu() * std.view(1, -1, 1, 1).cpu() + mean.view(1, -1, 1, 1).cpu()
    return (pixels.clamp(0, 1) * 255).round().to(torch.uint8)


def capture(
    epoch: int, batch: Batch, parts: MaskedBatch, mean: torch.Tensor, std: torch.Tensor, compose: str
) -> MaskGallery:
    """The first GALLERY_PAIRS pairs of one masking step; `parts` is the step's MaskedBatch."""
    n = min(GALLERY_PAIRS, len(batch.head_labels))
    return MaskGallery(
        epoch=epoch,
        head=to_pixels(batch.head_images[:n], mean, std),
        minor=to_pixels(batch.minor_images[:n], mean, std),
        saliency=parts.saliency[:n].detach().float().cpu(),
        mask=parts.mask[:n, 0].detach().float().cpu(),
        composite=to_pixels(parts.composite[:n], mean, std),
        head_labels=batch.head_labels[:n].detach().cpu(),
        minor_labels=batch.minor_labels[:n].detach().cpu(),
        targets=parts.targets[:n].detach().float().cpu(),
        compose=compose,
    )


MASKING_METHODS = ("smcl", "mask_only")


class GalleryCapture:
    """A trial's mask gallery (the pairs of its first masking epoch, up to GALLERY_PAIRS), as its
    steps compose them; `gallery` is what a checkpoint keeps."""

    def __init__(self, settings: StepSettings, mean: torch.Tensor, std: torch.Tensor, gallery: MaskGallery | None):
        self.settings = settings
        self.mean, self.std = mean, std
        self.gallery = gallery

    def hook(self, epoch: int, network: nn.Module, step_generator: torch.Generator) -> BatchHook | None:
        """What to call with each of epoch `epoch`'s masking batches before its step; None in an epoch
        that adds nothing to the gallery. `network` and `step_generator` are the steps' own."""
        if self.settings.name not in MASKING_METHODS:
            return None
        if self.gallery is not None and self.gallery.epoch != epoch:
            return None

        def add(batch: Batch) -> None:
            if self.gallery is None or len(self.gallery) < GALLERY_PAIRS:
                self._add_pairs(epoch, network, step_generator, batch)

        return add

    def _add_pairs(self, epoch: int, network: nn.Module, step_generator: torch.Generator, batch: Batch) -> None:
        """The step's own pairs, masked as the step is about to mask them (a copy of its generator)."""
        generator = torch.Generator()
        generator.set_state(step_generator.get_state())
        with autocast(self.mean.device):
            parts = mask_batch(self.settings, network, batch, generator)
        pairs = capture(epoch, batch, parts, self.mean, self.std, compose=self.settings.method.compose)
        self.gallery = pairs if self.gallery is None else self.gallery.extended(pairs)
