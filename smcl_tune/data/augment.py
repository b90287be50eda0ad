"""Augmentation and normalisation for whole batches of uint8 images, on the device that holds them."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def channel_statistics(images: torch.Tensor, chunk: int = 4096) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean and (sample) std of uint8 images in [0, 1] units, shape [3] each.

    Sums in float64 over `chunk` images at a time, so the memory used stays small next to the
    uint8 images themselves.
    """
    channels = images.shape[1]
    total = torch.zeros(channels, dtype=torch.float64, device=images.device)
    squares = torch.zeros_like(total)
    for start in range(0, images.shape[0], chunk):
        scaled = images[start : start + chunk].double().div_(255.0)
        total += scaled.sum(dim=(0, 2, 3))
        squares += scaled.square_().sum(dim=(0, 2, 3))
    count = images.shape[0] * images.shape[2] * images.shape[3]
    mean = total / count
    variance = (squares - count * mean.square()) / (count - 1)
    return mean.float(), variance.clamp(min=0).sqrt().float().clamp(min=1e-3)


def normalize(images: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """uint8 [B,3,H,W] -> float32 with per-channel (x/255 - mean) / std."""
    scaled = images.float().div_(255.0)
    return (scaled - mean.view(1, -1, 1, 1)) / std.view(1, -1, 1, 1)


def random_crop_flip(
    images: torch.Tensor, generator: torch.Generator, padding: int = 4
) -> tuple[torch.Tensor, torch.Tensor]:
    """Random crop after zero padding by `padding` px and horizontal flip with p = 0.5, whole batch at once.

    Returns the images and their content mask, bool [B, H, W]: True where a pixel is the image's
    own, False where the zero padding put it (saliency must ignore those, SMCL.md step 1).
    """
    batch, channels, height, width = images.shape
    device = images.device
    padded = F.pad(images, (padding, padding, padding, padding))
    # Drawn where the generator lives; a host generator's draws go over without blocking.
    offsets = torch.randint(0, 2 * padding + 1, (2, batch), generator=generator, device=generator.device).to(
        device, non_blocking=True
    )
    rows = offsets[0].view(batch, 1) + torch.arange(height, device=device)
    cols = offsets[1].view(batch, 1) + torch.arange(width, device=device)
    flip = torch.rand(batch, generator=generator, device=generator.device).to(device, non_blocking=True) < 0.5
    cols = torch.where(flip.view(batch, 1), cols.flip(1), cols)
    batch_index = torch.arange(batch, device=device).view(batch, 1, 1, 1)
    channel_index = torch.arange(channels, device=device).view(1, channels, 1, 1)
    cropped = padded[batch_index, channel_index, rows.view(batch, 1, height, 1), cols.view(batch, 1, 1, width)]
    own_rows = (rows >= padding) & (rows < padding + height)
    own_cols = (cols >= padding) & (cols < padding + width)
    return cropped, own_rows[:, :, None] & own_cols[:, None, :]
