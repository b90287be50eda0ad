"""The long-tailed subset of a training pool, its validation split, and the shot groups."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import torch

from smcl_tune.data.counts import class_counts as class_counts  # imported from here by callers
from smcl_tune.data.counts import held_out_note, training_counts
from smcl_tune.metrics import SHOT_GROUPS

log = logging.getLogger(__name__)


def shuffled_members(labels: torch.Tensor, num_classes: int, generator: torch.Generator) -> list[torch.Tensor]:
    """For each class, the indices of its images in a random order drawn from `generator`.

    The one place that picks images per class: a subset or a split takes a prefix of each list.
    """
    members = []
    for label in range(num_classes):
        indices = torch.nonzero(labels == label, as_tuple=False).flatten()
        members.append(indices[torch.randperm(len(indices), generator=generator)])
    return members


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
    note = held_out_note(pool_counts, target_counts, counts, val_per_class, class_names or [])
    if note:
        log.info("%s", note)
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
