"""Separable Gaussian blur of image batches, with reflect padding."""

import math

import torch
import torch.nn.functional as F
from torch import Tensor


def gaussian_blur(images: Tensor, sigma: float) -> Tensor:
    """Blur each channel of each image with a Gaussian of standard deviation ``sigma`` pixels.

    Args:
        images: float [B, C, H, W].
        sigma: > 0, pixels. The kernel reaches 3 sigma; near a border the image is reflected,
            and where an image is smaller than the kernel the kernel is trimmed and renormalised.

    Returns:
        [B, C, H, W], same dtype and device.
    """
    batch, channels, height, width = images.shape
    maps = images.reshape(batch * channels, 1, height, width)
    radius = math.ceil(3.0 * sigma)
    offsets = torch.arange(-radius, radius + 1, dtype=maps.dtype, device=maps.device)
    kernel = torch.exp(-0.5 * (offsets / sigma) ** 2)
    kernel = kernel / kernel.sum()
    pad_h = min(radius, height - 1)
    pad_w = min(radius, width - 1)
    # Reflect padding cannot exceed size - 1; trim the kernel to the padding actually possible.
    kernel_h = kernel[radius - pad_h : radius + pad_h + 1]
    kernel_w = kernel[radius - pad_w : radius + pad_w + 1]
    kernel_h = kernel_h / kernel_h.sum()
    kernel_w = kernel_w / kernel_w.sum()
    if pad_w > 0:
        maps = F.pad(maps, (pad_w, pad_w, 0, 0), mode="reflect")
    maps = F.conv2d(maps, kernel_w.view(1, 1, 1, -1))
    if pad_h > 0:
        maps = F.pad(maps, (0, 0, pad_h, pad_h), mode="reflect")
    maps = F.conv2d(maps, kernel_h.view(1, 1, -1, 1))
    return maps.reshape(batch, channels, height, width)
