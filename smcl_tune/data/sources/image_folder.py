"""Image folders: `root/train/<class>/*` and `root/test/<class>/*`, plain or inside zip archives."""

from __future__ import annotations

import logging
import os
import zipfile
from pathlib import Path

import torch

from smcl_tune.data.pool import DataSourceError, FilePool, SourceData

log = logging.getLogger(__name__)

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
MAX_ZIP_MEMBERS = 10_000_000  # more is not a dataset archive but a zip bomb of names


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
    except (OSError, EOFError, zipfile.BadZipFile) as error:
        raise DataSourceError(f"{archive}: not a readable zip archive ({error})") from None
    if len(members) > MAX_ZIP_MEMBERS:
        raise DataSourceError(
            f"{archive}: {len(members):,} members, more than a dataset archive may hold ({MAX_ZIP_MEMBERS:,})"
        )
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
        raise DataSourceError(
            f"{root}: image folder not found; expected train/ and test/ class folders or train.zip and test.zip"
        )
    train, train_classes = _image_folder_split(root, "train", image_size)
    test, test_classes = _image_folder_split(root, "test", image_size)
    if train_classes != test_classes:
        only_train = sorted(set(train_classes) - set(test_classes))
        only_test = sorted(set(test_classes) - set(train_classes))
        raise DataSourceError(
            f"{root}: train and test classes differ: only in train {only_train}, only in test {only_test}"
        )
    if test.image_size != train.image_size:
        raise DataSourceError(
            f"{test.describe(0)}: test images are {test.image_size}, training images {train.image_size}; "
            "set data.image_size"
        )
    log.info(
        "image folder %s: %d classes, %d train and %d test images", root, len(train_classes), len(train), len(test)
    )
    return SourceData(train=train, test=test, val=None, class_names=train_classes)
