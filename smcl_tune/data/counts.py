"""Training images per class under the long-tailed protocol: plain arithmetic, no torch, so that
`smcl-tune validate` can check a split without loading torch."""

from __future__ import annotations

from smcl_tune.errors import DataCountError


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
    images under the protocol). Raises DataCountError naming a class that would train on nothing.
    """
    counts = []
    for label, (pool, target) in enumerate(zip(pool_counts, targets)):
        name = f"class {label} ({class_names[label]})" if label < len(class_names) else f"class {label}"
        if pool < val_per_class + 1:
            raise DataCountError(
                f"{name}: the training pool has {pool} images, needs at least val_per_class + 1 = "
                f"{val_per_class + 1}; lower data.val_per_class or add images"
            )
        if target < 1:
            raise DataCountError(
                f"{name}: the long-tailed subset keeps no training image of it (n_max * IF^(-i/(C-1)) rounds "
                "to 0); lower data.imbalance_factor or raise data.n_max"
            )
        counts.append(min(target, pool - val_per_class))
    return counts


def held_out_note(
    pool_counts: list[int], targets: list[int], counts: list[int], val_per_class: int, class_names: list[str]
) -> str | None:
    """One line on the classes that train on fewer images than the subset's: because their pool is
    smaller than the subset's count (n_max above what the source holds, or an imbalance factor below
    a file list's own), which flattens the long tail, or because the pool also holds the validation
    split. None when no class does."""
    short = [label for label, (target, count) in enumerate(zip(targets, counts)) if count < target]
    if not short:
        return None

    def name(label: int) -> str:
        return class_names[label] if label < len(class_names) else f"class {label}"

    lacking = [label for label in short if pool_counts[label] < targets[label]]
    held = [label for label in short if label not in lacking]
    parts = []
    if lacking:
        shown = ", ".join(f"{name(label)} {pool_counts[label]} of {targets[label]}" for label in lacking[:3])
        parts.append(
            f"{len(lacking)} {'class holds' if len(lacking) == 1 else 'classes hold'} fewer images than the subset "
            f"keeps of {'it' if len(lacking) == 1 else 'them'} ({shown}{', ...' if len(lacking) > 3 else ''}): the "
            f"training counts run from {max(counts)} to {min(counts)}, an imbalance factor of "
            f"{max(counts) / min(counts):.1f}"
        )
    if len(held) == 1:
        label = held[0]
        parts.append(
            f"class {label} ({name(label)}): {counts[label]} training images instead of {targets[label]} "
            f"(validation holds {val_per_class} out)"
        )
    elif held:
        shown = ", ".join(name(label) for label in held[:3]) + (", ..." if len(held) > 3 else "")
        parts.append(
            f"validation holds {val_per_class} per class out: {len(held)} classes ({shown}) train on up to "
            f"{max(targets[label] - counts[label] for label in held)} fewer images than the subset's"
        )
    return "; ".join(parts)
