"""Batch augmentation and normalisation: crop offsets, flips, padding, channel statistics."""

import torch

from smcl_tune.data.augment import channel_statistics, normalize, random_crop_flip


def _marker_images(batch: int, size: int = 16) -> torch.Tensor:
    """One bright pixel at (row 6, col 5) on black: its position after the crop gives the offset."""
    images = torch.zeros(batch, 3, size, size, dtype=torch.uint8)
    images[:, :, 6, 5] = 255
    return images


def test_crop_offsets_are_uniform_over_the_padding():
    batch = 20000
    out, _ = random_crop_flip(_marker_images(batch), torch.Generator().manual_seed(0), padding=4)
    assert out.dtype == torch.uint8 and out.shape == (batch, 3, 16, 16)
    assert bool((out[:, 0].flatten(1).amax(1) == 255).all())  # every offset keeps the marker inside
    rows = out[:, 0].flatten(1).argmax(1) // 16
    row_shift = 6 - rows  # crop offset minus padding, in -4..4 (flips do not move rows)
    frequencies = torch.bincount(row_shift + 4, minlength=9).double() / batch
    assert torch.allclose(frequencies, torch.full((9,), 1 / 9, dtype=torch.float64), atol=0.01)


def test_half_of_the_images_are_flipped():
    out, _ = random_crop_flip(_marker_images(20000), torch.Generator().manual_seed(2), padding=0)
    cols = out[:, 0].flatten(1).argmax(1) % 16
    assert set(cols.tolist()) == {5, 10}  # column 5 mirrored in a 16-px image is column 10
    assert abs(float((cols == 10).double().mean()) - 0.5) < 0.01


def test_crop_keeps_content_and_pads_with_zeros():
    images = torch.full((4000, 3, 8, 8), 200, dtype=torch.uint8)
    out, content = random_crop_flip(images, torch.Generator().manual_seed(1), padding=4)
    zeros = (out == 0).double().mean()
    # expected zero fraction: 1 - E[(8-|dy|)(8-|dx|)] / 64 with dy, dx uniform on -4..4
    mean_overlap = sum(8 - abs(d) for d in range(-4, 5)) / 9
    assert abs(float(zeros) - (1 - mean_overlap**2 / 64)) < 0.01
    # the content mask is exactly where the image's own pixels (all 200) landed
    assert content.shape == (4000, 8, 8) and content.dtype == torch.bool
    assert torch.equal(content, out[:, 0] == 200)


def test_content_mask_follows_flips_and_one_sided_padding():
    images = torch.full((2000, 3, 6, 10), 9, dtype=torch.uint8)
    out, content = random_crop_flip(images, torch.Generator().manual_seed(5), padding=3)
    assert torch.equal(content, (out != 0).all(dim=1))
    padded_left = ~content[:, :, 0].any(dim=1)
    padded_right = ~content[:, :, -1].any(dim=1)
    assert bool(padded_left.any()) and bool(padded_right.any())  # padding lands on either side


def test_normalize_uses_channel_statistics():
    images = torch.tensor([[[[0]], [[255]], [[51]]]], dtype=torch.uint8)
    out = normalize(images, torch.tensor([0.0, 1.0, 0.1]), torch.tensor([1.0, 1.0, 0.5]))
    assert torch.allclose(out.flatten(), torch.tensor([0.0, 0.0, 0.2]), atol=1e-6)


def test_channel_statistics_in_chunks_match_the_whole_set_at_once():
    images = torch.randint(0, 256, (70, 3, 5, 6), dtype=torch.uint8, generator=torch.Generator().manual_seed(4))
    images[:, 2] //= 4  # channels with different statistics
    mean, std = channel_statistics(images, chunk=16)
    scaled = images.double() / 255
    assert torch.allclose(mean.double(), scaled.mean(dim=(0, 2, 3)), atol=1e-6)
    assert torch.allclose(std.double(), scaled.std(dim=(0, 2, 3)), atol=1e-6)
