"""What one trial holds: the long-tailed training subset, validation and test, in memory or streamed.

`build_trial_data(config)` runs the pipeline up to here: read the source's pools, draw the
long-tailed subset and the validation split, then hold each split either as uint8 tensors
(`DeviceSplit`, moved to the trial's device) or as indices decoded batch by batch (`StreamSplit`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import torch

from smcl_tune.config import DataConfig
from smcl_tune.data.augment import channel_statistics
from smcl_tune.data.counts import subset_targets
from smcl_tune.data.longtail import balanced_indices, shot_groups, split_long_tailed
from smcl_tune.data.pool import ImagePool
from smcl_tune.data.source_shape import n_max
from smcl_tune.data.sources import load_source

log = logging.getLogger(__name__)

MEMORY_LOADER_LIMIT_BYTES = 4 * 2**30  # loader "auto": decoded uint8 images up to this stay in memory
STATISTICS_SAMPLE = 10_000  # training images the stream loader decodes for the normalisation statistics


@dataclass
class DeviceSplit:
    """Images (uint8 [N,3,H,W]) and labels (int64 [N]) held on one device."""

    images: torch.Tensor
    labels: torch.Tensor

    def __len__(self) -> int:
        return len(self.labels)

    def to(self, device: torch.device) -> DeviceSplit:
        return DeviceSplit(self.images.to(device), self.labels.to(device))


@dataclass
class StreamSplit:
    """Images `indices` of `pool`, decoded on demand; `labels` (int64 [N]) may live on the device."""

    pool: ImagePool
    indices: torch.Tensor
    labels: torch.Tensor
    workers: int

    def __len__(self) -> int:
        return len(self.labels)

    def to(self, device: torch.device) -> StreamSplit:
        return StreamSplit(self.pool, self.indices, self.labels.to(device), self.workers)


Split = DeviceSplit | StreamSplit


@dataclass
class TrialData:
    """The long-tailed training subset, a balanced validation split and the test set."""

    train: Split
    val: Split
    test: Split
    train_counts: list[int]
    groups: dict[str, list[int]]
    class_names: list[str]
    mean: torch.Tensor
    std: torch.Tensor
    test_object_masks: torch.Tensor | None = None  # bool [N_test, H, W] where the source knows each object

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def to(self, device: torch.device) -> TrialData:
        return TrialData(
            self.train.to(device),
            self.val.to(device),
            self.test.to(device),
            self.train_counts,
            self.groups,
            self.class_names,
            self.mean.to(device),
            self.std.to(device),
            None if self.test_object_masks is None else self.test_object_masks.to(device),
        )


def _split(pool: ImagePool, indices: torch.Tensor, config: DataConfig, streaming: bool) -> Split:
    if streaming:
        return StreamSplit(pool, indices, pool.labels[indices].clone(), config.stream_workers)
    return DeviceSplit(pool.load(indices), pool.labels[indices].clone())


def _uses_stream_loader(config: DataConfig, pool: ImagePool, image_count: int) -> bool:
    """Whether the stream loader is used: as configured, or by the decoded size for "auto"."""
    if config.loader != "auto":
        return config.loader == "stream"
    decoded = image_count * 3 * pool.image_size[0] * pool.image_size[1]
    return decoded > MEMORY_LOADER_LIMIT_BYTES


def _statistics(train: Split, subset_seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    if isinstance(train, DeviceSplit):
        return channel_statistics(train.images)
    generator = torch.Generator().manual_seed(subset_seed + 2)
    sample = train.indices[torch.randperm(len(train.indices), generator=generator)[:STATISTICS_SAMPLE]]
    return channel_statistics(train.pool.load(sample))


def build_trial_data(config: DataConfig) -> TrialData:
    """Load the source, draw the long-tailed subset and the validation split, decode the images."""
    source = load_source(config)
    num_classes = len(source.class_names)
    pool_counts = torch.bincount(source.train.labels, minlength=num_classes).tolist()
    targets = subset_targets(pool_counts, n_max(config, pool_counts), config.subset_imbalance_factor, config.profile)
    held_out = 0 if source.val is not None else config.val_per_class
    split = split_long_tailed(
        source.train.labels, targets, held_out, config.subset_seed, source.class_names, config.subset_protocol
    )
    if source.val is not None:
        val_pool = source.val
        val_indices = balanced_indices(source.val.labels, config.val_per_class, num_classes, config.subset_seed + 1)
    else:
        val_pool, val_indices = source.train, split.val_indices
    image_count = len(split.train_indices) + len(val_indices) + len(source.test)
    streaming = _uses_stream_loader(config, source.train, image_count)
    train = _split(source.train, split.train_indices, config, streaming)
    val = _split(val_pool, val_indices, config, streaming)
    test = _split(source.test, torch.arange(len(source.test.labels)), config, streaming)
    mean, std = _statistics(train, config.subset_seed)
    groups = shot_groups(split.train_counts, config.many_above, config.few_below)
    log.info(
        "long-tailed subset: %d images in %d classes (head %d, tail %d); validation %d; test %d; %s loader",
        len(train),
        num_classes,
        max(split.train_counts),
        min(split.train_counts),
        len(val),
        len(test),
        "stream" if streaming else "memory",
    )
    object_masks = getattr(source.test, "foreground_masks", None)  # the synthetic source's; test is the whole pool
    return TrialData(train, val, test, split.train_counts, groups, source.class_names, mean, std, object_masks)
