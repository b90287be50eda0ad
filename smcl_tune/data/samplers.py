"""The two samplers of a training epoch: instance shuffling, and minor-class biased draws."""

from __future__ import annotations

import torch

from smcl_tune.method.sampling import effective_number_probabilities


class InstanceSampler:
    """Ordinary shuffling: every training image once per epoch, in batches of `batch_size`.

    A last batch of a single image joins the one before it: BatchNorm cannot normalise one image
    whose features are 1x1 (ResNet-18/50 at 32 px).
    """

    def __init__(self, num_images: int, batch_size: int, generator: torch.Generator) -> None:
        self.num_images = num_images
        self.batch_size = batch_size
        self.generator = generator

    def __len__(self) -> int:
        batches = -(-self.num_images // self.batch_size)
        return batches - 1 if batches > 1 and self.num_images % self.batch_size == 1 else batches

    def epoch(self) -> list[torch.Tensor]:
        order = torch.randperm(self.num_images, generator=self.generator, device=self.generator.device)
        batches = list(order.split(self.batch_size))
        if len(batches) > 1 and len(batches[-1]) == 1:
            batches[-2:] = [torch.cat(batches[-2:])]
        return batches


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
