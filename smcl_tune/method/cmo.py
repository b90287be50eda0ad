"""CMO (Park et al. CVPR 2022): a CutMix box of a minor-class image pasted onto a head image."""

from __future__ import annotations

from dataclasses import dataclass
from typing import SupportsFloat

import torch
from torch import Tensor

from smcl_tune.method.draws import on_device
from smcl_tune.method.masking import centred_boxes, compose, sample_beta
from smcl_tune.method.one_hot import one_hot


def random_box_mask(lam: Tensor, height: int, width: int, generator: torch.Generator) -> Tensor:
    """CutMix boxes: sides round(W * sqrt(1 - lam)) by round(H * sqrt(1 - lam)), centred on a
    uniformly random pixel and clipped to the image (so near a border the area is below 1 - lam).

    Args:
        lam: [B] values in [0, 1] (on the generator's device).
        height, width: image size, pixels.
        generator: source of the centres.

    Returns:
        float32 [B, 1, H, W] with values 0 or 1, on the generator's device.
    """
    batch = lam.shape[0]
    device = generator.device
    centre_y = torch.randint(0, height, (batch,), generator=generator, device=device)
    centre_x = torch.randint(0, width, (batch,), generator=generator, device=device)
    return centred_boxes(centre_y, centre_x, lam, height, width)


@dataclass
class CmoBatch:
    mask: Tensor  # [B, 1, H, W], 1 where the minor image shows
    composite: Tensor  # x_tilde [B, C, H, W]
    targets: Tensor  # [B, num_classes]: (1 - a) onehot(y_b) + a onehot(y_m)
    area: Tensor  # a [B]: the pasted fraction of each image


def cmo_batch(
    head_images: Tensor,
    head_labels: Tensor,
    minor_images: Tensor,
    minor_labels: Tensor,
    num_classes: int,
    alpha: SupportsFloat,
    generator: torch.Generator,
) -> CmoBatch:
    """Each head image x_b with a box of its minor image x_m pasted in, labelled by the pasted area.

    lambda ~ Beta(alpha, alpha) (CMO: alpha = 1), then the box and its place come from
    `random_box_mask`; the label uses the box's area after clipping, not 1 - lambda.
    """
    batch, _, height, width = head_images.shape
    mask = on_device(
        lambda: random_box_mask(sample_beta(alpha, batch, generator).to(generator.device), height, width, generator),
        head_images.device,
    )
    area = mask.flatten(1).mean(dim=1)
    head = one_hot(head_labels.long(), num_classes)
    minor = one_hot(minor_labels.long().to(head.device), num_classes)
    weight = area.to(head.device)[:, None]
    targets = (1 - weight) * head + weight * minor
    return CmoBatch(mask, compose(head_images, minor_images, mask), targets, area)
