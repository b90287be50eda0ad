"""ImageNet-LT style file lists: `train.txt`, `val.txt`, `test.txt` of `<relative path> <label>` lines."""

from __future__ import annotations

import logging
from pathlib import Path

import torch

from smcl_tune.data.pool import DataSourceError, FilePool, SourceData

log = logging.getLogger(__name__)


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
    for _name, label, number in entries:
        if label >= num_classes:
            raise DataSourceError(f"{path}:{number}: label {label} is out of range 0..{num_classes - 1}")
    missing = [(name, number) for name, _, number in entries if not (root / name).is_file()]
    if missing:
        name, number = missing[0]
        raise DataSourceError(
            f"{root / name}: image file not found (listed in {path}:{number}; {len(missing)} listed files missing)"
        )


def file_list_source(root: Path, image_size: int) -> SourceData:
    """ImageNet-LT style lists `train.txt`, `val.txt`, `test.txt` of `<path relative to root> <label>`;
    class names from `classes.txt` (one per line) if present, else `class_<id>`; images resized
    to `image_size`."""
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
    return SourceData(
        train=pool(lists["train"]), test=pool(lists["test"]), val=pool(lists["val"]), class_names=class_names
    )
