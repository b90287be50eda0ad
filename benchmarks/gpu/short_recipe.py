"""The reference recipe's schedule (SMCL.md: decays x0.01 and x0.0001 at epochs 160 and 180 of
200, a 5-epoch warm-up) at any number of epochs, as the GPU check and the GPU study run it: the
decays at 80% and 90% of the epochs, a warm-up of at most half of them, and below 10 epochs no
decay and a masking window over every epoch (the default, epoch 3 to epochs - 3, would be empty)."""

from __future__ import annotations

REFERENCE_FACTORS = [0.01, 0.0001]


def schedule_at(epochs: int) -> dict:
    """The `training.*` fields of the schedule at `epochs`."""
    milestones = [round(epochs * 0.8), round(epochs * 0.9)] if epochs >= 10 else []
    return {
        "epochs": epochs,
        "warmup_epochs": min(5, epochs // 2),
        "milestones": milestones,
        "milestone_factors": REFERENCE_FACTORS[: len(milestones)],
    }


def mask_window_at(epochs: int) -> dict:
    """The `method.*` fields of the masking window at `epochs` (none: the default window)."""
    return {} if epochs >= 10 else {"mask_start_epoch": 0, "mask_end_epoch": epochs}
