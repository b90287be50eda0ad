"""Every image of an image folder or file lists decoded once, as `smcl-tune prepare` checks them:
a file that is not an image, is cut short, is a broken link or has another size than the rest
fails here, not in a trial hours later. Without torch. The threads share each split's files: a zip
archive's members are read under its own lock (CPython's zipfile), each at its own offset."""

from __future__ import annotations

import os
from collections import deque
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
IN_FLIGHT_PER_THREAD = 2  # chunks queued ahead: Ctrl-C waits for these only, not for a whole split


@dataclass
class ImageCheck:
    """Images decoded, and the first failures (one line each, naming the file) with their count."""

    images: int = 0
    failures: list[str] = field(default_factory=list)
    failed: int = 0

    def add(self, images: int, failures: list[str]) -> None:
        self.images += images
        self.failed += len(failures)
        self.failures.extend(failures[: SHOWN_FAILURES - len(self.failures)])


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


def _check_chunk(files: ImageFiles, indices: range, expected_size: tuple[int, int] | None) -> list[str]:
    return [failure for index in indices if (failure := _check_one(files, index, expected_size)) is not None]


def check_images(config: DataConfig, progress: Callable[[int, int], None] | None = None) -> ImageCheck:
    """Decode every image `config` (an image_folder or file_list source) names, in threads (PIL
    decodes outside the GIL); `progress(done, total)` after each chunk."""
    splits = _splits(config)
    total = sum(len(split.files.names) for split in splits)
    check = ImageCheck()
    workers = min(8, os.cpu_count() or 1)
    with ThreadPoolExecutor(max_workers=workers) as threads:
        for split in splits:
            expected = None
            if config.image_size is None:  # the size every image of the split must have, as its pool reads it
                expected = split.header_size or split.files.header_size(0)
            count = len(split.files.names)
            chunks = deque(range(start, min(start + CHUNK, count)) for start in range(0, count, CHUNK))
            in_flight: deque = deque()
            while chunks or in_flight:
                while chunks and len(in_flight) < IN_FLIGHT_PER_THREAD * workers:
                    chunk = chunks.popleft()
                    in_flight.append((chunk, threads.submit(_check_chunk, split.files, chunk, expected)))
                chunk, future = in_flight.popleft()
                check.add(len(chunk), future.result())
                if progress is not None:
                    progress(check.images, total)
    return check


def refusal(check: ImageCheck) -> str:
    """One line: how many images failed, the first few named."""
    more = check.failed - len(check.failures)
    rest = f"; and {more} more" if more > 0 else ""
    return f"{check.failed} of {check.images:,} images cannot be used: {'; '.join(check.failures)}{rest}"
