"""Reading a dataset into pools: the synthetic benchmark, CIFAR, image folders, file lists.

`describe_source` looks at paths and file names only (validate and run call it before anything
starts); `load_source` lists the images and, for CIFAR, reads the arrays into memory. Images of
folders and lists decode later, by `ImagePool.load`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from smcl_tune.config import DataConfig
from smcl_tune.data.pool import SourceData
from smcl_tune.data.sources.cifar import CIFAR_CLASSES, CIFAR_POOL_PER_CLASS, check_cifar, cifar_source
from smcl_tune.data.sources.file_list import file_list_source
from smcl_tune.data.sources.image_folder import image_folder_source
from smcl_tune.data.sources.synthetic import SYNTHETIC_POOL_PER_CLASS, class_name, synthetic_source

DEFAULT_N_MAX = {"cifar10": 5000, "cifar100": 500, "synthetic": SYNTHETIC_POOL_PER_CLASS}


def load_source(config: DataConfig) -> SourceData:
    """The train, test and (where the source has one) validation pools named by `config`."""
    if config.source == "synthetic":
        pool_per_class = config.n_max or SYNTHETIC_POOL_PER_CLASS
        return synthetic_source(config.num_classes, config.synthetic, pool_per_class, seed=config.subset_seed)
    root = Path(config.root or "")
    if config.source in ("cifar10", "cifar100"):
        return cifar_source(config.source, root, config.download, config.image_size)
    if config.source == "image_folder":
        return image_folder_source(root, config.image_size)
    return file_list_source(root, config.image_size)


@dataclass(frozen=True)
class SourceShape:
    """What a source holds, known without decoding an image."""

    pool_counts: list[int]  # training pool images per class
    class_names: list[str]
    has_val: bool  # a validation pool of its own (else validation is drawn from the training pool)
    note: str | None  # for the user, e.g. a download still to come


def describe_source(config: DataConfig) -> SourceShape:
    """Check that the source's files are where the config says, without downloading or decoding.

    Raises DataSourceError naming the path.
    """
    if config.source == "synthetic":
        per_class = config.n_max or SYNTHETIC_POOL_PER_CLASS
        return SourceShape(
            [per_class] * config.num_classes, [class_name(c) for c in range(config.num_classes)], True, None
        )
    if config.source in ("cifar10", "cifar100"):
        note = check_cifar(config.source, Path(config.root or ""), config.download)
        classes = CIFAR_CLASSES[config.source]
        return SourceShape(
            [CIFAR_POOL_PER_CLASS[config.source]] * classes, [f"class_{c}" for c in range(classes)], False, note
        )
    source = load_source(config)  # folders and lists: listing the files is the check
    counts = torch.bincount(source.train.labels, minlength=len(source.class_names)).tolist()
    return SourceShape(counts, source.class_names, source.val is not None, None)
