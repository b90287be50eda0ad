"""The mask gallery: the pairs of a trial's first masking epoch (the record its checkpoint keeps),
and their picture as a PNG, drawn with matplotlib's object API.

One row per pair. For `compose: erase`: the image, its saliency, the box (the mask), the erased
image, and its soft label. For `compose: paste`: the head (background) image, the minor-class
image, the saliency map the mask comes from, the mask, and the composite with its soft label.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import torch
from matplotlib.figure import Figure

GALLERY_PAIRS = 16


@dataclass
class MaskGallery:
    """Up to GALLERY_PAIRS masked pairs, exactly as the step composed them, as pixels and maps."""

    epoch: int
    head: torch.Tensor  # uint8 [N, 3, H, W], denormalised
    minor: torch.Tensor  # uint8 [N, 3, H, W]
    saliency: torch.Tensor  # float32 [N, H, W] in [0, 1]
    mask: torch.Tensor  # float32 [N, H, W] in [0, 1]
    composite: torch.Tensor  # uint8 [N, 3, H, W]
    head_labels: torch.Tensor  # int64 [N]
    minor_labels: torch.Tensor  # int64 [N]
    targets: torch.Tensor  # float32 [N, C]: the composite's soft label
    compose: str = "paste"  # the method's compose: erase or paste

    def __len__(self) -> int:
        return len(self.head_labels)

    def state(self) -> dict[str, torch.Tensor | int]:
        return {name: getattr(self, name) for name in self.__dataclass_fields__}

    @classmethod
    def from_state(cls, state: dict) -> MaskGallery:
        return cls(**state)

    def extended(self, more: MaskGallery, limit: int = GALLERY_PAIRS) -> MaskGallery:
        """This gallery and `more`'s pairs, up to `limit` in all."""
        room = max(0, limit - len(self))
        fields = {
            name: torch.cat([getattr(self, name), getattr(more, name)[:room]])
            for name in self.__dataclass_fields__
            if name not in ("epoch", "compose")
        }
        return MaskGallery(epoch=self.epoch, compose=self.compose, **fields)


def soft_label_text(targets: torch.Tensor, class_names: list[str]) -> str:
    """The soft label's non-zero classes, largest first: `0.62 cat + 0.38 dog`."""
    weights, classes = targets.sort(descending=True)
    parts = [f"{w:.2f} {class_names[c]}" for w, c in zip(weights.tolist(), classes.tolist(), strict=True) if w > 0.005]
    return " + ".join(parts[:3])


def _columns(
    gallery: MaskGallery, row: int, class_names: list[str], source: str
) -> list[tuple[str, object, str, str | None]]:
    """(title, picture, label, colour map of a [0, 1] map or None for an image) of each cell of one row."""
    area = f"area {float(gallery.mask[row].mean()):.2f}"
    soft_label = soft_label_text(gallery.targets[row], class_names)
    head_name = class_names[int(gallery.head_labels[row])]
    if gallery.compose == "erase":
        return [
            ("image", gallery.head[row].permute(1, 2, 0), head_name, None),
            ("its saliency", gallery.saliency[row], "", "inferno"),
            ("box (removed)", gallery.mask[row], area, "gray"),
            ("erased image", gallery.composite[row].permute(1, 2, 0), "", None),
            ("soft label", None, soft_label, None),
        ]
    return [
        ("head (background)", gallery.head[row].permute(1, 2, 0), head_name, None),
        ("minor class", gallery.minor[row].permute(1, 2, 0), class_names[int(gallery.minor_labels[row])], None),
        (f"saliency of the {source} image", gallery.saliency[row], "", "inferno"),
        ("mask", gallery.mask[row], area, "gray"),
        ("composite", gallery.composite[row].permute(1, 2, 0), soft_label, None),
    ]


def gallery_png(gallery: MaskGallery, class_names: list[str], source: str) -> bytes:
    """The gallery as PNG bytes; `source` says which image a paste mask's saliency map is of."""
    rows = len(gallery)
    height = 1.9 * rows + 0.8
    figure = Figure(figsize=(10, height))
    figure.suptitle(
        f"SMCL masks ({gallery.compose}), epoch {gallery.epoch} (the first that masks): {rows} "
        f"{'images' if gallery.compose == 'erase' else 'pairs'}",
        fontsize=11,
    )
    axes = figure.subplots(rows, 5, squeeze=False)
    for row in range(rows):
        for column, (title, cell, label, colour_map) in enumerate(_columns(gallery, row, class_names, source)):
            axis = axes[row][column]
            if cell is None:  # a cell of text only
                axis.axis("off")
                axis.text(0.5, 0.5, label.replace(" + ", "\n+ "), ha="center", va="center", fontsize=8)
            else:
                unit_range = (0, 1) if colour_map else (None, None)
                axis.imshow(cell.numpy(), cmap=colour_map, vmin=unit_range[0], vmax=unit_range[1])
                axis.set_xticks([])
                axis.set_yticks([])
                axis.set_xlabel(label, fontsize=7)
            if row == 0:
                axis.set_title(title, fontsize=8)
    figure.tight_layout(rect=(0, 0, 1, 1 - 0.5 / height))  # room for the title
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=80)
    return buffer.getvalue()
