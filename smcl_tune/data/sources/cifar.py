"""CIFAR-10 and CIFAR-100 through torchvision, held in memory as uint8 tensors."""

from __future__ import annotations

import logging
import pickle
from pathlib import Path

import torch
from torchvision.datasets import CIFAR10, CIFAR100

from smcl_tune.data.pool import DataSourceError, SourceData, TensorPool

log = logging.getLogger(__name__)

DATASETS = {"cifar10": CIFAR10, "cifar100": CIFAR100}


def check_cifar(name: str, root: Path, download: bool) -> str | None:
    """Whether torchvision's files of `name` are under `root`, by name only (nothing is read).

    Returns a note when they are missing and `download` will fetch them; raises DataSourceError
    when they are missing and nothing will.
    """
    dataset_class = DATASETS[name]
    folder = root.resolve() / dataset_class.base_folder
    expected = [entry[0] for entry in (*dataset_class.train_list, *dataset_class.test_list)]
    expected.append(dataset_class.meta["filename"])
    missing = [file for file in expected if not (folder / file).is_file()]
    if not missing:
        return None
    if download:
        return f"{name} is not in {folder} yet: the first trial downloads it there (data.download: true)"
    raise DataSourceError(
        f"{root}: no {name} data; expected torchvision's folder {folder} with {', '.join(expected)} "
        f"(missing: {', '.join(missing)}); put the dataset there, or set data.download: true"
    )


def cifar_source(name: str, root: Path, download: bool, image_size: int | None = None) -> SourceData:
    """CIFAR-10 or CIFAR-100 through torchvision, held in memory; `image_size` resizes on load."""
    dataset_class = DATASETS[name]
    expected = root / dataset_class.base_folder
    try:
        train = dataset_class(str(root), train=True, download=download)
        test = dataset_class(str(root), train=False, download=download)
    except (RuntimeError, OSError, EOFError, ValueError, KeyError, pickle.UnpicklingError) as error:
        if download:
            raise DataSourceError(f"{root}: could not download {name} into it ({error})") from None
        raise DataSourceError(
            f"{root}: no usable {name} data ({error}); expected torchvision's folder {expected} "
            "(put the dataset there, or set data.download: true)"
        ) from None

    def pool(dataset: CIFAR10) -> TensorPool:
        images = torch.from_numpy(dataset.data).permute(0, 3, 1, 2).contiguous()
        return TensorPool(images, torch.as_tensor(dataset.targets, dtype=torch.long), size=image_size)

    return SourceData(train=pool(train), test=pool(test), val=None, class_names=list(train.classes))
