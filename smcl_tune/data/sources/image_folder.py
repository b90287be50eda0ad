"""Image folders: `root/train/<class>/*` and `root/test/<class>/*`, plain or inside zip archives
(listed and checked by data/file_listing.py)."""

from __future__ import annotations

import logging
from pathlib import Path

from smcl_tune.data.file_listing import image_folder_listing
from smcl_tune.data.pool import FilePool, SourceData

log = logging.getLogger(__name__)


def image_folder_source(root: Path, image_size: int | None = None) -> SourceData:
    """`root/train/<class>/*` and `root/test/<class>/*`, or `root/train.zip` and `root/test.zip`
    holding those members; labels follow the sorted class names; images decode lazily."""
    listing = image_folder_listing(root, image_size)
    train, test = FilePool(listing.train, image_size), FilePool(listing.test, image_size)
    classes = len(listing.class_names)
    log.info("image folder %s: %d classes, %d train and %d test images", root, classes, len(train), len(test))
    return SourceData(train=train, test=test, val=None, class_names=listing.class_names)
