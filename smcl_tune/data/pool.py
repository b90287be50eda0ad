"""Image pools: labelled images that decode only the indices asked for."""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from smcl_tune.data.eight_bit_rgb import eight_bit_rgb
from smcl_tune.data.file_listing import ListedSplit

log = logging.getLogger(__name__)


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

    `split` (data/file_listing.py) names them and their labels. Images are converted to RGB and
    resized to `size` x `size` when `size` is set; otherwise every image must have the size of the
    first one (whose header the listing may have read already). The pool pickles without its open
    zip handle.
    """

    def __init__(self, split: ListedSplit, size: int | None = None) -> None:
        self.files = split.files
        self.labels = torch.tensor(split.labels, dtype=torch.long)
        self.size = size
        self.image_size = (size, size) if size is not None else split.header_size or self.files.header_size(0)

    def describe(self, index: int) -> str:
        """The file of image `index`, as a user would look for it."""
        return self.files.describe(index)

    def _decode(self, index: int) -> torch.Tensor:
        image = eight_bit_rgb(self.files.open(index, expected_size=None if self.size else self.image_size))
        if self.size is not None and image.size != (self.size, self.size):
            image = image.resize((self.size, self.size), Image.Resampling.BILINEAR)
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
