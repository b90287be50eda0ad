"""The mask gallery: the pairs of a trial's first masking epoch (the record its checkpoint keeps),
and their picture as a PNG, drawn with matplotlib's object API.

One row per pair. For `compose: erase`: the image, its saliency, the box (the mask), the erased
image, and its soft label. For `compose: paste`: the head (background) image, the minor-class
image, the saliency map the mask comes from, the mask, and the composite with its soft label.

The cells are one raster, placed on the figure at its own pixels, and the words matplotlib's text:
80 axes laid out by matplotlib took about 1.8 s a picture on a CPU, once per SMCL trial.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
import torch
from matplotlib import colormaps
from matplotlib.figure import Figure

GALLERY_PAIRS = 16
DPI = 80
COLUMNS = 5
COLUMN_PX = 160  # the picture is COLUMNS x COLUMN_PX = 800 px wide
CELL_PX = 128  # an image's side, enlarged without smoothing
ROW_PX = 152  # a cell, its label below it and the gap to the next row
TOP_PX = 64  # the title and the column titles


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
            ("mask (removed)", gallery.mask[row], area, "gray"),  # a salient box, or a thresholded map
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


def _cell_pixels(picture: torch.Tensor, colour_map: str | None) -> np.ndarray:
    """uint8 [CELL_PX, CELL_PX, 3]: an image ([H, W, 3] uint8) or a [0, 1] map ([H, W]) in its colour
    map, enlarged by repeating pixels (nearest), framed in black."""
    values = picture.numpy()
    if colour_map is not None:
        coloured = (colormaps[colour_map](np.clip(values, 0, 1))[..., :3] * 255).round().astype(np.uint8)
        values = np.where(np.isnan(values)[..., None], np.uint8(255), coloured)  # no value: blank, as imshow left it
    rows = np.arange(CELL_PX) * values.shape[0] // CELL_PX
    columns = np.arange(CELL_PX) * values.shape[1] // CELL_PX
    cell = values[rows][:, columns].copy()
    cell[[0, -1], :] = 0
    cell[:, [0, -1]] = 0
    return cell


def gallery_png(gallery: MaskGallery, class_names: list[str], source: str) -> bytes:
    """The gallery as PNG bytes; `source` says which image a paste mask's saliency map is of."""
    rows = len(gallery)
    width, height = COLUMNS * COLUMN_PX, TOP_PX + rows * ROW_PX
    canvas = np.full((height, width, 3), 255, dtype=np.uint8)
    figure = Figure(figsize=(width / DPI, height / DPI), dpi=DPI)

    def text(x: float, y: float, words: str, **style) -> None:  # x, y in pixels from the top left
        figure.text(x / width, 1 - y / height, words, ha="center", **style)

    text(
        width / 2,
        TOP_PX / 4,
        f"SMCL masks ({gallery.compose}), epoch {gallery.epoch + 1} (the first that masks; counted from 1, as the "
        f"live view counts): {rows} "
        f"{'images' if gallery.compose == 'erase' else 'pairs'}",
        va="center",
        fontsize=11,
    )
    for row in range(rows):
        top = TOP_PX + row * ROW_PX
        for column, (title, cell, label, colour_map) in enumerate(_columns(gallery, row, class_names, source)):
            centre, left = (column + 0.5) * COLUMN_PX, column * COLUMN_PX + (COLUMN_PX - CELL_PX) // 2
            if row == 0:
                text(centre, TOP_PX - 6, title, va="bottom", fontsize=8)
            if cell is None:  # a cell of text only
                text(centre, top + CELL_PX / 2, label.replace(" + ", "\n+ "), va="center", fontsize=8)
                continue
            canvas[top : top + CELL_PX, left : left + CELL_PX] = _cell_pixels(cell, colour_map)
            if label:  # a soft label under a composite: two classes a line, to stay in its column
                terms = label.split(" + ")
                lines = [" + ".join(terms[index : index + 2]) for index in range(0, len(terms), 2)]
                text(centre, top + CELL_PX + 3, "\n+ ".join(lines), va="top", fontsize=7, linespacing=1.0)
    figure.figimage(canvas, 0, 0, origin="upper")
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI)
    return buffer.getvalue()
