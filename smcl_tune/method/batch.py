"""One training step's images and labels, as the data pipeline hands them to the step."""

from __future__ import annotations

from typing import NamedTuple

import torch


class Batch(NamedTuple):
    """One step's images on the device, normalised; the minor batch is None on a plain step."""

    head_images: torch.Tensor  # x_b, float [B, C, H, W]
    head_labels: torch.Tensor  # y_b, int64 [B]
    minor_images: torch.Tensor | None = None  # x_m
    minor_labels: torch.Tensor | None = None  # y_m
    head_content: torch.Tensor | None = None  # bool [B, H, W]: False where the crop's zero padding is; None: none
    minor_content: torch.Tensor | None = None

    @property
    def masks(self) -> bool:
        """Whether this step has a minor batch (a masking step of the methods that use one)."""
        return self.minor_images is not None
