import math

import pytest
import torch
import torch.nn.functional as F

from smcl_tune.method.saliency import gradient_saliency, spectral_residual_saliency

LUMA = torch.tensor([0.299, 0.587, 0.114])


def disc_image(centre_y: int, centre_x: int, radius: float = 5.0, size: int = 32):
    rows, cols = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    distance = ((rows - centre_y) ** 2 + (cols - centre_x) ** 2).float().sqrt()
    image = torch.tensor([0.8, 0.7, 0.6])[:, None, None].repeat(1, size, size)
    inside = distance <= radius
    for channel, value in enumerate((0.1, 0.2, 0.9)):
        image[channel][inside] = value
    return image, distance


def reference_spectral_residual(image: torch.Tensor, sigma: float) -> torch.Tensor:
    """One image [C, H, W] at a time, 2-D Gaussian kernel instead of a separable one."""
    image = image.double()
    grey = (image * LUMA.double()[:, None, None]).sum(0) if image.shape[0] == 3 else image[0]
    grey = grey - grey.mean()
    height, width = grey.shape
    pad_h, pad_w = height // 2, width // 2
    padded = F.pad(grey[None, None], (pad_w, pad_w, pad_h, pad_h), mode="reflect")[0, 0]
    spectrum = torch.fft.fft2(padded)
    amplitude = spectrum.abs()
    log_amplitude = torch.log(amplitude + 1e-4 * amplitude.max() + 1e-30)
    local_mean = torch.zeros_like(log_amplitude)
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            local_mean += torch.roll(log_amplitude, shifts=(dy, dx), dims=(0, 1)) / 9
    residual = log_amplitude - local_mean
    field = torch.fft.ifft2(torch.exp(residual) * torch.exp(1j * torch.angle(spectrum)))
    saliency = field.abs() ** 2
    radius = math.ceil(3 * sigma)
    offsets = torch.arange(-radius, radius + 1, dtype=torch.float64)
    kernel_1d = torch.exp(-0.5 * (offsets / sigma) ** 2)
    kernel_2d = torch.outer(kernel_1d, kernel_1d)
    kernel_2d = kernel_2d / kernel_2d.sum()
    blurred = F.conv2d(F.pad(saliency[None, None], (radius,) * 4, mode="reflect"), kernel_2d[None, None])[0, 0]
    cropped = blurred[pad_h : pad_h + height, pad_w : pad_w + width]
    return (cropped - cropped.min()) / (cropped.max() - cropped.min())


def test_spectral_residual_shape_range_and_dtype():
    generator = torch.Generator().manual_seed(0)
    for shape in [(3, 3, 32, 32), (2, 1, 17, 23), (1, 3, 5, 1), (2, 1, 1, 1)]:
        images = torch.randn(shape, generator=generator, dtype=torch.float64)
        maps = spectral_residual_saliency(images)
        assert maps.shape == (shape[0], shape[2], shape[3])
        assert maps.dtype == torch.float32
        assert torch.isfinite(maps).all()
        assert maps.min() >= 0 and maps.max() <= 1
        if shape[2] * shape[3] > 1:
            assert torch.allclose(maps.flatten(1).amax(1), torch.ones(shape[0]))


def test_spectral_residual_constant_image_gives_zeros():
    maps = spectral_residual_saliency(torch.full((2, 3, 32, 32), 0.4))
    assert not torch.isnan(maps).any()
    assert torch.equal(maps, torch.zeros(2, 32, 32))


def test_spectral_residual_rejects_two_channel_images():
    with pytest.raises(ValueError, match="1 or 3 channels"):
        spectral_residual_saliency(torch.zeros(1, 2, 8, 8))


def test_spectral_residual_ignores_normalisation():
    images = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    maps = spectral_residual_saliency(images)
    renormalised = spectral_residual_saliency((images - 0.45) / 0.25)
    assert torch.allclose(maps, renormalised, atol=1e-3)


@pytest.mark.parametrize("centre", [(10, 22), (22, 10), (16, 16), (6, 6), (25, 26), (26, 5), (4, 28)])
def test_spectral_residual_peak_lies_on_the_object(centre):
    image, distance = disc_image(*centre)
    maps = spectral_residual_saliency(image[None])
    peak = int(maps[0].flatten().argmax())
    peak_y, peak_x = divmod(peak, 32)
    assert distance[peak_y, peak_x] <= 5 + 2
    assert 0 < peak_y < 31 and 0 < peak_x < 31


def test_spectral_residual_batch_matches_per_image_reference():
    generator = torch.Generator().manual_seed(2)
    smooth = F.avg_pool2d(torch.rand(3, 3, 32, 32, generator=generator), 5, 1, 2)
    objects = torch.stack([disc_image(10, 22)[0], disc_image(20, 8)[0]])
    images = torch.cat([smooth, objects])
    for sigma in (1.5, 0.8):
        batched = spectral_residual_saliency(images, blur_sigma=sigma)
        for index, image in enumerate(images):
            expected = reference_spectral_residual(image, sigma).float()
            assert torch.allclose(batched[index], expected, atol=2e-3), index
    grey = images[:2, :1]
    batched = spectral_residual_saliency(grey)
    for index in range(2):
        expected = reference_spectral_residual(grey[index], 1.5).float()
        assert torch.allclose(batched[index], expected, atol=2e-3)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_spectral_residual_runs_on_the_images_device():
    images = torch.rand(4, 3, 32, 32, generator=torch.Generator().manual_seed(3))
    on_device = spectral_residual_saliency(images.cuda())
    assert on_device.device.type == "cuda"
    assert torch.allclose(on_device.cpu(), spectral_residual_saliency(images), atol=1e-3)


def linear_model_with_peak(peak_class: int, peak_pixel: tuple[int, int, int]) -> torch.nn.Module:
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 8 * 8, 4))
    with torch.no_grad():
        model[1].weight.uniform_(-0.1, 0.1, generator=torch.Generator().manual_seed(4))
        weight = model[1].weight.view(4, 3, 8, 8)
        weight[(peak_class, *peak_pixel)] = -5.0
    return model


@pytest.mark.parametrize("training", [True, False])
def test_gradient_saliency_peaks_at_the_largest_weight(training):
    model = linear_model_with_peak(peak_class=2, peak_pixel=(1, 5, 3))
    model.train(training)
    images = torch.randn(2, 3, 8, 8, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        maps = gradient_saliency(model, images, torch.tensor([2, 0]))
    assert maps.shape == (2, 8, 8)
    assert maps.min() >= 0 and maps.max() <= 1
    assert divmod(int(maps[0].flatten().argmax()), 8) == (5, 3)
    assert divmod(int(maps[1].flatten().argmax()), 8) != (5, 3)
    assert all(parameter.grad is None for parameter in model.parameters())
    assert model.training is training
    assert not images.requires_grad


def test_an_image_padded_at_one_border_never_gets_its_peak_or_box_centre_on_the_padding():
    from smcl_tune.data.augment import random_crop_flip
    from smcl_tune.method.masking import box_mask, salient_peaks, threshold_mask

    # Real-looking images: a textured field with an object; the crop pads one border or two with zeros.
    generator = torch.Generator().manual_seed(0)
    images = (torch.rand(64, 3, 32, 32, generator=generator) * 60 + 100).round().to(torch.uint8)
    images[:, :, 12:20, 12:20] = 230
    cropped, content = random_crop_flip(images, generator, padding=4)
    padded = ~content
    assert bool(padded.flatten(1).any(1).float().mean() > 0.5)  # most images have some padding
    pixels = cropped.float()
    for saliency in (
        spectral_residual_saliency(pixels, 1.5, content),
        gradient_saliency(lambda x: x.mean(dim=(2, 3))[:, :2] * x.flatten(1)[:, :2], pixels, torch.zeros(64), content),
    ):
        peaks = salient_peaks(saliency, content)
        assert not bool(padded.flatten(1).gather(1, peaks[:, None]).any())
        assert float(saliency[padded].abs().max()) == 0.0
        assert not bool((threshold_mask(saliency, 0.0, content)[:, 0].bool() & padded).any())
        boxes = box_mask(saliency, torch.full((64,), 0.95), content)  # small boxes: centre = peak
        for index in range(64):
            rows, cols = torch.nonzero(boxes[index, 0], as_tuple=True)
            centre = (int(rows.float().mean().round()), int(cols.float().mean().round()))
            assert bool(content[index][centre]), f"image {index}: box centre {centre} on the padding"
    # the padding filled with the image's mean grey: the spectral residual's peak on the object (230),
    # and each map normalised over the image's own pixels, from 0 to 1
    saliency = spectral_residual_saliency(pixels, 1.5, content)
    assert torch.equal(saliency.masked_fill(padded, torch.inf).flatten(1).min(1).values, torch.zeros(64))
    assert torch.equal(saliency.flatten(1).max(1).values, torch.ones(64))
    peaks = salient_peaks(saliency, content)
    on_object = cropped[:, 0].flatten(1).gather(1, peaks[:, None]) == 230
    assert float(on_object.float().mean()) >= 0.9
    # without the content mask, the padding's edge draws the spectral-residual peak for many images
    unaware = salient_peaks(spectral_residual_saliency(pixels, 1.5))
    assert bool(padded.flatten(1).gather(1, unaware[:, None]).float().mean() > 0.2)


def test_gradient_saliency_takes_the_largest_channel_of_each_pixel():
    # pixel (1, 1): a weight of 1 on the red channel only; pixel (5, 6): 0.6 on all three channels
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 8 * 8, 1, bias=False))
    with torch.no_grad():
        weight = torch.zeros(3, 8, 8)
        weight[0, 1, 1] = 1.0
        weight[:, 5, 6] = 0.6
        model[1].weight.copy_(weight.view(1, -1))
    maps = gradient_saliency(model, torch.randn(1, 3, 8, 8), torch.zeros(1))
    assert divmod(int(maps[0].flatten().argmax()), 8) == (1, 1)  # the channels' max (SMCL.md), not their mean
    assert float(maps[0, 5, 6]) == pytest.approx(0.6)
