"""The data path the device batches replaced, kept only to measure against: per-sample PIL
transforms (torchvision's RandomCrop pad 4, RandomHorizontalFlip, ToTensor, Normalize) run in
DataLoader worker processes, one image at a time, then collated and copied to the device.

`LegacyBatches(split, ...).epoch(plan)` yields the same (x_b, y_b, x_m, y_m) as
`smcl_tune.data.batches.TrainingBatches`, so a trial can train on either.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms

from smcl_tune.data.batches import Batch, Plan, plan_positions
from smcl_tune.data.loading import DeviceSplit


class _PerSampleImages(Dataset):
    def __init__(self, split: DeviceSplit, mean: torch.Tensor, std: torch.Tensor, augment: bool) -> None:
        self.images = split.images.cpu().permute(0, 2, 3, 1).contiguous().numpy()  # HWC for PIL
        self.labels = split.labels.cpu()
        size = self.images.shape[1]
        steps = [transforms.RandomCrop(size, padding=4), transforms.RandomHorizontalFlip()] if augment else []
        self.transform = transforms.Compose(
            [*steps, transforms.ToTensor(), transforms.Normalize(mean.cpu().tolist(), std.cpu().tolist())])

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.transform(Image.fromarray(self.images[index])), self.labels[index]


class _PlanSampler:
    """The current epoch's batches (head, then minor indices); set before each epoch."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []

    def __iter__(self):
        return iter(self.batches)

    def __len__(self) -> int:
        return len(self.batches)


class LegacyBatches:
    def __init__(self, split: DeviceSplit, mean: torch.Tensor, std: torch.Tensor, augment: bool, workers: int,
                 seed: int, device: torch.device) -> None:
        self.sampler = _PlanSampler()
        self.device = device
        # Persistent workers, as a tuned per-sample pipeline has: their start-up is paid once.
        self.loader = DataLoader(_PerSampleImages(split, mean, std, augment), batch_sampler=self.sampler,
                                 num_workers=workers, persistent_workers=workers > 0,
                                 pin_memory=device.type == "cuda", generator=torch.Generator().manual_seed(seed))

    def epoch(self, plan: Plan) -> Iterator[Batch]:
        self.sampler.batches = plan_positions(plan)
        for (head, minor), (images, labels) in zip(plan, self.loader):
            images = images.to(self.device, non_blocking=True)
            labels = labels.to(self.device, non_blocking=True)
            size = len(head)
            if minor is None:
                yield images, labels, None, None
            else:
                yield images[:size], labels[:size], images[size:], labels[size:]
