"""Saliency maps used to locate the object that SMCL masks."""

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

_LUMA = (0.299, 0.587, 0.114)
# Floor of the amplitude spectrum, relative to each image's largest amplitude. Float32 FFT
# round-off is far below it; without it the near-zero amplitudes of flat regions dominate the
# log spectrum and the peak lands off the object.
_RELATIVE_AMPLITUDE_FLOOR = 1e-4
_ABSOLUTE_AMPLITUDE_FLOOR = 1e-30


def _normalize_per_image(maps: Tensor) -> Tensor:
    """Min-max normalise each map to [0, 1].

    Args:
        maps: float [B, H, W]. A constant map becomes all zeros.

    Returns:
        float32 [B, H, W] in [0, 1].
    """
    maps = maps.float()
    flat = maps.flatten(1)
    low = flat.min(dim=1).values[:, None, None]
    span = flat.max(dim=1).values[:, None, None] - low
    safe_span = torch.where(span > 0, span, torch.ones_like(span))
    return ((maps - low) / safe_span).clamp_(0.0, 1.0)


def _grey(images: Tensor) -> Tensor:
    if images.dim() != 4:
        raise ValueError(f"images must be [B, C, H, W], got shape {tuple(images.shape)}")
    channels = images.shape[1]
    images = images.float()
    if channels == 1:
        return images
    if channels == 3:
        weights = torch.tensor(_LUMA, dtype=images.dtype, device=images.device)
        return (images * weights[None, :, None, None]).sum(dim=1, keepdim=True)
    raise ValueError(f"images must have 1 or 3 channels, got {channels}")


def _gaussian_blur(maps: Tensor, sigma: float) -> Tensor:
    """Separable Gaussian blur of [B, 1, H, W] with reflect padding."""
    radius = math.ceil(3.0 * sigma)
    offsets = torch.arange(-radius, radius + 1, dtype=maps.dtype, device=maps.device)
    kernel = torch.exp(-0.5 * (offsets / sigma) ** 2)
    kernel = kernel / kernel.sum()
    height, width = maps.shape[-2:]
    pad_h = min(radius, height - 1)
    pad_w = min(radius, width - 1)
    # Reflect padding cannot exceed size - 1; trim the kernel to the padding actually possible.
    kernel_h = kernel[radius - pad_h : radius + pad_h + 1]
    kernel_w = kernel[radius - pad_w : radius + pad_w + 1]
    kernel_h = kernel_h / kernel_h.sum()
    kernel_w = kernel_w / kernel_w.sum()
    if pad_w > 0:
        maps = F.pad(maps, (pad_w, pad_w, 0, 0), mode="reflect")
    maps = F.conv2d(maps, kernel_w.view(1, 1, 1, -1))
    if pad_h > 0:
        maps = F.pad(maps, (0, 0, pad_h, pad_h), mode="reflect")
    return F.conv2d(maps, kernel_h.view(1, 1, -1, 1))


def spectral_residual_saliency(images: Tensor, blur_sigma: float = 1.5) -> Tensor:
    """Spectral-residual saliency (Hou & Zhang, CVPR 2007) of a batch, without a model.

    Args:
        images: float [B, C, H, W], C = 1 or 3, any normalisation (the map does not change
            under a positive scale and offset); 3 channels are turned into luminance
            (0.299 R + 0.587 G + 0.114 B).
        blur_sigma: standard deviation of the Gaussian blur of the map, in pixels
            (0 disables the blur).

    Returns:
        float32 [B, H, W] on the images' device, each map min-max normalised to [0, 1];
        all zeros for a flat (constant) image.
    """
    if blur_sigma < 0:
        raise ValueError(f"blur_sigma must be >= 0 pixels, got {blur_sigma}")
    grey = _grey(images)
    flat = grey.amax(dim=(1, 2, 3)) == grey.amin(dim=(1, 2, 3))
    # Removing the mean (the DC term) makes the map independent of the images' normalisation.
    grey = grey - grey.mean(dim=(2, 3), keepdim=True)
    height, width = grey.shape[-2:]
    # Reflect padding keeps the FFT's wrap-around from putting peaks on the image border.
    pad_h = min(height // 2, height - 1)
    pad_w = min(width // 2, width - 1)
    if pad_h > 0 or pad_w > 0:
        grey = F.pad(grey, (pad_w, pad_w, pad_h, pad_h), mode="reflect")

    spectrum = torch.fft.fft2(grey)
    amplitude = spectrum.abs()
    floor = _RELATIVE_AMPLITUDE_FLOOR * amplitude.amax(dim=(2, 3), keepdim=True)
    log_amplitude = torch.log(amplitude + floor + _ABSOLUTE_AMPLITUDE_FLOOR)
    phase = torch.angle(spectrum)
    local_mean = F.avg_pool2d(F.pad(log_amplitude, (1, 1, 1, 1), mode="circular"), 3, stride=1)
    residual = log_amplitude - local_mean
    saliency = torch.fft.ifft2(torch.polar(torch.exp(residual), phase)).abs() ** 2

    if blur_sigma > 0:
        saliency = _gaussian_blur(saliency, blur_sigma)
    saliency = saliency[:, 0, pad_h : pad_h + height, pad_w : pad_w + width]
    # A flat image has no salient region; its map would be FFT round-off.
    saliency = saliency.masked_fill(flat[:, None, None], 0.0)
    return _normalize_per_image(saliency)


def gradient_saliency(logits_fn: Callable[[Tensor], Tensor], images: Tensor, labels: Tensor) -> Tensor:
    """Input-gradient saliency |d logit_y / d x|, max over channels.

    The model is called as it is (its train/eval mode is not changed; in train mode its
    BatchNorm statistics update as for any forward pass); only the gradient with respect to
    the input is computed, so no parameter's ``.grad`` is touched.

    Args:
        logits_fn: maps images [B, C, H, W] to logits [B, num_classes].
        images: float [B, C, H, W].
        labels: int64 [B], the class whose logit is differentiated for each image.

    Returns:
        float32 [B, H, W], each map min-max normalised to [0, 1].
    """
    inputs = images.detach().requires_grad_(True)
    with torch.enable_grad():
        logits = logits_fn(inputs)
        picked = logits.gather(1, labels.to(logits.device).long().view(-1, 1)).sum()
        (grad,) = torch.autograd.grad(picked, inputs, allow_unused=True)
    if grad is None:
        grad = torch.zeros_like(inputs)
    return _normalize_per_image(grad.detach().abs().amax(dim=1))
