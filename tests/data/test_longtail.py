import numpy as np
import pytest
import torch

from smcl_tune.data.counts import training_counts
from smcl_tune.data.longtail import class_counts, shot_groups, split_long_tailed
from smcl_tune.errors import DataCountError


def test_cifar100_lt_if100_keeps_10847_images_in_35_35_30_groups():
    counts = class_counts(500, 100, 100)
    assert sum(counts) == 10847
    assert counts[0] == 500 and counts[-1] == 5
    groups = shot_groups(counts)
    assert [len(groups[name]) for name in ("many", "medium", "few")] == [35, 35, 30]


def test_cifar100_lt_group_sizes_for_if50_and_if10():
    for factor, sizes in ((50, [41, 41, 18]), (10, [69, 31, 0])):
        groups = shot_groups(class_counts(500, 100, factor))
        assert [len(groups[name]) for name in ("many", "medium", "few")] == sizes


def test_cifar10_lt_if100_keeps_12406_images():
    counts = class_counts(5000, 10, 100)
    assert counts == [5000, 2997, 1796, 1077, 645, 387, 232, 139, 83, 50]
    assert sum(counts) == 12406


def test_step_profile_halves_head_and_tail():
    assert class_counts(500, 10, 10, profile="step") == [500] * 5 + [50] * 5
    assert class_counts(100, 5, 10, profile="step") == [100, 100, 10, 10, 10]  # odd C: the tail has the extra class
    assert class_counts(500, 4, 3, profile="step") == [500, 500, 166, 166]  # int(500 / 3), not rounded


def test_a_split_with_one_class_or_a_pool_its_validation_empties_is_refused():
    with pytest.raises(ValueError, match="num_classes: must be >= 2, got 1"):
        class_counts(500, 1, 10)
    with pytest.raises(
        DataCountError, match=r"class 1 \(b\): the training pool has 10 images, needs at least val_per_class \+ 1 = 11"
    ):
        training_counts([50, 10], [50, 10], 10, ["a", "b"])  # 10 held out of 10: nothing left to train on
    assert training_counts([50, 11], [50, 10], 10, ["a", "b"]) == [40, 1]


def _pool(per_class: int, num_classes: int) -> torch.Tensor:
    return torch.arange(num_classes).repeat_interleave(per_class)[torch.randperm(per_class * num_classes)]


def test_split_is_seeded_by_its_own_generator_not_the_global_rng():
    labels = _pool(60, 5)
    targets = class_counts(50, 5, 10)
    torch.manual_seed(1)
    first = split_long_tailed(labels, targets, val_per_class=5, seed=7)
    torch.manual_seed(2)
    torch.rand(100)
    second = split_long_tailed(labels, targets, val_per_class=5, seed=7)
    other = split_long_tailed(labels, targets, val_per_class=5, seed=8)
    assert torch.equal(first.train_indices, second.train_indices)
    assert torch.equal(first.val_indices, second.val_indices)
    assert not torch.equal(first.train_indices, other.train_indices)


def test_validation_is_balanced_and_disjoint_from_the_training_subset():
    labels = _pool(60, 5)
    split = split_long_tailed(labels, class_counts(60, 5, 10), val_per_class=8, seed=0)
    assert set(split.train_indices.tolist()).isdisjoint(split.val_indices.tolist())
    assert torch.bincount(labels[split.val_indices]).tolist() == [8] * 5
    assert torch.bincount(labels[split.train_indices]).tolist() == split.train_counts
    # the head class keeps its whole pool under the profile, so it gives up the validation images
    assert split.train_counts[0] == 52 and split.train_counts[1:] == class_counts(60, 5, 10)[1:]


def _reference_ldam(labels: np.ndarray, counts: list[int]) -> list[list[int]]:
    """LDAM-DRW's gen_imbalanced_data, re-written here from its description: a global
    np.random.seed(0), then per class in label order the class's indices shuffled and the first
    n_i kept (NumPy's global state is restored afterwards)."""
    saved = np.random.get_state()
    try:
        np.random.seed(0)
        kept = []
        for the_class, the_img_num in zip(np.unique(labels), counts):
            idx = np.where(labels == the_class)[0]
            np.random.shuffle(idx)
            kept.append(sorted(idx[:the_img_num].tolist()))
        return kept
    finally:
        np.random.set_state(saved)


def test_the_ldam_protocol_selects_exactly_the_reference_subsets():
    rng = np.random.default_rng(7)
    labels = np.repeat(np.arange(10), 50)[rng.permutation(500)]  # classes interleaved, as in CIFAR's batches
    counts = class_counts(50, 10, 10)
    before = np.random.get_state()[1].copy()
    split = split_long_tailed(torch.from_numpy(labels), counts, 0, seed=123, protocol="ldam")
    assert np.array_equal(np.random.get_state()[1], before)  # NumPy's global generator untouched
    chosen = split.train_indices.numpy()
    ours = [sorted(chosen[labels[chosen] == label].tolist()) for label in range(10)]
    assert ours == _reference_ldam(labels, counts)
    assert split.train_counts == counts and len(split.val_indices) == 0
    again = split_long_tailed(torch.from_numpy(labels), counts, 0, seed=999, protocol="ldam")
    assert torch.equal(again.train_indices, split.train_indices)  # subset_seed does not move it


def test_the_ldam_protocol_draws_validation_from_what_the_subset_leaves_out():
    labels = np.repeat(np.arange(5), 40)
    counts = class_counts(40, 5, 10)  # 40, 22, 12, 7, 4
    split = split_long_tailed(torch.from_numpy(labels), counts, 5, seed=0, protocol="ldam")
    reference = _reference_ldam(labels, counts)
    chosen = split.train_indices.numpy()
    assert set(chosen.tolist()).isdisjoint(split.val_indices.tolist())
    assert torch.bincount(torch.from_numpy(labels)[split.val_indices]).tolist() == [5] * 5
    assert split.train_counts == [35, 22, 12, 7, 4]  # the head class gives up its validation images
    for label in range(1, 5):  # the others keep exactly the reference subset
        assert sorted(chosen[labels[chosen] == label].tolist()) == reference[label]


def test_ldam_counts_equal_the_reference_formula_for_the_standard_settings():
    for n_max, classes in ((5000, 10), (500, 100)):
        for factor in (10, 50, 100):
            reference = [int(n_max * (1.0 / factor) ** (i / (classes - 1.0))) for i in range(classes)]
            assert class_counts(n_max, classes, factor) == reference
