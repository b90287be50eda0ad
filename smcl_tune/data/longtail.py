"""The long-tailed subset of a training pool, its validation split, and the shot groups."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import torch

from smcl_tune.data.pool import DataSourceError
from smcl_tune.metrics import SHOT_GROUPS

log = logging.getLogger(__name__)


def class_counts(n_max: int, num_classes: int, imbalance_factor: float, profile: str = "exp") -> list[int]:
    """Training images per class, class 0 the head.

    exp: `int(n_max * IF^(-i/(C-1)))` (Cao et al. 2019, LDAM); step: the first half of the
    classes keep n_max, the second half `int(n_max / IF)`.
    """
    if num_classes < 2:
        raise ValueError(f"num_classes: must be >= 2, got {num_classes}")
    if imbalance_factor < 1:
        raise ValueError(f"imbalance_factor: must be >= 1, got {imbalance_factor}")
    if profile == "exp":
        return [int(n_max * imbalance_factor ** (-i / (num_classes - 1))) for i in range(num_classes)]
    if profile == "step":
        head = num_classes // 2
        return [n_max] * head + [int(n_max / imbalance_factor)] * (num_classes - head)
    raise ValueError(f"profile: must be 'exp' or 'step', got {profile!r}")


def shuffled_members(labels: torch.Tensor, num_classes: int, generator: torch.Generator) -> list[torch.Tensor]:
    """For each class, the indices of its images in a random order drawn from `generator`.

    The one place that picks images per class: a subset or a split takes a prefix of each list.
    """
    members = []
    for label in range(num_classes):
        indices = torch.nonzero(labels == label, as_tuple=False).flatten()
        members.append(indices[torch.randperm(len(indices), generator=generator)])
    return members


def subset_targets(pool_counts: list[int], n_max: int, imbalance_factor: float | None, profile: str) -> list[int]:
    """Training images wanted per class: the protocol's counts, or the whole pool when
    `imbalance_factor` is None (a list that is long-tailed as published)."""
    if imbalance_factor is None:
        return list(pool_counts)
    return class_counts(n_max, len(pool_counts), imbalance_factor, profile)


def training_counts(
    pool_counts: list[int], targets: list[int], val_per_class: int, class_names: list[str]
) -> list[int]:
    """Training images per class once `val_per_class` are held out of each class's pool.

    A class whose pool cannot hold both keeps what is left (the head class gives up its validation
    images under the protocol). Raises DataSourceError naming a class that would train on nothing.
    """
    counts = []
    for label, (pool, target) in enumerate(zip(pool_counts, targets)):
        name = f"class {label} ({class_names[label]})" if label < len(class_names) else f"class {label}"
        if pool < val_per_class + 1:
            raise DataSourceError(
                f"{name}: the training pool has {pool} images, needs at least val_per_class + 1 = "
                f"{val_per_class + 1}; lower data.val_per_class or add images"
            )
        if target < 1:
            raise DataSourceError(
                f"{name}: the long-tailed subset keeps no training image of it (n_max * IF^(-i/(C-1)) rounds "
                "to 0); lower data.imbalance_factor or raise data.n_max"
            )
        count = min(target, pool - val_per_class)
        if count < target:
            log.info(
                "%s: %d training images instead of %d (validation holds %d out)", name, count, target, val_per_class
            )
        counts.append(count)
    return counts


def ldam_members(labels: torch.Tensor, num_classes: int) -> list[torch.Tensor]:
    """For each class, its indices in pool order shuffled as Cao et al.'s LDAM-DRW code shuffles
    them (IMBALANCECIFAR*.gen_imbalanced_data after `np.random.seed(0)`): one shuffle per class,
    in label order, by NumPy's legacy generator seeded with 0. A generator of its own: NumPy's
    global state is left alone. Keeping the first n_i of each gives the reference's subset."""
    generator = np.random.RandomState(0)
    values = labels.numpy()
    members = []
    for label in range(num_classes):
        indices = np.where(values == label)[0]
        generator.shuffle(indices)
        members.append(torch.from_numpy(indices))
    return members


@dataclass(frozen=True)
class LongTailSplit:
    """Indices into a training pool: the long-tailed subset and a balanced validation split."""

    train_indices: torch.Tensor
    val_indices: torch.Tensor
    train_counts: list[int]


def split_long_tailed(
    pool_labels: torch.Tensor,
    target_counts: list[int],
    val_per_class: int,
    seed: int,
    class_names: list[str] | None = None,
    protocol: str = "seeded",
) -> LongTailSplit:
    """Choose the long-tailed subset and a balanced validation split from one training pool.

    seeded: each class's images in an order drawn from `seed` (a generator of its own: the same
    seed gives the same split whatever else touched the global RNGs); the validation images come
    first, the training subset after them. ldam: each class in the order of `ldam_members`; the
    training subset first (with `val_per_class == 0`, exactly the reference's), the validation
    images from what it leaves out. Either way the two never overlap, and a class whose pool
    cannot hold both trains on what is left (see `training_counts`). With `val_per_class == 0` no
    validation is drawn here.
    """
    num_classes = len(target_counts)
    pool_counts = torch.bincount(pool_labels, minlength=num_classes).tolist()
    counts = training_counts(pool_counts, target_counts, val_per_class, class_names or [])
    train_parts, val_parts = [], []
    if protocol == "ldam":
        for order, count in zip(ldam_members(pool_labels, num_classes), counts):
            train_parts.append(order[:count])
            val_parts.append(order[count : count + val_per_class])
    else:
        generator = torch.Generator().manual_seed(seed)
        for order, count in zip(shuffled_members(pool_labels, num_classes, generator), counts):
            val_parts.append(order[:val_per_class])
            train_parts.append(order[val_per_class : val_per_class + count])
    return LongTailSplit(torch.cat(train_parts), torch.cat(val_parts), counts)


def balanced_indices(labels: torch.Tensor, per_class: int, num_classes: int, seed: int) -> torch.Tensor:
    """Up to `per_class` images of each class (all of a class that has fewer), drawn from `seed`."""
    generator = torch.Generator().manual_seed(seed)
    parts = []
    for label, order in enumerate(shuffled_members(labels, num_classes, generator)):
        if len(order) < per_class:
            log.info("class %d: %d validation images available, fewer than %d", label, len(order), per_class)
        parts.append(order[:per_class])
    return torch.cat(parts)


def shot_groups(train_counts: list[int], many_above: int = 100, few_below: int = 20) -> dict[str, list[int]]:
    """Class ids per shot group by training count: many > many_above, few < few_below, medium between."""
    groups: dict[str, list[int]] = {name: [] for name in SHOT_GROUPS}
    for class_id, count in enumerate(train_counts):
        if count > many_above:
            groups["many"].append(class_id)
        elif count < few_below:
            groups["few"].append(class_id)
        else:
            groups["medium"].append(class_id)
    return groups
