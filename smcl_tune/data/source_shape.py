"""Checking a trial's data by paths and counts, before anything starts (`validate` and `run`).

Nothing is downloaded or decoded (of an image folder, the first images' headers are read), and
torch is not loaded: listing the files of a folder or a list is the check.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from smcl_tune.config import DataConfig
from smcl_tune.data.cifar_files import check_cifar, cifar_class_names
from smcl_tune.data.counts import held_out_note, subset_targets, training_counts
from smcl_tune.data.file_listing import file_list_listing, folder_and_zip_note, image_folder_listing, overlap_note
from smcl_tune.data.synthetic_classes import SYNTHETIC_POOL_PER_CLASS, class_name

CIFAR_CLASSES = {"cifar10": 10, "cifar100": 100}
CIFAR_POOL_PER_CLASS = {"cifar10": 5000, "cifar100": 500}  # training images per class
DEFAULT_N_MAX = {"cifar10": 5000, "cifar100": 500, "synthetic": SYNTHETIC_POOL_PER_CLASS}


@dataclass(frozen=True)
class SourceShape:
    """What a source holds, known without decoding an image."""

    pool_counts: list[int]  # training pool images per class
    class_names: list[str]
    has_val: bool  # a validation pool of its own (else validation is drawn from the training pool)
    note: str | None  # for the user, e.g. a download still to come


def _synthetic_shape(config: DataConfig) -> SourceShape:
    per_class = config.n_max or SYNTHETIC_POOL_PER_CLASS
    return SourceShape([per_class] * config.num_classes, [class_name(c) for c in range(config.num_classes)], True, None)


def _cifar_shape(config: DataConfig) -> SourceShape:
    root = Path(config.root or "")
    note = check_cifar(config.source, root, config.download)
    classes = CIFAR_CLASSES[config.source]
    names = cifar_class_names(config.source, root) or [f"class_{c}" for c in range(classes)]
    return SourceShape([CIFAR_POOL_PER_CLASS[config.source]] * classes, names, False, note)


def _image_folder_shape(config: DataConfig) -> SourceShape:
    """Listing the files is the check."""
    root = Path(config.root or "")
    listing = image_folder_listing(root, config.image_size)
    return SourceShape(listing.train_counts(), listing.class_names, False, folder_and_zip_note(root))


def _file_list_shape(config: DataConfig) -> SourceShape:
    listing = file_list_listing(Path(config.root or ""))
    return SourceShape(listing.train_counts(), listing.class_names, True, overlap_note(listing))


# data.source -> how its shape is known; the names are DataConfig.source's (and data.sources.SOURCES's).
SHAPES: dict[str, Callable[[DataConfig], SourceShape]] = {
    "synthetic": _synthetic_shape,
    "cifar10": _cifar_shape,
    "cifar100": _cifar_shape,
    "image_folder": _image_folder_shape,
    "file_list": _file_list_shape,
}


def describe_source(config: DataConfig) -> SourceShape:
    """Check that the source's files are where the config says, without downloading or decoding.

    Raises DataSourceError naming the path.
    """
    return SHAPES[config.source](config)


def n_max(config: DataConfig, pool_counts: list[int]) -> int:
    """The head class's size under the protocol: as configured, else the source's default, else the largest pool."""
    if config.n_max is not None:
        return config.n_max
    return DEFAULT_N_MAX.get(config.source, max(pool_counts))


def check_trial_data(config: DataConfig) -> tuple[str | None, str | None]:
    """What `build_trial_data` would refuse, found without downloading or decoding an image: the
    source's paths, and a class the subset or the validation split would leave without training
    images. Returns two notes for the user, each or both None: on the source (e.g. a download still
    to come) and on the subset's counts; raises DataSourceError."""
    shape = describe_source(config)
    targets = subset_targets(
        shape.pool_counts, n_max(config, shape.pool_counts), config.subset_imbalance_factor, config.profile
    )
    held_out = 0 if shape.has_val else config.val_per_class
    counts = training_counts(shape.pool_counts, targets, held_out, shape.class_names)
    return shape.note, held_out_note(shape.pool_counts, targets, counts, held_out, shape.class_names)
