"""A decoded image as 8-bit RGB, whatever its bit depth."""

from __future__ import annotations

import numpy as np
from PIL import Image

SIXTEEN_BIT_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I")  # PIL opens a 16-bit greyscale PNG as I;16 (older: I)


def eight_bit_rgb(image: Image.Image) -> Image.Image:
    """`image.convert("RGB")`, except for 16-bit greyscale: PIL's conversion clips its values to
    255, so that all but its darkest 1/256 of the range turns white. Those are scaled from 0..65535
    to 0..255 (x / 257, rounded) instead. (PIL opens a 16-bit RGB PNG as 8-bit RGB itself.)"""
    if image.mode not in SIXTEEN_BIT_MODES:
        return image.convert("RGB")
    values = np.clip(np.asarray(image), 0, 65535).astype(np.uint32)  # mode I holds 32-bit values
    grey = ((values + 128) // 257).astype(np.uint8)  # x / 257 rounded, in integers: no float copy of a large image
    return Image.fromarray(grey, mode="L").convert("RGB")
