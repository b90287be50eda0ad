"""Saliency maps used to locate the object that SMCL masks."""

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from smcl_tune.method.blur import gaussian_blur
from smcl_tune.method.draws import on_device

_LUMA = (0.299, 0.587, 0.114)
# Floor of the amplitude spectrum, relative to each image's largest amplitude. Float32 FFT
# round-off is far below it; without it the near-zero amplitudes of flat regions dominate the
# log spectrum and the peak lands off the object.
_RELATIVE_AMPLITUDE_FLOOR = 1e-4
_ABSOLUTE_AMPLITUDE_FLOOR = 1e-30


def _normalize_per_image(maps: Tensor, content: Tensor | None = None) -> Tensor:
    """Min-max normalise each map to [0, 1], over its content pixels only when ``content`` is given.

    Args:
        maps: float [B, H, W]. A constant map becomes all zeros.
        content: bool [B, H, W], True where a pixel is the image's own (False: the random crop's
            zero padding); None: every pixel. Pixels outside the content are 0 in the result.

    Returns:
        float32 [B, H, W] in [0, 1].
    """
    maps = maps.float()
    if content is None:
        flat = maps.flatten(1)
        low = flat.min(dim=1).values[:, None, None]
        high = flat.max(dim=1).values[:, None, None]
    else:
        content = content.to(maps.device)
        low = maps.masked_fill(~content, torch.inf).flatten(1).min(dim=1).values[:, None, None]
        high = maps.masked_fill(~content, -torch.inf).flatten(1).max(dim=1).values[:, None, None]
        low = torch.where(torch.isfinite(low), low, torch.zeros_like(low))  # an image with no content at all
        high = torch.where(torch.isfinite(high), high, low)
    span = high - low
    safe_span = torch.where(span > 0, span, torch.ones_like(span))
    normalised = ((maps - low) / safe_span).clamp_(0.0, 1.0)
    return normalised if content is None else normalised.masked_fill_(~content, 0.0)


def _grey(images: Tensor) -> Tensor:
    if images.dim() != 4:
        raise ValueError(f"images must be [B, C, H, W], got shape {tuple(images.shape)}")
    channels = images.shape[1]
    images = images.float()
    if channels == 1:
        return images
    if channels == 3:
        # Python numbers, not a tensor of them: on CUDA that tensor would be a host copy every step.
        red, green, blue = images.split(1, dim=1)
        return red * _LUMA[0] + green * _LUMA[1] + blue * _LUMA[2]
    raise ValueError(f"images must have 1 or 3 channels, got {channels}")


def _fill_outside_content(grey: Tensor, content: Tensor) -> Tensor:
    """Grey images [B, 1, H, W] with every padding pixel set to the mean of the image's own pixels,
    so that the edge between the image and the crop's black padding draws no saliency."""
    inside = content.to(grey.device)[:, None]
    count = inside.sum(dim=(2, 3), keepdim=True).clamp(min=1)
    mean = (grey * inside).sum(dim=(2, 3), keepdim=True) / count
    return torch.where(inside, grey, mean)


def spectral_residual_saliency(images: Tensor, blur_sigma: float = 1.5, content: Tensor | None = None) -> Tensor:
    """Spectral-residual saliency (Hou & Zhang, CVPR 2007) of a batch, without a model.

    Args:
        images: float [B, C, H, W], C = 1 or 3, any normalisation (the map does not change
            under a positive scale and offset); 3 channels are turned into luminance
            (0.299 R + 0.587 G + 0.114 B).
        blur_sigma: standard deviation of the Gaussian blur of the map, in pixels
            (0 disables the blur).
        content: bool [B, H, W], True where a pixel is the image's own, False where the random
            crop's zero padding added it; None: every pixel is the image's. Padding pixels take
            the image's mean grey level before the transform and are 0 in the map, so they are
            never its maximum nor above a threshold (SMCL.md, step 1).

    Returns:
        float32 [B, H, W] on the images' device, each map min-max normalised to [0, 1];
        all zeros for a flat (constant) image.
    """
    if blur_sigma < 0:
        raise ValueError(f"blur_sigma must be >= 0 pixels, got {blur_sigma}")
    grey = _grey(images)
    if content is not None:
        grey = _fill_outside_content(grey, content)
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
        saliency = gaussian_blur(saliency, blur_sigma)
    saliency = saliency[:, 0, pad_h : pad_h + height, pad_w : pad_w + width]
    # A flat image has no salient region; its map would be FFT round-off.
    saliency = saliency.masked_fill(flat[:, None, None], 0.0)
    return _normalize_per_image(saliency, content)


def gradient_saliency(
    logits_fn: Callable[[Tensor], Tensor], images: Tensor, labels: Tensor, content: Tensor | None = None
) -> Tensor:
    """Input-gradient saliency |d logit_y / d x|, max over channels.

    The model is called as it is (its train/eval mode is not changed; in train mode its
    BatchNorm statistics update as for any forward pass); only the gradient with respect to
    the input is computed, so no parameter's ``.grad`` is touched.

    Args:
        logits_fn: maps images [B, C, H, W] to logits [B, num_classes].
        images: float [B, C, H, W].
        labels: int64 [B], the class whose logit is differentiated for each image.
        content: bool [B, H, W] or None, as for `spectral_residual_saliency`: padding pixels are 0.

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
    return _normalize_per_image(grad.detach().abs().amax(dim=1), content)


def random_saliency(images: Tensor, generator: torch.Generator, content: Tensor | None = None) -> Tensor:
    """A map of independent uniform values: its argmax, the centre of a box mask, is a uniformly
    random pixel of the image's own content. The control of a saliency (Cutout with a minor label).

    Args:
        images: float [B, C, H, W]; only their shape and device are used.
        generator: the step's host generator (the draw is on the host, then copied: the same maps
            on every device).
        content: bool [B, H, W] or None, as for `spectral_residual_saliency`: padding pixels are 0.

    Returns:
        float32 [B, H, W] in [0, 1).
    """
    batch, _, height, width = images.shape
    maps = on_device(lambda: torch.rand((batch, height, width), generator=generator), images.device)
    return maps if content is None else maps.masked_fill(~content.to(images.device), 0.0)


def cam_saliency(
    logits_fn: Callable[[Tensor], Tensor],
    feature_module: torch.nn.Module,
    images: Tensor,
    labels: Tensor,
    content: Tensor | None = None,
) -> Tensor:
    """Grad-CAM (Selvaraju et al., ICCV 2017) of each image's own label on the output A of
    `feature_module` (the last convolutional block): ReLU(sum_k alpha_k A_k), alpha_k the spatial
    mean of d logit_y / d A_k, upsampled bilinearly to the image's size. With global average pooling
    and a linear classifier it is the class activation map (Zhou et al., CVPR 2016) up to a scale.

    The model is called as it is (its mode is not changed); no parameter's ``.grad`` is touched.

    Args:
        logits_fn: maps images [B, C, H, W] to logits [B, num_classes], through `feature_module`.
        feature_module: the module whose output [B, K, h, w] is weighed.
        images: float [B, C, H, W].
        labels: int64 [B].
        content: bool [B, H, W] or None, as for `spectral_residual_saliency`: padding pixels are 0.

    Returns:
        float32 [B, H, W], each map min-max normalised to [0, 1] (all zeros where no class evidence
        is positive).
    """
    captured: list[Tensor] = []
    handle = feature_module.register_forward_hook(lambda _module, _inputs, output: captured.append(output))
    try:
        with torch.enable_grad():
            logits = logits_fn(images.detach())
            if not captured:
                raise ValueError("cam: the feature module did not run in the network's forward pass")
            features = captured[-1]
            picked = logits.gather(1, labels.to(logits.device).long().view(-1, 1)).sum()
            (grad,) = torch.autograd.grad(picked, features)
    finally:
        handle.remove()
    weights = grad.detach().float().mean(dim=(2, 3), keepdim=True)
    cam = F.relu((weights * features.detach().float()).sum(dim=1, keepdim=True))
    cam = F.interpolate(cam, size=images.shape[-2:], mode="bilinear", align_corners=False)[:, 0]
    return _normalize_per_image(cam, content)
