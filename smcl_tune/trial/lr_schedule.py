"""Learning-rate factor per step: linear warm-up, then step decay, cosine or one-cycle."""

from __future__ import annotations

import math
from collections.abc import Callable

from smcl_tune.config import TrainingConfig


def learning_rate_factor(training: TrainingConfig, epoch: int, step: int, steps_per_epoch: int) -> float:
    """Multiplier of the base lr for step `step` (0-based) of epoch `epoch` (0-based).

    step: linear warm-up over `warmup_epochs`, then the factor of the last milestone reached
    (reference CIFAR recipe: x0.01 from epoch 160, x0.0001 from 180, Cao et al. 2019).
    cosine: warm-up, then half a cosine down to 0 at the last epoch.
    onecycle: linear rise over the first 30% of training from 1/25, then cosine down to 0.
    """
    total = training.epochs
    epoch_progress = epoch + step / steps_per_epoch
    if training.schedule == "onecycle":
        rise = 0.3 * total
        if epoch_progress < rise:
            return 1 / 25 + (1 - 1 / 25) * epoch_progress / rise
        return 0.5 * (1 + math.cos(math.pi * (epoch_progress - rise) / (total - rise)))
    warmup = training.warmup_epochs
    if warmup > 0 and epoch_progress < warmup:
        return (epoch_progress + 1 / steps_per_epoch) / warmup
    if training.schedule == "cosine":
        span = max(total - warmup, 1e-12)
        return 0.5 * (1 + math.cos(math.pi * min(1.0, (epoch_progress - warmup) / span)))
    factor = 1.0
    for milestone, milestone_factor in zip(training.milestones, training.milestone_factors):
        if epoch_progress >= milestone:
            factor = milestone_factor
    return factor


def epoch_learning_rate(training: TrainingConfig, epoch: int, steps_per_epoch: int) -> Callable[[int], float]:
    """The learning rate of each step of epoch `epoch`, by the step's index."""
    return lambda step: training.lr * learning_rate_factor(training, epoch, step, steps_per_epoch)
