import math

import pytest
import torch

from smcl_tune.method.masking import (
    box_mask,
    compose,
    fill_masked,
    mask_area,
    salient_peaks,
    sample_beta,
    soft_labels,
    threshold_mask,
)

from .reference import reference_box, reference_fill, reference_peak, reference_soft_label


def single_hot(points: list[tuple[int, int]], size: int = 32) -> torch.Tensor:
    saliency = torch.zeros(len(points), size, size)
    for index, (row, col) in enumerate(points):
        saliency[index, row, col] = 1.0
    return saliency


def box_centre(mask: torch.Tensor) -> tuple[float, float]:
    rows, cols = torch.nonzero(mask[0], as_tuple=True)
    return rows.float().mean().item(), cols.float().mean().item()


def test_box_is_centred_on_the_saliency_peak():
    peaks = [(12, 19), (16, 16), (9, 22)]
    lam = torch.tensor([0.75, 1 - (15 / 32) ** 2, 0.9])
    masks = box_mask(single_hot(peaks), lam)
    assert masks.shape == (3, 1, 32, 32)
    assert set(masks.unique().tolist()) <= {0.0, 1.0}
    for mask, (row, col) in zip(masks, peaks):
        assert mask[0, row, col] == 1
        centre_row, centre_col = box_centre(mask)
        assert abs(centre_row - row) <= 1 and abs(centre_col - col) <= 1
    assert masks[0].sum() == 16 * 16
    assert masks[1].sum() == 15 * 15
    assert box_centre(masks[1]) == (16.0, 16.0)


def test_unclipped_box_area_is_one_minus_lambda():
    lam = torch.rand(50, generator=torch.Generator().manual_seed(0))
    masks = box_mask(single_hot([(16, 16)] * 50), lam)
    area = mask_area(masks)
    # Rounding each side to whole pixels moves the area by at most about 1/32 per side.
    assert torch.allclose(area, 1 - lam, atol=2 / 32 + 1 / 32**2)


def test_box_is_clipped_at_the_corners():
    masks = box_mask(single_hot([(0, 0), (31, 31), (0, 31)]), torch.full((3,), 0.75))
    top_left = torch.zeros(32, 32)
    top_left[:8, :8] = 1
    bottom_right = torch.zeros(32, 32)
    bottom_right[23:, 23:] = 1
    top_right = torch.zeros(32, 32)
    top_right[:8, 23:] = 1
    assert torch.equal(masks[0, 0], top_left)
    assert torch.equal(masks[1, 0], bottom_right)
    assert torch.equal(masks[2, 0], top_right)


def test_box_of_a_batch_equals_boxes_of_single_images():
    generator = torch.Generator().manual_seed(1)
    saliency = torch.rand(6, 20, 27, generator=generator)
    lam = torch.rand(6, generator=generator)
    batched = box_mask(saliency, lam)
    for index in range(6):
        single = box_mask(saliency[index : index + 1], lam[index : index + 1])
        assert torch.equal(batched[index], single[0])
        # a box of a non-square image has each side in proportion to that side of the image
        assert torch.equal(batched[index, 0], reference_box(saliency[index], float(lam[index])))


def test_threshold_mask_area_does_not_grow_with_the_threshold():
    saliency = torch.rand(4, 32, 32, generator=torch.Generator().manual_seed(2))
    thresholds = torch.linspace(0, 1, 11).tolist()
    areas = torch.stack([mask_area(threshold_mask(saliency, t)) for t in thresholds])
    assert (areas[1:] <= areas[:-1]).all()
    assert torch.equal(areas[0], torch.ones(4))
    assert torch.equal(mask_area(threshold_mask(saliency, 1.01)), torch.zeros(4))
    mask = threshold_mask(saliency, 0.5)
    assert mask.shape == (4, 1, 32, 32)
    assert torch.equal(mask[:, 0].bool(), saliency >= 0.5)
    # M = [S >= t] (SMCL.md): at t = 1 the peak of a normalised map is masked, at t = 0 every pixel
    ramp = torch.tensor([[[0.0, 0.5, 1.0]]])
    assert threshold_mask(ramp, 1.0)[0, 0].tolist() == [[0.0, 0.0, 1.0]]
    assert threshold_mask(ramp, 0.5)[0, 0].tolist() == [[0.0, 1.0, 1.0]]
    assert threshold_mask(ramp, 0.0)[0, 0].tolist() == [[1.0, 1.0, 1.0]]


def test_mask_area_and_compose():
    mask = torch.zeros(2, 1, 4, 4)
    mask[0, 0, :2, :] = 1
    assert torch.equal(mask_area(mask), torch.tensor([0.5, 0.0]))
    background = torch.full((2, 3, 4, 4), 2.0)
    foreground = torch.full((2, 3, 4, 4), -1.0)
    pasted = compose(background, foreground, mask)
    assert torch.equal(pasted[0, :, :2], foreground[0, :, :2])
    assert torch.equal(pasted[0, :, 2:], background[0, :, 2:])
    assert torch.equal(pasted[1], background[1])


def test_soft_labels_mix_in_proportion_to_the_area():
    head = torch.tensor([0, 1, 2, 3])
    minor = torch.tensor([4, 4, 2, 0])
    area = torch.tensor([0.25, 0.0, 0.6, 1.0])
    mixed = soft_labels(head, minor, area, num_classes=5)
    assert mixed.shape == (4, 5)
    assert torch.allclose(mixed.sum(1), torch.ones(4))
    assert torch.allclose(mixed[torch.arange(4), minor][[0, 1, 3]], area[[0, 1, 3]])
    assert torch.allclose(mixed[torch.arange(4), head][[0, 1, 3]], 1 - area[[0, 1, 3]])
    assert torch.equal(mixed[2], torch.tensor([0.0, 0.0, 1.0, 0.0, 0.0]))
    minor_only = soft_labels(head, minor, area, num_classes=5, mode="minor")
    assert torch.equal(minor_only, torch.nn.functional.one_hot(minor, 5).float())
    with pytest.raises(ValueError, match="mode"):
        soft_labels(head, minor, area, num_classes=5, mode="head")


def half_mask(batch: int, size: int) -> torch.Tensor:
    mask = torch.zeros(batch, 1, size, size)
    mask[:, :, size // 4 : 3 * size // 4, :] = 1
    return mask


def test_fill_mean_replaces_only_the_masked_region():
    images = torch.rand(3, 3, 16, 16, generator=torch.Generator().manual_seed(3))
    mask = half_mask(3, 16)
    filled = fill_masked(images, mask, "mean")
    keep = mask.expand_as(images) == 0
    assert torch.equal(filled[keep], images[keep])
    expected = images.mean(dim=(2, 3), keepdim=True).expand_as(images)
    assert torch.allclose(filled[~keep], expected[~keep], atol=1e-6)


def test_fill_noise_replaces_only_the_masked_region_reproducibly():
    generator = torch.Generator().manual_seed(4)
    scale = torch.tensor([0.5, 2.0, 1.0])[None, :, None, None]
    shift = torch.tensor([1.0, -3.0, 0.0])[None, :, None, None]
    images = torch.randn(2, 3, 64, 64, generator=generator) * scale + shift
    mask = half_mask(2, 64)
    filled = fill_masked(images, mask, "noise", torch.Generator().manual_seed(9))
    again = fill_masked(images, mask, "noise", torch.Generator().manual_seed(9))
    assert torch.equal(filled, again)
    keep = mask.expand_as(images) == 0
    assert torch.equal(filled[keep], images[keep])
    noise = filled[:, :, 16:48, :]
    assert not torch.equal(noise, images[:, :, 16:48, :])
    assert torch.allclose(noise.mean(dim=(2, 3)), images.mean(dim=(2, 3)), atol=0.15)
    assert torch.allclose(noise.std(dim=(2, 3)), images.std(dim=(2, 3)), rtol=0.1)
    with pytest.raises(ValueError, match="fill"):
        fill_masked(images, mask, "zeros")


def test_sample_beta_is_reproducible_and_leaves_the_global_rng_alone():
    torch.manual_seed(123)
    state = torch.get_rng_state()
    first = sample_beta(1.0, 8, torch.Generator().manual_seed(5))
    assert torch.equal(torch.get_rng_state(), state)
    second = sample_beta(1.0, 8, torch.Generator().manual_seed(5))
    assert torch.equal(first, second)
    generator = torch.Generator().manual_seed(5)
    assert not torch.equal(sample_beta(1.0, 8, generator), sample_beta(1.0, 8, generator))
    assert first.device.type == "cpu" and first.shape == (8,)
    with pytest.raises(ValueError, match="alpha"):
        sample_beta(0.0, 8, generator)


def test_sample_beta_mean_and_range():
    draws = sample_beta(1.0, 20000, torch.Generator().manual_seed(6))
    assert ((draws >= 0) & (draws <= 1)).all()
    assert abs(draws.mean().item() - 0.5) < 0.01
    # Beta(1, 1) is uniform: a quarter of the draws below 0.25.
    assert abs((draws < 0.25).float().mean().item() - 0.25) < 0.015


def test_soft_labels_background_gives_the_minor_class_what_is_left_of_the_image():
    head, minor = torch.tensor([0, 1, 3]), torch.tensor([4, 2, 3])
    area = torch.tensor([0.25, 0.7, 0.5])
    background = soft_labels(head, minor, area, num_classes=5, mode="background")
    for row in range(3):
        expected = reference_soft_label(int(head[row]), int(minor[row]), float(area[row]), 5, "background")
        assert torch.allclose(background[row], expected)
    assert torch.allclose(background[0], torch.tensor([0.25, 0.0, 0.0, 0.0, 0.75]))


@pytest.mark.parametrize("mode", ["mixed", "minor", "background"])
def test_soft_labels_match_the_reference_row_by_row(mode):
    generator = torch.Generator().manual_seed(8)
    head = torch.randint(0, 6, (20,), generator=generator)
    minor = torch.randint(0, 6, (20,), generator=generator)
    area = torch.rand(20, generator=generator)
    labels = soft_labels(head, minor, area, num_classes=6, mode=mode)
    for row in range(20):
        reference = reference_soft_label(int(head[row]), int(minor[row]), float(area[row]), 6, mode)
        assert torch.allclose(labels[row], reference)


@pytest.mark.parametrize("fill", ["mean", "zero"])
def test_fill_matches_the_reference_pixel_by_pixel(fill):
    images = torch.randn(2, 3, 9, 11, generator=torch.Generator().manual_seed(10))
    mask = (torch.rand(2, 9, 11, generator=torch.Generator().manual_seed(11)) > 0.6).float()
    filled = fill_masked(images, mask.unsqueeze(1), fill)
    for index in range(2):
        assert torch.allclose(filled[index], reference_fill(images[index], mask[index], fill), atol=1e-6)


def reference_blur(image: torch.Tensor, sigma: float) -> torch.Tensor:
    """A 2-D Gaussian of one image [C, H, W], pixel by pixel, reflecting at the borders."""
    radius = math.ceil(3 * sigma)
    channels, height, width = image.shape

    def reflect(index: int, size: int) -> int:
        while index < 0 or index >= size:
            index = -index if index < 0 else 2 * (size - 1) - index
        return index

    weights = {d: math.exp(-0.5 * (d / sigma) ** 2) for d in range(-radius, radius + 1)}
    out = torch.zeros_like(image, dtype=torch.float64)
    for channel in range(channels):
        for row in range(height):
            for col in range(width):
                total = norm = 0.0
                for dy in range(-radius, radius + 1):
                    for dx in range(-radius, radius + 1):
                        weight = weights[dy] * weights[dx]
                        total += weight * float(image[channel, reflect(row + dy, height), reflect(col + dx, width)])
                        norm += weight
                out[channel, row, col] = total / norm
    return out.float()


def test_fill_blur_puts_a_heavy_blur_of_the_image_itself_in_the_hole():
    images = torch.rand(1, 3, 16, 16, generator=torch.Generator().manual_seed(12))
    mask = half_mask(1, 16)
    filled = fill_masked(images, mask, "blur")
    sigma = 16 / 8  # BLUR_FILL_SIGMA of the longer side
    expected = compose(images, reference_blur(images[0], sigma)[None], mask)
    assert torch.allclose(filled, expected, atol=1e-5)
    hole = filled[:, :, 4:12]
    assert float(hole.std()) < 0.5 * float(images[:, :, 4:12].std())  # the detail is gone


def test_masks_never_select_the_crops_padding():
    saliency = torch.rand(5, 12, 12, generator=torch.Generator().manual_seed(13))
    saliency[:, :, :3] = 1.0  # the padding is the most salient part of every map
    content = torch.ones(5, 12, 12, dtype=torch.bool)
    content[:, :, :3] = False
    assert not threshold_mask(saliency, 0.0, content)[:, 0, :, :3].any()
    assert torch.equal(threshold_mask(saliency, 0.5, content)[:, 0].bool(), (saliency >= 0.5) & content)
    peaks = salient_peaks(saliency, content)
    assert bool(((peaks % 12) >= 3).all())
    for index in range(5):
        assert divmod(int(peaks[index]), 12) == reference_peak(saliency[index], content[index])
    lam = torch.full((5,), 0.5)  # boxes wide enough to reach the padding, where they are cut off
    masks = box_mask(saliency, lam, content)
    assert not masks[:, 0, :, :3].any()
    for index in range(5):
        assert torch.equal(masks[index, 0], reference_box(saliency[index], 0.5, content[index]))
    assert bool((salient_peaks(saliency) % 12 < 3).all())  # without the content mask, the padding wins
