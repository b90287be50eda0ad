"""Reading a dataset into pools: the synthetic benchmark, CIFAR, image folders, file lists.

`load_source` lists the images and, for CIFAR, reads the arrays into memory (`data.source_shape`
checks the paths before anything starts). Images of folders and lists decode later, by
`ImagePool.load`.
"""

from __future__ import annotations

from pathlib import Path

from smcl_tune.config import DataConfig
from smcl_tune.data.pool import SourceData
from smcl_tune.data.sources.cifar import cifar_source
from smcl_tune.data.sources.file_list import file_list_source
from smcl_tune.data.sources.image_folder import image_folder_source
from smcl_tune.data.sources.synthetic import synthetic_source
from smcl_tune.data.synthetic_classes import SYNTHETIC_POOL_PER_CLASS


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
