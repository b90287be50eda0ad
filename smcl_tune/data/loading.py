"""Batches on the training device: uint8 images held there, batched augmentation, two samplers."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from smcl_tune.method.sampling import effective_number_probabilities


@dataclass
class DeviceSplit:
    """Images (uint8 [N,3,H,W]) and labels (int64 [N]) held on one device."""

    images: torch.Tensor
    labels: torch.Tensor

    def __len__(self) -> int:
        return len(self.labels)

    def to(self, device: torch.device) -> "DeviceSplit":
        return DeviceSplit(self.images.to(device), self.labels.to(device))


def channel_statistics(images: torch.Tensor, chunk: int = 4096) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean and (sample) std of uint8 images in [0, 1] units, shape [3] each.

    Sums in float64 over `chunk` images at a time, so the memory used stays small next to the
    uint8 images themselves.
    """
    channels = images.shape[1]
    total = torch.zeros(channels, dtype=torch.float64, device=images.device)
    squares = torch.zeros_like(total)
    for start in range(0, images.shape[0], chunk):
        scaled = images[start:start + chunk].double().div_(255.0)
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


def random_crop_flip(images: torch.Tensor, generator: torch.Generator, padding: int = 4) -> torch.Tensor:
    """Random crop after zero padding by `padding` px and horizontal flip with p = 0.5, whole batch at once."""
    batch, channels, height, width = images.shape
    device = images.device
    padded = F.pad(images, (padding, padding, padding, padding))
    # Drawn where the generator lives; a host generator's draws go over without blocking.
    offsets = torch.randint(0, 2 * padding + 1, (2, batch), generator=generator, device=generator.device).to(
        device, non_blocking=True)
    rows = offsets[0].view(batch, 1) + torch.arange(height, device=device)
    cols = offsets[1].view(batch, 1) + torch.arange(width, device=device)
    flip = torch.rand(batch, generator=generator, device=generator.device).to(device, non_blocking=True) < 0.5
    cols = torch.where(flip.view(batch, 1), cols.flip(1), cols)
    batch_index = torch.arange(batch, device=device).view(batch, 1, 1, 1)
    channel_index = torch.arange(channels, device=device).view(1, channels, 1, 1)
    return padded[batch_index, channel_index, rows.view(batch, 1, height, 1), cols.view(batch, 1, 1, width)]


class InstanceSampler:
    """Ordinary shuffling: every training image once per epoch, in batches of `batch_size`."""

    def __init__(self, num_images: int, batch_size: int, generator: torch.Generator) -> None:
        self.num_images = num_images
        self.batch_size = batch_size
        self.generator = generator

    def __len__(self) -> int:
        return -(-self.num_images // self.batch_size)

    def epoch(self) -> list[torch.Tensor]:
        order = torch.randperm(self.num_images, generator=self.generator, device=self.generator.device)
        return list(order.split(self.batch_size))


class MinorClassSampler:
    """Class k with the effective-number probability p_k, then an image of class k uniformly."""

    def __init__(self, labels: torch.Tensor, class_counts: list[int], beta: float, generator: torch.Generator) -> None:
        device = generator.device
        self.generator = generator
        self.probabilities = effective_number_probabilities(class_counts, beta).to(device)
        order = torch.argsort(labels.to(device), stable=True)
        self.members = order
        counts = torch.as_tensor(class_counts, device=device)
        self.starts = torch.cumsum(counts, 0) - counts
        self.counts = counts

    def sample(self, batch_size: int) -> torch.Tensor:
        classes = torch.multinomial(self.probabilities, batch_size, replacement=True, generator=self.generator)
        within = torch.rand(batch_size, generator=self.generator, device=self.generator.device)
        positions = self.starts[classes] + (within * self.counts[classes]).long().clamp(max=self.counts[classes] - 1)
        return self.members[positions]
