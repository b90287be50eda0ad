"""Accuracy per class, balanced accuracy and many / medium / few-shot groups.

An empty group, or a class without evaluation images, is NaN (missing), never 0.
"""

from __future__ import annotations

import math

import torch

from smcl_tune.results import SHOT_GROUPS as SHOT_GROUPS  # imported from here by train and data


def confusion_matrix(predictions: torch.Tensor, labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Counts [true class, predicted class], int64."""
    flat = labels.long() * num_classes + predictions.long()
    return torch.bincount(flat.cpu(), minlength=num_classes * num_classes).reshape(num_classes, num_classes)


def per_class_accuracy(confusion: torch.Tensor) -> torch.Tensor:
    """Recall of each class, float64; NaN for a class with no evaluation images."""
    support = confusion.sum(dim=1).double()
    correct = confusion.diagonal().double()
    return torch.where(support > 0, correct / support.clamp(min=1), torch.full_like(support, math.nan))


def mean_ignoring_missing(values: list[float] | torch.Tensor) -> float:
    """Mean of the non-NaN values; NaN when there are none."""
    values = torch.as_tensor(values, dtype=torch.float64)
    present = values[~torch.isnan(values)]
    return float(present.mean()) if len(present) else math.nan


def accuracy_summary(confusion: torch.Tensor, groups: dict[str, list[int]]) -> dict[str, float]:
    """Top-1, balanced accuracy (mean recall over classes) and the mean recall of each shot group."""
    total = int(confusion.sum())
    per_class = per_class_accuracy(confusion)
    summary = {
        "top1": float(confusion.diagonal().sum()) / total if total else math.nan,
        "balanced_accuracy": mean_ignoring_missing(per_class),
    }
    for name in SHOT_GROUPS:
        members = groups[name]
        summary[name] = mean_ignoring_missing(per_class[members]) if members else math.nan
    return summary


def head_share(confusion: torch.Tensor, many_classes: list[int]) -> float:
    """The share of predictions (columns of a [true, predicted] confusion matrix) that name a
    many-shot class; NaN without predictions or without many-shot classes."""
    predicted = confusion.sum(dim=0).double()
    total = float(predicted.sum())
    if not many_classes or total == 0:
        return math.nan
    return float(predicted[many_classes].sum()) / total
