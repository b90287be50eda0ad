"""Masks from saliency maps, and composing a masked image with its soft label."""

from typing import SupportsFloat

import torch
from torch import Tensor

from smcl_tune.method.blur import gaussian_blur
from smcl_tune.method.draws import on_device
from smcl_tune.method.one_hot import one_hot

FILL_MODES = ("mean", "noise", "zero", "blur")
LABEL_MODES = ("mixed", "minor", "background")
BLUR_FILL_SIGMA = 1 / 8  # of the image's longer side: 4 px at 32 px, a blur that leaves no object's shape


def threshold_mask(saliency: Tensor, threshold: float | Tensor, content: Tensor | None = None) -> Tensor:
    """Mask of the pixels whose saliency is at least ``threshold``.

    Args:
        saliency: float [B, H, W], normalised to [0, 1] per image.
        threshold: saliency threshold t in [0, 1]; a float, or a 0-dim tensor on the saliency's device.
        content: bool [B, H, W] or None: where False (the crop's padding) a pixel is never masked.

    Returns:
        float32 [B, 1, H, W] with values 0 or 1.
    """
    # at least float32: a 0-dim device tensor t would otherwise be rounded to a bf16 map's dtype
    selected = saliency.to(torch.promote_types(saliency.dtype, torch.float32)) >= threshold
    if content is not None:
        selected = selected & content.to(selected.device)
    return selected.float().unsqueeze(1)


def salient_peaks(saliency: Tensor, content: Tensor | None = None) -> Tensor:
    """Flat index (row * W + col) of each map's most salient pixel, among its content pixels.

    Args:
        saliency: float [B, H, W].
        content: bool [B, H, W] or None: pixels where False are never the peak.

    Returns:
        int64 [B].
    """
    if content is not None:
        saliency = saliency.masked_fill(~content.to(saliency.device), -torch.inf)
    return saliency.reshape(saliency.shape[0], -1).argmax(dim=1)


def box_mask(saliency: Tensor, lam: Tensor, content: Tensor | None = None) -> Tensor:
    """Box centred on each map's most salient pixel (SaliencyMix, Uddin et al. 2021).

    Sides are round(W * sqrt(1 - lam)) by round(H * sqrt(1 - lam)); the box is clipped to the
    image, so near a border its area is below 1 - lam.

    Args:
        saliency: float [B, H, W].
        lam: [B] values in [0, 1]; the kept fraction of an unclipped box's image.
        content: bool [B, H, W] or None: where it is False (the crop's padding) a pixel is
            never the centre, and the box is cut off there, so its area counts the image's own
            pixels only.

    Returns:
        float32 [B, 1, H, W] with values 0 or 1.
    """
    height, width = saliency.shape[1:]
    peak = salient_peaks(saliency, content)
    boxes = centred_boxes(peak // width, peak % width, lam, height, width)
    if content is None:
        return boxes
    return boxes * content.to(boxes.device).unsqueeze(1)


def centred_boxes(centre_y: Tensor, centre_x: Tensor, lam: Tensor, height: int, width: int) -> Tensor:
    """Boxes of sides round(W * sqrt(1 - lam)) by round(H * sqrt(1 - lam)) around the given
    centres, clipped to the image (CutMix's geometry).

    Args:
        centre_y, centre_x: int64 [B], each box's centre pixel.
        lam: [B] values in [0, 1].
        height, width: image size, pixels.

    Returns:
        float32 [B, 1, H, W] with values 0 or 1, on the centres' device.
    """
    device = centre_y.device
    side = torch.sqrt(1.0 - lam.to(device=device, dtype=torch.float64).clamp(0.0, 1.0))
    box_h = torch.round(height * side).long()
    box_w = torch.round(width * side).long()
    top = centre_y - box_h // 2
    left = centre_x - box_w // 2
    rows = torch.arange(height, device=device)
    cols = torch.arange(width, device=device)
    inside_rows = (rows[None, :] >= top[:, None]) & (rows[None, :] < (top + box_h)[:, None])
    inside_cols = (cols[None, :] >= left[:, None]) & (cols[None, :] < (left + box_w)[:, None])
    return (inside_rows[:, :, None] & inside_cols[:, None, :]).float().unsqueeze(1)


def sample_beta(alpha: SupportsFloat, n: int, generator: torch.Generator) -> Tensor:
    """Draw n values from Beta(alpha, alpha), reproducibly from ``generator``.

    torch's Beta sampler has no generator argument, so a seed is drawn from ``generator`` and
    used on a forked CPU RNG; torch's global RNG state is unchanged afterwards.

    Args:
        alpha: both concentration parameters, > 0 (anything float() reads: a fused slot's value).
        n: number of draws.
        generator: source of randomness.

    Returns:
        float32 [n] on the CPU.
    """
    alpha = float(alpha)
    if alpha <= 0:
        raise ValueError(f"alpha must be > 0 for Beta(alpha, alpha), got {alpha}")
    seed = int(torch.randint(0, 2**62, (1,), generator=generator, device=generator.device).item())
    with torch.random.fork_rng(devices=[]):
        # Seed only the CPU generator: torch.manual_seed would also reseed CUDA's.
        torch.default_generator.manual_seed(seed)
        concentration = torch.full((), alpha)
        # alpha is checked above: the distribution's own check would read its argument back to the host
        return torch.distributions.Beta(concentration, concentration, validate_args=False).sample((n,))


def fill_masked(images: Tensor, mask: Tensor, fill: str, generator: torch.Generator | None = None) -> Tensor:
    """Replace the masked region of each image by a fill; unmasked pixels are kept.

    Args:
        images: float [B, C, H, W].
        mask: [B, 1, H, W], 1 where the pixel is replaced.
        fill: ``"mean"`` (each image's per-channel mean colour), ``"noise"`` (Gaussian with
            each image's per-channel mean and standard deviation), ``"zero"`` (0 in the
            normalised input: the training set's mean colour) or ``"blur"`` (the image itself
            under a Gaussian blur of sigma BLUR_FILL_SIGMA times its longer side).
        generator: source of the noise; None uses torch's global RNG on the images' device.

    Returns:
        [B, C, H, W], same dtype and device as ``images``.
    """
    if fill not in FILL_MODES:
        raise ValueError(f"fill must be one of {FILL_MODES}, got {fill!r}")
    pixels = images.float()
    if fill == "zero":
        return compose(images, torch.zeros_like(images), mask)
    if fill == "blur":
        sigma = BLUR_FILL_SIGMA * max(images.shape[-2:])
        return compose(images, gaussian_blur(pixels, sigma).to(images.dtype), mask)
    mean = pixels.mean(dim=(2, 3), keepdim=True)
    if fill == "mean":
        values = mean.expand_as(pixels)
    else:
        std = pixels.std(dim=(2, 3), keepdim=True, correction=0)
        if generator is None:
            noise = torch.randn(images.shape, device=images.device)
        else:
            shape = images.shape
            noise = on_device(lambda: torch.randn(shape, generator=generator, device=generator.device), images.device)
        values = mean + std * noise
    return compose(images, values.to(images.dtype), mask)


def compose(background: Tensor, foreground: Tensor, mask: Tensor) -> Tensor:
    """Paste ``foreground`` onto ``background`` where the mask is 1: (1 - M) * bg + M * fg.

    Args:
        background: [B, C, H, W].
        foreground: [B, C, H, W].
        mask: [B, 1, H, W] in [0, 1].

    Returns:
        [B, C, H, W] in the background's dtype.
    """
    mask = mask.to(background.dtype)
    return (1 - mask) * background + mask * foreground


def mask_area(mask: Tensor) -> Tensor:
    """Masked fraction of each image.

    Args:
        mask: [B, 1, H, W] in [0, 1].

    Returns:
        float32 [B] in [0, 1].
    """
    return mask.float().flatten(1).mean(dim=1)


def soft_labels(
    head_labels: Tensor,
    minor_labels: Tensor,
    area: Tensor,
    num_classes: int,
    mode: str = "mixed",
) -> Tensor:
    """Soft labels of the masked images (SMCL.md, step 4).

    Args:
        head_labels: int64 [B], labels y_b of the images that were masked (the backgrounds).
        minor_labels: int64 [B], the minor-class labels y_m drawn for them.
        area: [B], masked area fraction a of each image, in [0, 1].
        num_classes: number of classes C.
        mode: ``"mixed"``: (1 - a) * onehot(y_b) + a * onehot(y_m) (the removed share goes to
            the minor class); ``"minor"``: onehot(y_m); ``"background"``: a * onehot(y_b) +
            (1 - a) * onehot(y_m) (what is left, the background, goes to the minor class).

    Returns:
        float32 [B, C]; each row sums to 1.
    """
    if mode not in LABEL_MODES:
        raise ValueError(f"mode must be one of {LABEL_MODES}, got {mode!r}")
    minor = one_hot(minor_labels.long(), num_classes)
    if mode == "minor":
        return minor
    head = one_hot(head_labels.long().to(minor.device), num_classes)
    weight = area.to(device=minor.device, dtype=torch.float32)[:, None]
    if mode == "background":
        weight = 1 - weight
    return (1 - weight) * head + weight * minor
