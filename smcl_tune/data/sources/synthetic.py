"""The background-bias benchmark: coloured shapes on textured backgrounds, generated from a seed.

Class c is a shape (c mod 10) in a colour ((c + c div 10) mod 10), so up to 100 classes all differ
and the first 10 differ in both shape and colour. In the training pool, class c lies on background
c mod K with probability rho and otherwise on a uniformly drawn background (which may be c mod K
too, so P(background c | class c) = rho + (1 - rho) / K); in validation and test the background is
uniform and independent of the label. Backgrounds use muted colours (every channel in 64..192) and
objects saturated ones (some channel <= 25 or >= 235), so an object always stands out.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from functools import lru_cache

import torch

from smcl_tune.config import SYNTHETIC_MAX_CLASSES, SyntheticConfig
from smcl_tune.data.pool import SourceData, TensorPool
from smcl_tune.data.synthetic_classes import class_name

log = logging.getLogger(__name__)

COLOURS = torch.tensor(
    [
        [230, 25, 25],
        [25, 200, 25],
        [25, 50, 235],
        [240, 225, 20],
        [225, 20, 225],
        [20, 215, 225],
        [250, 130, 10],
        [130, 20, 210],
        [245, 245, 245],
        [10, 10, 10],
    ],
    dtype=torch.float32,
)
BACKGROUND_NAMES = [
    "stripes_horizontal",
    "stripes_vertical",
    "stripes_diagonal",
    "stripes_antidiagonal",
    "checkerboard_small",
    "checkerboard_large",
    "gradient",
    "rings",
    "coloured_noise",
    "dot_grid",
]
MAX_CLASSES = SYNTHETIC_MAX_CLASSES  # every shape in every colour
_SPLIT_CODES = {"train": 1, "val": 2, "test": 3}


@dataclass(frozen=True)
class Appearance:
    """How hard the images are to read; the defaults give the original benchmark.

    object_scale multiplies the object radius (5..9 px at 32 px); object_contrast blends the object
    colour over the texture (1: opaque, lower: the texture shows through); texture_scale multiplies
    the textures' period (below 1: finer, busier textures); noise is the standard deviation of
    Gaussian pixel noise over the whole image, in grey levels.
    """

    object_scale: float = 1.0
    object_contrast: float = 1.0
    texture_scale: float = 1.0
    noise: float = 0.0


@dataclass(frozen=True)
class SyntheticImages:
    """Rendered images uint8 [N,3,H,W], labels int64 [N], background ids int64 [N], object masks bool [N,H,W]."""

    images: torch.Tensor
    labels: torch.Tensor
    backgrounds: torch.Tensor
    masks: torch.Tensor


class SyntheticPool(TensorPool):
    """A synthetic pool that also knows each image's background id and object mask."""

    def __init__(self, rendered: SyntheticImages) -> None:
        super().__init__(rendered.images, rendered.labels)
        self.backgrounds = rendered.backgrounds
        self.foreground_masks = rendered.masks


def _grid(size: int) -> tuple[torch.Tensor, torch.Tensor]:
    centres = torch.arange(size, dtype=torch.float32) + 0.5
    return centres.view(1, 1, size), centres.view(1, size, 1)


def _uniform(count: int, low: float, high: float, generator: torch.Generator) -> torch.Tensor:
    return (low + (high - low) * torch.rand(count, generator=generator)).view(count, 1, 1)


def _pattern(
    background: int, count: int, size: int, generator: torch.Generator, texture_scale: float = 1.0
) -> torch.Tensor:
    """Blend weights in [0, 1], [count,1,H,W] (or [count,3,H,W] for noise), for one texture."""
    xs, ys = _grid(size)
    scale = size / 32 * texture_scale
    period = 8 * scale
    if background < 4:
        angle = math.radians((0, 90, 45, 135)[background])
        along = xs * math.sin(angle) + ys * math.cos(angle)
        phase = _uniform(count, 0, 2 * math.pi, generator)
        weight = torch.sin(2 * math.pi * along / period + phase) > 0
    elif background < 6:
        cell = (4 if background == 4 else 8) * scale
        offset_x, offset_y = _uniform(count, 0, 2 * cell, generator), _uniform(count, 0, 2 * cell, generator)
        weight = (torch.floor((xs + offset_x) / cell) + torch.floor((ys + offset_y) / cell)) % 2 == 1
    elif background == 6:
        angle = _uniform(count, 0, 2 * math.pi, generator)
        along = (xs - size / 2) * torch.cos(angle) + (ys - size / 2) * torch.sin(angle)
        weight = (along / size + 0.5).clamp(0, 1)
    elif background == 7:
        centre_x, centre_y = _uniform(count, 0, size, generator), _uniform(count, 0, size, generator)
        distance = torch.sqrt((xs - centre_x) ** 2 + (ys - centre_y) ** 2)
        phase = _uniform(count, 0, 2 * math.pi, generator)
        weight = torch.sin(2 * math.pi * distance / period + phase) > 0
    elif background == 8:
        return torch.rand(count, 3, size, size, generator=generator)
    else:
        offset_x, offset_y = _uniform(count, 0, period, generator), _uniform(count, 0, period, generator)
        dx = torch.remainder(xs + offset_x, period) - period / 2
        dy = torch.remainder(ys + offset_y, period) - period / 2
        weight = dx**2 + dy**2 <= (1.5 * scale) ** 2
    return weight.float().expand(count, size, size).unsqueeze(1)


def _shape_mask(shape: int, u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Pixels of shape `shape` in coordinates scaled by the radius (every shape fits |u|, |v| <= 1)."""
    au, av = u.abs(), v.abs()
    squared = u**2 + v**2
    if shape == 0:
        return squared <= 1
    if shape == 1:
        return torch.maximum(au, av) <= 0.8
    if shape == 2:
        return (v <= 0.8) & (v >= 2 * au - 1)
    if shape == 3:
        return au + av <= 1
    if shape == 4:
        return (torch.minimum(au, av) <= 0.3) & (torch.maximum(au, av) <= 1)
    if shape == 5:
        return (squared <= 1) & (squared >= 0.3)
    if shape == 6:
        return ((au - av).abs() <= 0.4) & (torch.maximum(au, av) <= 0.9)
    if shape == 7:
        return (av <= math.sqrt(3) / 2) & (math.sqrt(3) * au + av <= math.sqrt(3))
    if shape == 8:
        return u**2 + (v / 0.55) ** 2 <= 1
    return (squared <= 1) & (v >= -0.1)


def render_synthetic(
    labels: torch.Tensor,
    backgrounds: torch.Tensor,
    image_size: int,
    generator: torch.Generator,
    appearance: Appearance = Appearance(),
) -> SyntheticImages:
    """Draw class `labels[i]`'s object on texture `backgrounds[i]`, at a random position and scale.

    The object radius is 5..9 px at 32 px (scaled with `image_size` and `appearance.object_scale`)
    and the object never touches the image border. Randomness comes only from `generator`.
    """
    labels, backgrounds = labels.long(), backgrounds.long()
    count, size = len(labels), image_size
    weights = torch.empty(count, 3, size, size)
    for background in backgrounds.unique().tolist():
        members = torch.nonzero(backgrounds == background).flatten()
        weights[members] = _pattern(background, len(members), size, generator, appearance.texture_scale)
    dark = torch.rand(count, 1, generator=generator) * 40 + 64 + (torch.rand(count, 3, generator=generator) - 0.5) * 24
    light = (
        torch.rand(count, 1, generator=generator) * 40 + 152 + (torch.rand(count, 3, generator=generator) - 0.5) * 24
    )
    dark, light = dark.clamp(64, 192).view(count, 3, 1, 1), light.clamp(64, 192).view(count, 3, 1, 1)
    images = dark + (light - dark) * weights

    scale = size / 32 * appearance.object_scale
    radius = _uniform(count, 5 * scale, 9 * scale, generator)
    room = size - 2 - 2 * radius
    centre_x = radius + 1 + room * torch.rand(count, 1, 1, generator=generator)
    centre_y = radius + 1 + room * torch.rand(count, 1, 1, generator=generator)
    xs, ys = _grid(size)
    masks = torch.zeros(count, size, size, dtype=torch.bool)
    for shape in (labels % 10).unique().tolist():
        members = torch.nonzero(labels % 10 == shape).flatten()
        r = radius[members]
        masks[members] = _shape_mask(shape, (xs - centre_x[members]) / r, (ys - centre_y[members]) / r)
    colours = COLOURS[(labels + labels // 10) % 10].view(count, 3, 1, 1)
    objects = images + appearance.object_contrast * (colours - images)
    images = torch.where(masks.unsqueeze(1), objects, images)
    if appearance.noise > 0:
        images = (images + appearance.noise * torch.randn(images.shape, generator=generator)).clamp(0, 255)
    return SyntheticImages(images.round().to(torch.uint8), labels, backgrounds, masks)


def _derived_seed(seed: int, split: str) -> int:
    return (seed * 1_000_003 + _SPLIT_CODES[split]) % 2**63


@lru_cache(maxsize=8)
def synthetic_split(
    num_classes: int,
    per_class: int,
    image_size: int,
    num_backgrounds: int,
    rho: float | None,
    seed: int,
    split: str,
    appearance: Appearance = Appearance(),
) -> SyntheticImages:
    """`per_class` images of each class, ordered by class; rho None: label-independent backgrounds.

    Cached: repeated calls return the same tensors, which callers must not modify.
    """
    if not 2 <= num_classes <= MAX_CLASSES:
        raise ValueError(f"num_classes: the synthetic benchmark has 2..{MAX_CLASSES} classes, got {num_classes}")
    if not 2 <= num_backgrounds <= len(BACKGROUND_NAMES):
        raise ValueError(f"num_backgrounds: must be in 2..{len(BACKGROUND_NAMES)}, got {num_backgrounds}")
    if per_class < 1:
        raise ValueError(f"per_class: must be >= 1, got {per_class}")
    generator = torch.Generator().manual_seed(_derived_seed(seed, split))
    labels = torch.arange(num_classes).repeat_interleave(per_class)
    backgrounds = torch.randint(num_backgrounds, (len(labels),), generator=generator)
    if rho is not None:
        biased = torch.rand(len(labels), generator=generator) < rho
        backgrounds = torch.where(biased, labels % num_backgrounds, backgrounds)
    return render_synthetic(labels, backgrounds, image_size, generator, appearance)


def synthetic_source(num_classes: int, config: SyntheticConfig, pool_per_class: int, seed: int) -> SourceData:
    """The benchmark's pools: train (`pool_per_class` per class, background bias rho), val and test
    (uniform backgrounds)."""
    appearance = Appearance(config.object_scale, config.object_contrast, config.texture_scale, config.noise)

    def split(per_class: int, rho: float | None, name: str) -> SyntheticPool:
        return SyntheticPool(
            synthetic_split(
                num_classes, per_class, config.image_size, config.num_backgrounds, rho, seed, name, appearance
            )
        )

    train = split(pool_per_class, config.rho, "train")
    val = split(config.val_pool_per_class, None, "val")
    test = split(config.test_per_class, None, "test")
    log.debug("synthetic source: %d classes, %d/%d/%d images", num_classes, len(train), len(val), len(test))
    return SourceData(train=train, test=test, val=val, class_names=[class_name(c) for c in range(num_classes)])
