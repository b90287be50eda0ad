"""Image pools: labelled images that decode only the indices asked for."""

from __future__ import annotations

import io
import logging
import os
import zipfile
import zlib
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from smcl_tune.errors import DataSourceError

log = logging.getLogger(__name__)

MAX_IMAGE_FILE_BYTES = 64 * 2**20  # one image file, uncompressed: a zip member above this is refused
MAX_IMAGE_PIXELS = 50_000_000  # one decoded image (about 150 MB as uint8 RGB)


class ImagePool(ABC):
    """Labelled images; `load` returns uint8 [n,3,H,W] for the given indices, in that order."""

    labels: torch.Tensor
    image_size: tuple[int, int]

    def __len__(self) -> int:
        return len(self.labels)

    @abstractmethod
    def load(self, indices: torch.Tensor) -> torch.Tensor:
        """uint8 [len(indices),3,H,W] images at `indices`, in that order."""


class TensorPool(ImagePool):
    """Images already in memory (uint8 [N,3,H,W]); `size` resizes at load time (square side, px)."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, size: int | None = None) -> None:
        if images.dtype != torch.uint8 or images.dim() != 4 or images.shape[1] != 3:
            raise ValueError(f"images: expected uint8 [N,3,H,W], got {images.dtype} {list(images.shape)}")
        if len(images) != len(labels):
            raise ValueError(f"labels: expected {len(images)}, got {len(labels)}")
        self.images = images
        self.labels = labels.long()
        self.size = size
        self.image_size = (size, size) if size is not None else (images.shape[2], images.shape[3])

    def load(self, indices: torch.Tensor) -> torch.Tensor:
        batch = self.images[indices]
        if self.size is None or self.image_size == tuple(batch.shape[2:]):
            return batch
        resized = F.interpolate(
            batch.float(), size=self.image_size, mode="bilinear", antialias=True, align_corners=False
        )
        return resized.round_().clamp_(0, 255).to(torch.uint8)


class FilePool(ImagePool):
    """Image files listed up front and decoded on `load`.

    `names` are paths relative to `root` (a folder) or member names of the zip archive `root`.
    Images are converted to RGB and resized to `size` x `size` when `size` is set; otherwise every
    image must have the size of the first one. The pool pickles without its open zip handle.
    """

    def __init__(self, root: str | Path, names: list[str], labels: torch.Tensor, size: int | None = None) -> None:
        if len(names) != len(labels):
            raise ValueError(f"labels: expected {len(names)}, got {len(labels)}")
        if not names:
            raise DataSourceError(f"{root}: no images")
        self.root = Path(root)
        self.is_zip = self.root.is_file()
        self.names = names
        self.labels = labels.long()
        self.size = size
        self._archive: zipfile.ZipFile | None = None
        self._archive_pid: int | None = None
        if size is not None:
            self.image_size = (size, size)
        else:
            width, height = self._open(0, decode=False).size  # the header only
            self.image_size = (height, width)

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_archive"] = None
        state["_archive_pid"] = None
        return state

    def describe(self, index: int) -> str:
        """The file of image `index`, as a user would look for it."""
        return f"{self.root}:{self.names[index]}" if self.is_zip else str(self.root / self.names[index])

    def _zip(self) -> zipfile.ZipFile:
        # A handle inherited through fork shares its file offset with the parent: reopen per process.
        if self._archive is None or self._archive_pid != os.getpid():
            self._archive = zipfile.ZipFile(self.root)
            self._archive_pid = os.getpid()
        return self._archive

    def _read_member(self, index: int) -> bytes:
        archive = self._zip()
        size = archive.getinfo(self.names[index]).file_size  # a member never yields more than it declares
        if size > MAX_IMAGE_FILE_BYTES:
            raise DataSourceError(
                f"{self.describe(index)}: {size / 2**20:.0f} MiB uncompressed, more than an image file may be "
                f"({MAX_IMAGE_FILE_BYTES / 2**20:.0f} MiB)"
            )
        return archive.read(self.names[index])

    def _open(self, index: int, decode: bool = True) -> Image.Image:
        try:
            if self.is_zip:
                image = Image.open(io.BytesIO(self._read_member(index)))
            else:
                image = Image.open(self.root / self.names[index])
            if image.size[0] * image.size[1] > MAX_IMAGE_PIXELS:
                raise DataSourceError(
                    f"{self.describe(index)}: {image.size[0]}x{image.size[1]} pixels, more than an image may have "
                    f"({MAX_IMAGE_PIXELS:,})"
                )
            if decode:
                image.load()
            return image
        except FileNotFoundError:
            raise DataSourceError(f"{self.describe(index)}: image file not found") from None
        except (OSError, KeyError, EOFError, zlib.error, zipfile.BadZipFile, Image.DecompressionBombError) as error:
            raise DataSourceError(f"{self.describe(index)}: cannot read the image ({error})") from None

    def _decode(self, index: int) -> torch.Tensor:
        image = self._open(index).convert("RGB")
        if self.size is not None:
            if image.size != (self.size, self.size):
                image = image.resize((self.size, self.size), Image.Resampling.BILINEAR)
        elif image.size != (self.image_size[1], self.image_size[0]):
            raise DataSourceError(
                f"{self.describe(index)}: image is {image.size[0]}x{image.size[1]} but the pool's images are "
                f"{self.image_size[1]}x{self.image_size[0]}; set data.image_size to resize all images"
            )
        return torch.from_numpy(np.asarray(image).copy()).permute(2, 0, 1)

    def load(self, indices: torch.Tensor) -> torch.Tensor:
        indices = torch.as_tensor(indices).flatten().tolist()
        out = torch.empty((len(indices), 3, *self.image_size), dtype=torch.uint8)
        for position, index in enumerate(indices):
            out[position] = self._decode(index)
        return out


@dataclass(frozen=True)
class SourceData:
    """The pools of one dataset, before the long-tailed subset is drawn."""

    train: ImagePool
    """the training pool the long-tailed subset is drawn from"""
    test: ImagePool
    """the balanced test set"""
    val: ImagePool | None
    """a separate validation pool; None: draw validation from training images the subset left unused"""
    class_names: list[str]
