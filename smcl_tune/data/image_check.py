"""Every image of an image folder or file lists decoded once, as `smcl-tune prepare` checks them:
a file that is not an image, is cut short, is a broken link or has another size than the rest
fails here, not in a trial hours later. Without torch."""

from __future__ import annotations

import os
import pickle
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from smcl_tune.config import DataConfig
from smcl_tune.data.eight_bit_rgb import eight_bit_rgb
from smcl_tune.data.file_listing import ListedSplit, file_list_listing, image_folder_listing
from smcl_tune.data.image_files import ImageFiles
from smcl_tune.errors import DataSourceError

CHUNK = 256  # images a thread decodes between progress updates
SHOWN_FAILURES = 3  # files named in the refusal; the rest are counted
_per_thread = threading.local()


@dataclass
class ImageCheck:
    """Images decoded, and the failures (one line each, naming the file)."""

    images: int = 0
    failures: list[str] = field(default_factory=list)


def _splits(config: DataConfig) -> list[ListedSplit]:
    root = Path(config.root or "")
    if config.source == "image_folder":
        listing = image_folder_listing(root, config.image_size)
    else:
        listing = file_list_listing(root)
    return [split for split in (listing.train, listing.val, listing.test) if split is not None]


def _check_one(files: ImageFiles, index: int, expected_size: tuple[int, int] | None) -> str | None:
    try:
        eight_bit_rgb(files.open(index, decode="draft", expected_size=expected_size))
    except DataSourceError as error:
        return str(error)
    return None


def _own_copy(files: ImageFiles) -> ImageFiles:
    """This thread's copy of `files`, with a zip handle of its own (threads would share its offset)."""
    held = getattr(_per_thread, "files", None)
    if held is None or held[0] is not files:
        _per_thread.files = held = (files, pickle.loads(pickle.dumps(files)))
    return held[1]


def _check_chunk(files: ImageFiles, indices: range, expected_size: tuple[int, int] | None) -> list[str]:
    own = _own_copy(files)
    return [failure for index in indices if (failure := _check_one(own, index, expected_size)) is not None]


def check_images(config: DataConfig, progress: Callable[[int, int], None] | None = None) -> ImageCheck:
    """Decode every image `config` (an image_folder or file_list source) names, in threads (PIL
    decodes outside the GIL); `progress(done, total)` after each chunk."""
    splits = _splits(config)
    total = sum(len(split.files.names) for split in splits)
    check = ImageCheck()
    with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as threads:
        for split in splits:
            expected = None
            if config.image_size is None:  # the size every image of the split must have, as its pool reads it
                expected = split.header_size or split.files.header_size(0)
            count = len(split.files.names)
            chunks = [range(start, min(start + CHUNK, count)) for start in range(0, count, CHUNK)]
            futures = [threads.submit(_check_chunk, split.files, chunk, expected) for chunk in chunks]
            for chunk, future in zip(chunks, futures):
                check.failures.extend(future.result())
                check.images += len(chunk)
                if progress is not None:
                    progress(check.images, total)
    return check


def refusal(check: ImageCheck) -> str:
    """One line: how many images failed, the first few named."""
    shown = "; ".join(check.failures[:SHOWN_FAILURES])
    more = len(check.failures) - SHOWN_FAILURES
    rest = f"; and {more} more" if more > 0 else ""
    return f"{len(check.failures)} of {check.images:,} images cannot be used: {shown}{rest}"
