"""`load_source`: the pools of the configured dataset, checked before any training starts."""

from __future__ import annotations

import logging
import os
import pickle
import zipfile
from pathlib import Path

import torch
from torchvision.datasets import CIFAR10, CIFAR100

from smcl_tune.config import DataConfig
from smcl_tune.data.pool import DataSourceError, FilePool, SourceData, TensorPool
from smcl_tune.data.synthetic import MAX_CLASSES, synthetic_source

log = logging.getLogger(__name__)

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
SYNTHETIC_POOL_PER_CLASS = 500


def load_source(config: DataConfig) -> SourceData:
    """The train, test and (where the source has one) validation pools named by `config`.

    Cheap checks (folders and list files exist, classes agree, labels in range) run here;
    images are decoded later, by `ImagePool.load`.
    """
    if config.source == "synthetic":
        return _synthetic(config)
    root = Path(config.root or "")
    if config.source in ("cifar10", "cifar100"):
        return cifar_source(config.source, root, config.download, config.image_size)
    if config.source == "image_folder":
        return image_folder_source(root, config.image_size)
    return file_list_source(root, config.image_size)


def _synthetic(config: DataConfig) -> SourceData:
    if config.image_size is not None and config.image_size != config.synthetic.image_size:
        raise DataSourceError(
            f"data.image_size: not used by source 'synthetic'; set data.synthetic.image_size instead "
            f"(got {config.image_size}, synthetic.image_size {config.synthetic.image_size})"
        )
    if config.num_classes > MAX_CLASSES:
        raise DataSourceError(f"data.num_classes: the synthetic benchmark has at most {MAX_CLASSES} classes, got {config.num_classes}")
    pool_per_class = config.n_max or SYNTHETIC_POOL_PER_CLASS
    return synthetic_source(config.num_classes, config.synthetic, pool_per_class=pool_per_class, seed=config.subset_seed)


def cifar_source(name: str, root: Path, download: bool, image_size: int | None = None) -> SourceData:
    """CIFAR-10 or CIFAR-100 through torchvision, held in memory; `image_size` resizes on load."""
    dataset_class = CIFAR10 if name == "cifar10" else CIFAR100
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


def _is_image(name: str) -> bool:
    return name.lower().endswith(IMAGE_EXTENSIONS)


def _list_folder(root: Path, split: str) -> dict[str, list[str]]:
    folder = root / split
    classes: dict[str, list[str]] = {}
    for class_dir in sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")):
        names = []
        for directory, _, files in os.walk(class_dir):
            names.extend(os.path.relpath(os.path.join(directory, f), root) for f in files if _is_image(f))
        if not names:
            raise DataSourceError(f"{class_dir}: class folder holds no image files ({', '.join(IMAGE_EXTENSIONS)})")
        classes[class_dir.name] = sorted(names)
    if not classes:
        raise DataSourceError(f"{folder}: no class folders; expected {folder}/<class>/<image>")
    return classes


def _list_zip(archive: Path, split: str) -> dict[str, list[str]]:
    try:
        with zipfile.ZipFile(archive) as opened:
            members = opened.infolist()
    except (OSError, zipfile.BadZipFile) as error:
        raise DataSourceError(f"{archive}: not a readable zip archive ({error})") from None
    classes: dict[str, list[str]] = {}
    for member in members:
        parts = member.filename.split("/")
        if len(parts) < 3 or parts[0] != split or not parts[1] or parts[1].startswith("."):
            continue
        names = classes.setdefault(parts[1], [])
        if not member.is_dir() and _is_image(member.filename):
            names.append(member.filename)
    if not classes:
        raise DataSourceError(f"{archive}: no members {split}/<class>/<image>")
    for name, files in classes.items():
        if not files:
            raise DataSourceError(f"{archive}: {split}/{name}/ holds no image files ({', '.join(IMAGE_EXTENSIONS)})")
        files.sort()
    return dict(sorted(classes.items()))


def _image_folder_split(root: Path, split: str, image_size: int | None) -> tuple[FilePool, list[str]]:
    if (root / split).is_dir():
        container, classes = root, _list_folder(root, split)
    elif (root / f"{split}.zip").is_file():
        container = root / f"{split}.zip"
        classes = _list_zip(container, split)
    else:
        raise DataSourceError(
            f"{root}: no {split} split; expected a folder {root / split}/<class>/<image> "
            f"or an archive {root / split}.zip with members {split}/<class>/<image>"
        )
    names = [name for files in classes.values() for name in files]
    labels = torch.cat([torch.full((len(files),), label) for label, files in enumerate(classes.values())])
    return FilePool(container, names, labels, image_size), list(classes)


def image_folder_source(root: Path, image_size: int | None = None) -> SourceData:
    """`root/train/<class>/*` and `root/test/<class>/*`, or `root/train.zip` and `root/test.zip`
    holding those members; labels follow the sorted class names; images decode lazily."""
    if not root.is_dir():
        raise DataSourceError(f"{root}: image folder not found; expected train/ and test/ class folders or train.zip and test.zip")
    train, train_classes = _image_folder_split(root, "train", image_size)
    test, test_classes = _image_folder_split(root, "test", image_size)
    if train_classes != test_classes:
        only_train = sorted(set(train_classes) - set(test_classes))
        only_test = sorted(set(test_classes) - set(train_classes))
        raise DataSourceError(f"{root}: train and test classes differ: only in train {only_train}, only in test {only_test}")
    if test.image_size != train.image_size:
        raise DataSourceError(
            f"{test.describe(0)}: test images are {test.image_size}, training images {train.image_size}; set data.image_size"
        )
    log.info("image folder %s: %d classes, %d train and %d test images", root, len(train_classes), len(train), len(test))
    return SourceData(train=train, test=test, val=None, class_names=train_classes)


def _read_list(path: Path) -> list[tuple[str, int, int]]:
    """(relative path, label, line number) of each non-blank line."""
    if not path.is_file():
        raise DataSourceError(f"{path}: list file not found; expected lines '<path relative to {path.parent}> <label>'")
    entries = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        parts = line.strip().rsplit(maxsplit=1)
        try:
            label = int(parts[1]) if len(parts) == 2 else -1
        except ValueError:
            label = -1
        if label < 0:
            raise DataSourceError(f"{path}:{number}: expected '<relative path> <integer label >= 0>', got {line!r}")
        entries.append((parts[0], label, number))
    if not entries:
        raise DataSourceError(f"{path}: list file is empty")
    return entries


def _check_entries(root: Path, path: Path, entries: list[tuple[str, int, int]], num_classes: int) -> None:
    for name, label, number in entries:
        if label >= num_classes:
            raise DataSourceError(f"{path}:{number}: label {label} is out of range 0..{num_classes - 1}")
    missing = [(name, number) for name, _, number in entries if not (root / name).is_file()]
    if missing:
        name, number = missing[0]
        raise DataSourceError(f"{root / name}: image file not found (listed in {path}:{number}; {len(missing)} listed files missing)")


def file_list_source(root: Path, image_size: int | None) -> SourceData:
    """ImageNet-LT style lists `train.txt`, `val.txt`, `test.txt` of `<path relative to root> <label>`;
    class names from `classes.txt` (one per line) if present, else `class_<id>`."""
    if image_size is None:
        raise DataSourceError(f"data.image_size: required for source 'file_list' (images under {root} are resized to it)")
    if not root.is_dir():
        raise DataSourceError(f"{root}: list folder not found; expected train.txt, val.txt and test.txt in it")
    lists = {split: _read_list(root / f"{split}.txt") for split in ("train", "val", "test")}
    names_file = root / "classes.txt"
    if names_file.is_file():
        class_names = [line.strip() for line in names_file.read_text().splitlines() if line.strip()]
    else:
        class_names = [f"class_{i}" for i in range(max(label for _, label, _ in lists["train"]) + 1)]
    for split, entries in lists.items():
        _check_entries(root, root / f"{split}.txt", entries, len(class_names))
    counts = torch.bincount(torch.tensor([label for _, label, _ in lists["train"]]), minlength=len(class_names))
    if (counts == 0).any():
        empty = torch.nonzero(counts == 0).flatten().tolist()
        raise DataSourceError(f"{root / 'train.txt'}: classes without training images: {empty[:10]}")

    def pool(entries: list[tuple[str, int, int]]) -> FilePool:
        labels = torch.tensor([label for _, label, _ in entries], dtype=torch.long)
        return FilePool(root, [name for name, _, _ in entries], labels, image_size)

    log.info("file lists %s: %d classes, %d/%d/%d images", root, len(class_names), *(len(e) for e in lists.values()))
    return SourceData(train=pool(lists["train"]), test=pool(lists["test"]), val=pool(lists["val"]), class_names=class_names)
