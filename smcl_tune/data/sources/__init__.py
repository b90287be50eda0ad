"""Reading a dataset into pools: the synthetic benchmark, CIFAR, image folders, file lists.

`check_source` looks at paths and file names only (validate and run call it before anything
starts); `load_source` lists the images and, for CIFAR, reads the arrays into memory. Images of
folders and lists decode later, by `ImagePool.load`.
"""

from __future__ import annotations

from pathlib import Path

from smcl_tune.config import DataConfig
from smcl_tune.data.pool import SourceData
from smcl_tune.data.sources.cifar import check_cifar, cifar_source
from smcl_tune.data.sources.file_list import file_list_source
from smcl_tune.data.sources.image_folder import image_folder_source
from smcl_tune.data.sources.synthetic import SYNTHETIC_POOL_PER_CLASS, synthetic_source

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


def check_source(config: DataConfig) -> str | None:
    """Check that the source's files are where the config says, without downloading or decoding.

    Raises DataSourceError naming the path; returns a note for the user (e.g. a pending download).
    """
    if config.source == "synthetic":
        return None
    root = Path(config.root or "")
    if config.source in ("cifar10", "cifar100"):
        return check_cifar(config.source, root, config.download)
    load_source(config)  # folders and lists: listing the files is the check
    return None
