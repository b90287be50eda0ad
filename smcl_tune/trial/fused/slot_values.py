"""A fused group's per-slot values, and what a member's recorded step holds fixed.

A CUDA graph fixes its kernels and the memory they read. So that a member refilling a slot can
replay the graphs recorded for its predecessor (FUSION.md: refilling never recaptures), what
differs from trial to trial is read from memory the slot keeps:
- the method's numbers (step_values.py): [N] device tensors, or for box_alpha, which the host's
  Beta draw reads, a host list;
- the step generator: one per slot, whose state becomes the new member's (the recorded draws call
  the slot's generator);
- the learning rate, momentum, weight decay and Nesterov flag ([N] tensors of stacked_sgd.py), the
  weights, statistics and momentum (the stacked tensors), the batches and class weights (copied
  into each graph's buffers).
What is left is the member's recorded shape (`recorded_shape`): the method's choices (its name,
saliency, compose, fill, ...), whether it has a contrastive term, and the saliency's blur (the
size of its kernel). A graph is kept for the members of its recorded shapes.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from smcl_tune.config import MethodConfig
from smcl_tune.method.step import StepSettings
from smcl_tune.method.step_values import StepValues, value_fields

HOST_VALUES = ("box_alpha",)  # read on the host, by the step's draws
# Read by the epoch's plan on the host (which steps mask, the class weights of DRW), not by a step.
PLANNED_FIELDS = ("mask_probability", "mask_start_epoch", "mask_end_epoch", "drw_start_epoch", "drw_beta")
SAMPLER_FIELDS = ("sampler_beta",)  # read by the minor-class sampler, outside the step


def recorded_shape(settings: StepSettings) -> tuple:
    """What a recorded step of this member holds fixed: equal for two members when one's step may
    replay the other's graph (with its own values in the slot's tensors)."""
    left_out = {*value_fields(), *PLANNED_FIELDS, *SAMPLER_FIELDS}
    choices = settings.method.model_dump(mode="json", exclude=left_out)
    return (*sorted(choices.items()), ("contrastive", settings.contrastive_weight > 0), settings.num_classes)


class SlotFloat:
    """A slot's host value, read when a draw is made (float()): the slot's current member's."""

    def __init__(self, values: list[float], slot: int) -> None:
        self.values, self.slot = values, slot

    def __float__(self) -> float:
        return self.values[self.slot]


class SlotValues:
    """Each slot's StepValues: views of [N] device tensors, and SlotFloats of host lists (HOST_VALUES),
    written when a member takes the slot."""

    def __init__(self, methods: Sequence[MethodConfig], device: torch.device) -> None:
        self.size = len(methods)
        names = value_fields()
        self.tensors = {name: torch.zeros(self.size, device=device) for name in names if name not in HOST_VALUES}
        self.host = {name: [0.0] * self.size for name in HOST_VALUES}
        for slot, method in enumerate(methods):
            self.set_slot(slot, method)
        # made once: views of the tensors and readers of the lists, which set_slot writes in place
        self._of_slot = [self._values(slot) for slot in range(self.size)]

    def set_slot(self, slot: int, method: MethodConfig) -> None:
        with torch.no_grad():
            for name, tensor in self.tensors.items():
                tensor[slot] = getattr(method, name)
        for name, values in self.host.items():
            values[slot] = float(getattr(method, name))

    def of_slot(self, slot: int) -> StepValues:
        """The slot's values: what a recorded step reads is whatever the slot holds when it runs."""
        return self._of_slot[slot]

    def _values(self, slot: int) -> StepValues:
        device = {name: tensor[slot] for name, tensor in self.tensors.items()}
        host = {name: SlotFloat(values, slot) for name, values in self.host.items()}
        return StepValues(**device, **host)
