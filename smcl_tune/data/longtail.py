"""The long-tailed subset of a training pool, its validation split, and the shot groups."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import torch

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
) -> LongTailSplit:
    """Choose the long-tailed subset and a balanced validation split from one training pool.

    The validation images are held out first, so that they are never in the training subset;
    a class whose pool holds fewer than `target + val_per_class` images trains on what is left
    (CIFAR's head class keeps its whole pool under the protocol, so it gives up `val_per_class`).
    With `val_per_class == 0` no validation is drawn here (the source has its own).
    The draw uses a generator of its own: the same seed gives the same split whatever else
    touched the global RNGs.
    """
    generator = torch.Generator().manual_seed(seed)
    train_parts, val_parts, counts = [], [], []
    for label, order in enumerate(shuffled_members(pool_labels, len(target_counts), generator)):
        if len(order) < val_per_class + 1:
            raise ValueError(
                f"class {label}: the training pool has {len(order)} images, "
                f"needs at least val_per_class + 1 = {val_per_class + 1}"
            )
        count = min(target_counts[label], len(order) - val_per_class)
        if count < target_counts[label]:
            log.info(
                "class %d: %d training images instead of %d (validation holds %d out)",
                label,
                count,
                target_counts[label],
                val_per_class,
            )
        val_parts.append(order[:val_per_class])
        train_parts.append(order[val_per_class : val_per_class + count])
        counts.append(count)
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
