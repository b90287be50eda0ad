"""Background-only test images: what SMCL claims a long-tailed model reads as a head class.

Each test image loses its salient box (spectral residual saliency, lambda ~ Beta(1, 1) from a fixed
seed, so every trial of a study erases the same boxes), or, where the source knows it, its object;
the hole takes the image's mean colour. The share of these images that a model puts in a
many-shot class is the background head share (SMCL.md, "What the mechanism predicts").
"""

import torch
from torch import Tensor

from smcl_tune.method.masking import box_mask, fill_masked, sample_beta
from smcl_tune.method.saliency import spectral_residual_saliency

BACKGROUND_SEED = 20230604  # fixed: the same boxes for every trial, of every study
BACKGROUND_BOX_ALPHA = 1.0


def background_box_sizes(count: int) -> Tensor:
    """lambda of each test image's box, float32 [count] on the CPU: the same for every trial."""
    return sample_beta(BACKGROUND_BOX_ALPHA, count, torch.Generator().manual_seed(BACKGROUND_SEED))


def background_only(images: Tensor, lam: Tensor | None = None, object_masks: Tensor | None = None) -> Tensor:
    """The images with their salient box (or their known object) replaced by their mean colour.

    Args:
        images: uint8 [B, 3, H, W], as the dataset stores them (no crop, no normalisation, so
            that the boxes do not depend on a trial's normalisation statistics).
        lam: [B], the kept fraction of each unclipped box (`background_box_sizes`); used when
            `object_masks` is None.
        object_masks: bool [B, H, W], True on each image's object (the synthetic source knows it).

    Returns:
        uint8 [B, 3, H, W].
    """
    pixels = images.float()
    if object_masks is not None:
        mask = object_masks.to(pixels.device).float().unsqueeze(1)
    else:
        mask = box_mask(spectral_residual_saliency(pixels), lam.to(pixels.device))
    return fill_masked(pixels, mask, "mean").round().clamp(0, 255).to(torch.uint8)
