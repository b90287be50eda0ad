"""What a trial holds, and the checks that refuse a split before anything starts."""

from pathlib import Path

import pytest
import torch
from PIL import Image

from smcl_tune.config import DataConfig
from smcl_tune.data import splits
from smcl_tune.data.augment import channel_statistics
from smcl_tune.data.longtail import shot_groups
from smcl_tune.data.source_shape import check_trial_data
from smcl_tune.data.splits import build_trial_data
from smcl_tune.errors import DataSourceError

PUBLISHED = {"train": [0, 0, 0, 0, 1, 1, 1, 2, 2], "val": [0, 1, 2], "test": [0, 1, 2]}


def _file_lists(root: Path) -> Path:
    """A long-tailed list as published: 4 / 3 / 2 training images."""
    for split, labels in PUBLISHED.items():
        lines = []
        for position, label in enumerate(labels):
            name = f"{split}/{position}.png"
            (root / split).mkdir(parents=True, exist_ok=True)
            Image.new("RGB", (8, 8), (40 * label, 10 * position, 0)).save(root / name)
            lines.append(f"{name} {label}\n")
        (root / f"{split}.txt").write_text("".join(lines))
    return root


def _image_folder(root: Path, per_class: dict[str, int]) -> Path:
    for split, counts in (("train", per_class), ("test", dict.fromkeys(per_class, 2))):
        for name, count in counts.items():
            (root / split / name).mkdir(parents=True)
            for index in range(count):
                Image.new("RGB", (8, 8), (index, 0, 0)).save(root / split / name / f"{index}.png")
    return root


def test_a_file_list_is_used_as_published_unless_a_subset_is_asked_for(tmp_path):
    root = _file_lists(tmp_path)
    published = build_trial_data(DataConfig(source="file_list", root=str(root), image_size=8, val_per_class=1))
    assert published.train_counts == [4, 3, 2]  # no imbalance factor applied on top of the list
    subset = build_trial_data(
        DataConfig(source="file_list", root=str(root), image_size=8, val_per_class=1, imbalance_factor=4)
    )
    assert subset.train_counts == [4, 2, 1]  # int(4 * 4^(-i/2)), asked for
    assert torch.equal(published.train.labels.sort().values, torch.tensor(PUBLISHED["train"]))


def test_a_subset_that_leaves_a_class_without_training_images_is_refused_before_decoding(tmp_path):
    config = DataConfig(source="file_list", root=str(_file_lists(tmp_path)), image_size=8, imbalance_factor=8)
    with pytest.raises(DataSourceError, match=r"class 2 \(class_2\): the long-tailed subset keeps no training image"):
        check_trial_data(config)


def test_an_image_folder_class_too_small_for_its_validation_quota_is_refused_at_the_check(tmp_path):
    root = _image_folder(tmp_path / "folder", {"ant": 30, "bee": 5})
    config = DataConfig(source="image_folder", root=str(root), val_per_class=10, imbalance_factor=5)
    with pytest.raises(
        DataSourceError,
        match=r"class 1 \(bee\): the training pool has 5 images, needs at least "
        r"val_per_class \+ 1 = 11",
    ):
        check_trial_data(config)
    assert check_trial_data(config.model_copy(update={"val_per_class": 4}))[1] == (
        "1 class holds fewer images than the subset keeps of it (bee 5 of 6): the training counts run from 26 "
        "to 1, an imbalance factor of 26.0; class 0 (ant): 26 training images instead of 30 (validation holds 4 out)"
    )


def test_a_pool_smaller_than_the_subsets_count_says_the_long_tail_it_flattens_to(tmp_path):
    # n_max above what the folder holds: the head class keeps its whole pool, the others as asked (40, 12, 4)
    root = _image_folder(tmp_path / "folder", {"ant": 12, "bee": 12, "cat": 12})
    config = DataConfig(source="image_folder", root=str(root), n_max=40, imbalance_factor=10, val_per_class=0)
    assert check_trial_data(config)[1] == (
        "1 class holds fewer images than the subset keeps of it (ant 12 of 40): the training counts run from 12 "
        "to 4, an imbalance factor of 3.0"
    )


def _coloured_folder(root: Path, per_class: dict[str, tuple[int, tuple[int, int, int]]]) -> Path:
    """An image folder whose classes differ in colour, each image with noise of its own."""
    generator = torch.Generator().manual_seed(0)
    for split in ("train", "test"):
        for name, (count, colour) in per_class.items():
            (root / split / name).mkdir(parents=True)
            for index in range(count if split == "train" else 2):
                noise = torch.randint(-30, 31, (8, 8, 3), generator=generator)
                pixels = (torch.tensor(colour) + noise).clamp(0, 255).to(torch.uint8)
                Image.fromarray(pixels.numpy()).save(root / split / name / f"{index}.png")
    return root


def test_the_trial_normalises_by_its_training_images_and_groups_classes_by_the_counts_it_trains_on(
    tmp_path, monkeypatch
):
    root = _coloured_folder(
        tmp_path / "folder", {"ant": (60, (200, 40, 40)), "bee": (30, (40, 200, 40))} | {"cat": (25, (40, 40, 200))}
    )
    # n_max 40 at IF 2 asks for 40 / 28 / 20; validation holds 10 of each out of pools of 60, 30, 25
    config = DataConfig(source="image_folder", root=str(root), n_max=40, imbalance_factor=2, val_per_class=10)
    data = build_trial_data(config.model_copy(update={"many_above": 30, "few_below": 18}))
    assert data.train_counts == [40, 20, 15]
    assert data.groups == shot_groups([40, 20, 15], 30, 18) == {"many": [0], "medium": [1], "few": [2]}
    mean, std = channel_statistics(data.train.images)
    assert torch.equal(data.mean, mean) and torch.equal(data.std, std) and not torch.allclose(mean, std)
    # streamed, the statistics come from a sample of the training images, drawn across its classes (the
    # subset lists them class by class: its first 40 are all red ants)
    streamed = config.model_copy(update={"loader": "stream", "loader_workers": 0})
    assert torch.allclose(build_trial_data(streamed).mean, mean, atol=1e-6)  # a sample of 10,000 holds them all
    monkeypatch.setattr(splits, "STATISTICS_SAMPLE", 40)
    sampled = build_trial_data(streamed).mean
    assert (sampled - mean).abs().max() < 0.1, (sampled, mean)
