"""Slow, obvious references of the masking step's pieces (SMCL.md, steps 2-4), one image at a time."""

import math

import torch


def reference_peak(saliency: torch.Tensor, content: torch.Tensor | None = None) -> tuple[int, int]:
    """(row, col) of the largest saliency among the content pixels of one map [H, W]; first in row order on ties."""
    best, where = -math.inf, (0, 0)
    height, width = saliency.shape
    for row in range(height):
        for col in range(width):
            if content is not None and not content[row, col]:
                continue
            if float(saliency[row, col]) > best:
                best, where = float(saliency[row, col]), (row, col)
    return where


def reference_box(saliency: torch.Tensor, lam: float, content: torch.Tensor | None = None) -> torch.Tensor:
    """The box mask [H, W] of one map: sides round(side * sqrt(1 - lam)), centred on the peak, clipped
    to the image and to its content pixels."""
    height, width = saliency.shape
    row, col = reference_peak(saliency, content)
    box_h = round(height * math.sqrt(1 - lam))
    box_w = round(width * math.sqrt(1 - lam))
    mask = torch.zeros(height, width)
    for r in range(row - box_h // 2, row - box_h // 2 + box_h):
        for c in range(col - box_w // 2, col - box_w // 2 + box_w):
            if 0 <= r < height and 0 <= c < width and (content is None or content[r, c]):
                mask[r, c] = 1.0
    return mask


def reference_fill(image: torch.Tensor, mask: torch.Tensor, fill: str) -> torch.Tensor:
    """One image [C, H, W] with the pixels where mask [H, W] is 1 replaced by `fill` (mean or zero)."""
    out = image.clone()
    channels, height, width = image.shape
    for channel in range(channels):
        value = 0.0 if fill == "zero" else float(image[channel].double().mean())
        for row in range(height):
            for col in range(width):
                if mask[row, col] == 1:
                    out[channel, row, col] = value
    return out


def reference_soft_label(head: int, minor: int, area: float, num_classes: int, mode: str) -> torch.Tensor:
    """The cross-entropy target of one masked image (SMCL.md, step 4)."""
    target = torch.zeros(num_classes)
    minor_weight = {"mixed": area, "minor": 1.0, "background": 1.0 - area}[mode]
    target[minor] += minor_weight
    target[head] += 1.0 - minor_weight
    return target
