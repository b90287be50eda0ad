"""The method's numbers that a step computes with, apart from its shapes and kernels.

In a trial they are the configuration's floats. A fused group's recorded step (a CUDA graph,
trial/fused/group_graphs.py) reads them from tensors of its slots instead, so a member that
refills a slot brings its own values to the kernels recorded for its predecessor: the graph is
kept, not recorded again (trial/fused/slot_values.py). A tensor's value was checked with the
configuration; the step never reads it back to the host (which would wait for the device).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import SupportsFloat

from torch import Tensor

from smcl_tune.config import MethodConfig

Number = float | Tensor
HostNumber = float | SupportsFloat  # read on the host, by float(), when a draw is made


@dataclass(frozen=True)
class StepValues:
    temperature: Number  # tau of the supervised contrastive loss
    loss_weight: Number  # w in L = L_MCE + w * L_MSC; whether it is 0 is the step's shape (StepSettings)
    saliency_threshold: Number
    box_alpha: HostNumber  # Beta(alpha, alpha), drawn on the host
    ldam_max_margin: Number
    ldam_scale: Number

    @classmethod
    def of(cls, method: MethodConfig) -> StepValues:
        return cls(**{name: getattr(method, name) for name in value_fields()})


def value_fields() -> tuple[str, ...]:
    """The MethodConfig fields a step reads as values (StepValues' fields)."""
    return tuple(field.name for field in fields(StepValues))
