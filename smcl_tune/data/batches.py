"""Training batches and evaluation chunks on the trial's device, from either kind of split.

A `DeviceSplit` holds its uint8 images on the device: a batch is an index into them. A
`StreamSplit` (datasets too large for memory, e.g. ImageNet-LT) decodes its images in DataLoader
worker processes; the uint8 batch is copied to the device. In both, the crop, flip and
normalisation run on the device for the whole batch, with the same random draws in the same
order, so both give the same batches for the same generator. (On CUDA a trial draws from a
generator on the GPU with the memory loader and on the host with the stream loader, so there the
two give different, equally distributed, batches.)
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import torch
from torch.utils.data import DataLoader, Dataset

from smcl_tune.data.augment import normalize, random_crop_flip
from smcl_tune.data.splits import DeviceSplit, Split, StreamSplit
from smcl_tune.method.batch import Batch

# The trials' layout on every device, their images' and their networks' (trial/components.py):
# on the CPU 1.2-1.7x faster than NCHW (benchmarks/memory_format.py).
MEMORY_FORMAT = torch.channels_last

Plan = list[tuple[torch.Tensor, torch.Tensor | None]]
"""One epoch: per step the head-batch indices and, on a masking step, the minor-batch indices."""


class _Decoded(Dataset):
    """Positions 0..N-1 of a stream split; `__getitems__` decodes a whole batch in one call."""

    def __init__(self, split: StreamSplit) -> None:
        self.pool = split.pool
        self.indices = split.indices.cpu()
        self.labels = split.labels.cpu()

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, position: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.__getitems__([position])

    def __getitems__(self, positions: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        chosen = torch.as_tensor(positions, dtype=torch.long)
        return self.pool.load(self.indices[chosen]), self.labels[chosen]


def plan_positions(plan: Plan) -> list[list[int]]:
    """Per step, the images one loader batch holds: the head batch, then the minor batch if any."""
    return [torch.cat([head] if minor is None else [head, minor]).tolist() for head, minor in plan]


def _keep_batch(batch: tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    return batch


def _loader(split: StreamSplit, batches: list[list[int]], device: torch.device) -> DataLoader:
    return DataLoader(
        _Decoded(split),
        batch_sampler=batches,
        num_workers=split.workers,
        collate_fn=_keep_batch,
        pin_memory=device.type == "cuda",
        persistent_workers=False,
    )


def _as_float(images: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    images = normalize(images, mean, std)
    return images.contiguous(memory_format=MEMORY_FORMAT)


class TrainingBatches:
    """The batches of an epoch's plan, augmented (crop pad 4, flip) when `augment`, then normalised."""

    def __init__(
        self,
        split: Split,
        mean: torch.Tensor,
        std: torch.Tensor,
        augment: bool,
        generator: torch.Generator,
        device: torch.device,
    ) -> None:
        self.split = split
        self.mean, self.std = mean, std
        self.augment = augment
        self.generator = generator
        self.device = device

    def _finish(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        content = None
        if self.augment:
            images, content = random_crop_flip(images, self.generator)
        return _as_float(images, self.mean, self.std), content

    def epoch(self, plan: Plan) -> Iterator[Batch]:
        if isinstance(self.split, DeviceSplit):
            for head, minor in plan:
                x_b, head_content = self._finish(self.split.images[head])
                y_b = self.split.labels[head]
                if minor is None:
                    yield Batch(x_b, y_b, None, None, head_content)
                else:
                    x_m, minor_content = self._finish(self.split.images[minor])
                    yield Batch(x_b, y_b, x_m, self.split.labels[minor], head_content, minor_content)
            return
        for (head, minor), (images, labels) in zip(plan, _loader(self.split, plan_positions(plan), self.device)):
            images = images.to(self.device, non_blocking=True)
            labels = labels.to(self.device, non_blocking=True)
            size = len(head)
            x_b, head_content = self._finish(images[:size])
            if minor is None:
                yield Batch(x_b, labels, None, None, head_content)
            else:
                x_m, minor_content = self._finish(images[size:])
                yield Batch(x_b, labels[:size], x_m, labels[size:], head_content, minor_content)


ChunkEdit = Callable[[torch.Tensor, slice], torch.Tensor]
"""Changes a chunk of uint8 images before normalisation, given their positions in the split."""


def evaluation_chunks(
    split: Split,
    mean: torch.Tensor,
    std: torch.Tensor,
    device: torch.device,
    batch_size: int,
    edit: ChunkEdit | None = None,
) -> Iterator[torch.Tensor]:
    """The split's images in order, normalised, `batch_size` at a time (no augmentation); each
    chunk of uint8 images goes through `edit` first, when given."""
    edit = edit or _keep_chunk
    if isinstance(split, DeviceSplit):
        for start in range(0, len(split), batch_size):
            positions = slice(start, min(start + batch_size, len(split)))
            yield _as_float(edit(split.images[positions], positions), mean, std)
        return
    chunks = [list(range(start, min(start + batch_size, len(split)))) for start in range(0, len(split), batch_size)]
    for chunk, (images, _) in zip(chunks, _loader(split, chunks, device)):
        positions = slice(chunk[0], chunk[-1] + 1)
        yield _as_float(edit(images.to(device, non_blocking=True), positions), mean, std)


def _keep_chunk(images: torch.Tensor, _positions: slice) -> torch.Tensor:
    return images
