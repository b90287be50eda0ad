"""ImageNet-LT style file lists: `train.txt`, `val.txt`, `test.txt` of `<relative path> <label>` lines
(read and checked by data/file_listing.py)."""

from __future__ import annotations

import logging
from pathlib import Path

from smcl_tune.data.file_listing import SPLITS, file_list_listing
from smcl_tune.data.pool import FilePool, SourceData

log = logging.getLogger(__name__)


def file_list_source(root: Path, image_size: int) -> SourceData:
    """ImageNet-LT style lists `train.txt`, `val.txt`, `test.txt` of `<path relative to root> <label>`;
    class names from `classes.txt` (one per line) if present, else `class_<id>`; images resized
    to `image_size`."""
    listing = file_list_listing(root)
    train, val, test = (FilePool(getattr(listing, split), image_size) for split in SPLITS)
    classes = len(listing.class_names)
    log.info("file lists %s: %d classes, %d/%d/%d images", root, classes, len(train), len(val), len(test))
    return SourceData(train=train, test=test, val=val, class_names=listing.class_names)
