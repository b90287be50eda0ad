"""The synthetic background-bias benchmark: determinism, sizes, the background bias (its speed:
benchmarks/synthetic_speed.py)."""

import pytest
import torch

from smcl_tune.config import SyntheticConfig
from smcl_tune.data.sources.synthetic import (
    BACKGROUND_NAMES,
    MAX_CLASSES,
    class_name,
    render_synthetic,
    synthetic_source,
    synthetic_split,
)

SMALL = SyntheticConfig(test_per_class=8, val_pool_per_class=6)


@pytest.fixture(scope="module")
def default_source():
    return synthetic_source(10, SyntheticConfig(), pool_per_class=500, seed=0)


def test_same_seed_gives_identical_images_and_other_seed_differs():
    first = synthetic_source(4, SMALL, pool_per_class=20, seed=7)
    synthetic_split.cache_clear()
    again = synthetic_source(4, SMALL, pool_per_class=20, seed=7)
    other = synthetic_source(4, SMALL, pool_per_class=20, seed=8)
    for split in ("train", "val", "test"):
        assert torch.equal(getattr(first, split).images, getattr(again, split).images)
        assert torch.equal(getattr(first, split).backgrounds, getattr(again, split).backgrounds)
        assert not torch.equal(getattr(first, split).images, getattr(other, split).images)


def test_shapes_dtypes_and_class_counts(default_source):
    source = default_source
    assert source.class_names[:3] == ["red_circle", "green_square", "blue_triangle"]
    for pool, per_class in ((source.train, 500), (source.val, 100), (source.test, 100)):
        assert pool.load(torch.arange(len(pool))).shape == (10 * per_class, 3, 32, 32)
        assert pool.load(torch.tensor([0])).dtype == torch.uint8
        assert pool.labels.dtype == torch.int64
        assert torch.bincount(pool.labels, minlength=10).tolist() == [per_class] * 10
        assert pool.image_size == (32, 32)
        assert pool.foreground_masks.shape == (10 * per_class, 32, 32) and pool.foreground_masks.dtype == torch.bool


def test_load_returns_the_requested_images_in_order(default_source):
    indices = torch.tensor([4999, 3, 1200])
    assert torch.equal(default_source.train.load(indices), default_source.train.images[indices])


def test_training_class_lies_on_its_own_background_with_probability_rho(default_source):
    train = default_source.train
    expected = 0.9 + 0.1 / 10  # the uniform draw lands on the own background too
    for label in range(10):
        backgrounds = train.backgrounds[train.labels == label]
        assert abs((backgrounds == label).float().mean().item() - expected) < 0.045


def test_background_bias_follows_rho_and_num_backgrounds():
    config = SyntheticConfig(rho=0.5, num_backgrounds=3, test_per_class=5, val_pool_per_class=5)
    train = synthetic_source(6, config, pool_per_class=400, seed=1).train
    assert int(train.backgrounds.max()) == 2
    for label in range(6):
        own = (train.backgrounds[train.labels == label] == label % 3).float().mean().item()
        assert abs(own - (0.5 + 0.5 / 3)) < 0.08


def test_test_and_val_backgrounds_are_independent_of_the_label(default_source):
    for pool in (default_source.test, default_source.val):
        for label in range(10):
            counts = torch.bincount(pool.backgrounds[pool.labels == label], minlength=10)
            assert (counts > 0).sum() >= 7
            assert counts.max() <= 30
        assert abs((pool.backgrounds == pool.labels).float().mean().item() - 0.1) < 0.04


def test_splits_share_no_image(default_source):
    seen = {bytes(image.numpy().tobytes()) for image in default_source.train.images}
    for pool in (default_source.val, default_source.test):
        assert not any(image.numpy().tobytes() in seen for image in pool.images)


def test_objects_lie_fully_inside_the_image_and_are_visible(default_source):
    masks = default_source.train.foreground_masks
    border = masks[:, 0, :] | masks[:, -1, :] | masks[:, :, 0] | masks[:, :, -1]
    assert not border.any()
    assert masks.sum(dim=(1, 2)).min() >= 20


def test_object_colour_stands_out_from_every_background_pixel(default_source):
    pool = default_source.test
    for index in range(0, len(pool), 7):
        image, mask = pool.images[index].int(), pool.foreground_masks[index]
        colour = image[:, mask][:, 0]
        assert (image[:, mask] == colour.view(3, 1)).all()
        distance = (image[:, ~mask] - colour.view(3, 1)).abs().max(dim=0).values
        assert distance.min() >= 30


def test_generation_leaves_the_global_rng_untouched():
    state = torch.get_rng_state()
    synthetic_source(3, SMALL, pool_per_class=9, seed=99)
    assert torch.equal(state, torch.get_rng_state())


def test_more_than_ten_classes_all_differ():
    names = [class_name(label) for label in range(MAX_CLASSES)]
    assert len(set(names)) == MAX_CLASSES
    source = synthetic_source(20, SMALL, pool_per_class=3, seed=0)
    assert len(source.class_names) == 20 and source.class_names[10] != source.class_names[0]
    with pytest.raises(ValueError, match="num_classes"):
        synthetic_split(MAX_CLASSES + 1, 1, 32, 10, None, 0, "test")


def test_object_scale_follows_image_size():
    labels, backgrounds = torch.zeros(400, dtype=torch.long), torch.arange(400) % len(BACKGROUND_NAMES)
    small = render_synthetic(labels, backgrounds, 32, torch.Generator().manual_seed(0))
    large = render_synthetic(labels, backgrounds, 64, torch.Generator().manual_seed(0))
    assert large.images.shape == (400, 3, 64, 64)
    ratio = large.masks.sum().item() / small.masks.sum().item()
    assert 3.5 < ratio < 4.5
    radius = torch.sqrt(small.masks.sum(dim=(1, 2)).float() / torch.pi)  # class 0 is a disk
    assert radius.min() > 4.5 and radius.max() < 9.5
