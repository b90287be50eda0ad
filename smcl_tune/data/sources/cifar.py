"""CIFAR-10 and CIFAR-100 through torchvision, held in memory as uint8 tensors."""

from __future__ import annotations

import logging
import pickle
from pathlib import Path

import torch

from smcl_tune.data.cifar_files import CIFAR_ARCHIVES
from smcl_tune.data.fetch import fetch_cifar
from smcl_tune.data.pool import SourceData, TensorPool
from smcl_tune.errors import DataSourceError

log = logging.getLogger(__name__)


def cifar_source(
    name: str, root: Path, download: bool, image_size: int | None = None, mirror: str | None = None
) -> SourceData:
    """CIFAR-10 or CIFAR-100 through torchvision, held in memory; `image_size` resizes on load.
    With `download`, a node that lacks the files fetches them first, one process at a time."""
    # imported here: torchvision's import brings torch._dynamo (about 1 s) into every process that
    # imports the sources, and only a CIFAR study needs it
    from torchvision.datasets import CIFAR10, CIFAR100

    dataset_class = {"cifar10": CIFAR10, "cifar100": CIFAR100}[name]
    expected = root / dataset_class.base_folder
    if download and CIFAR_ARCHIVES[name].missing(root):  # the driver checked the files whole; torchvision checks
        fetch_cifar(name, root, mirror)  # their MD5 as it reads them: no third hashing here
    try:
        train = dataset_class(str(root), train=True, download=False)
        test = dataset_class(str(root), train=False, download=False)
    except (RuntimeError, OSError, EOFError, ValueError, KeyError, pickle.UnpicklingError) as error:
        raise DataSourceError(
            f"{root}: no usable {name} data ({error}); expected the folder {expected} "
            "(put the dataset there, set data.download: true, or run `smcl-tune prepare STUDY.yaml`)"
        ) from None

    def pool(dataset) -> TensorPool:
        images = torch.from_numpy(dataset.data).permute(0, 3, 1, 2).contiguous()
        return TensorPool(images, torch.as_tensor(dataset.targets, dtype=torch.long), size=image_size)

    return SourceData(train=pool(train), test=pool(test), val=None, class_names=list(train.classes))
