"""Reading a dataset into pools: the synthetic benchmark, CIFAR, image folders, file lists.

`load_source` lists the images and, for CIFAR, reads the arrays into memory (`data.source_shape`
checks the paths before anything starts). Images of folders and lists decode later, by
`ImagePool.load`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from smcl_tune.config import DataConfig
from smcl_tune.data.pool import SourceData
from smcl_tune.data.sources.cifar import cifar_source
from smcl_tune.data.sources.file_list import file_list_source
from smcl_tune.data.sources.image_folder import image_folder_source
from smcl_tune.data.sources.synthetic import synthetic_source
from smcl_tune.data.synthetic_classes import SYNTHETIC_POOL_PER_CLASS


def _synthetic(config: DataConfig) -> SourceData:
    pool_per_class = config.n_max or SYNTHETIC_POOL_PER_CLASS
    return synthetic_source(config.num_classes, config.synthetic, pool_per_class, seed=config.subset_seed)


def _cifar(config: DataConfig) -> SourceData:
    return cifar_source(config.source, Path(config.root or ""), config.download, config.image_size, config.mirror)


def _image_folder(config: DataConfig) -> SourceData:
    return image_folder_source(Path(config.root or ""), config.image_size)


def _file_list(config: DataConfig) -> SourceData:
    return file_list_source(Path(config.root or ""), config.image_size)


# data.source -> what reads it; the names are DataConfig.source's.
SOURCES: dict[str, Callable[[DataConfig], SourceData]] = {
    "synthetic": _synthetic,
    "cifar10": _cifar,
    "cifar100": _cifar,
    "image_folder": _image_folder,
    "file_list": _file_list,
}


def load_source(config: DataConfig) -> SourceData:
    """The train, test and (where the source has one) validation pools named by `config`."""
    return SOURCES[config.source](config)
