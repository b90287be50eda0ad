"""A fused group's training step of one fixed shape, whichever members mask: the step a CUDA
graph records (trial/fused/group_graphs.py).

The eager step (FusedGroup.forward) runs the members that mask and those that do not as separate
stacked passes, so its shapes follow each member's own random decision: up to 2^N shapes. This
step runs every member of a masking kind present in the step (some member of that kind masks)
through that kind's masking pass, whether it masks or not, and the other members through the
plain pass (x_b). Each member's own step is then chosen on the device, by `masking` ([N] bool):
- a masking pass starts with x_b, and its BatchNorm layers take their statistics over the rows
  of each member's own step (kept_rows_norm.py): all of them for a member that masks, x_b's
  for one that does not, whose first logits are then its plain pass's, its statistics moved by
  its clean images alone;
- its loss and its share of the epoch's sums are its own step's; the other is left out by
  torch.where, so the gradient that reaches the member's weights is its own step's (the other
  adds exact zeros);
- the optimizer moves the projection head of the members whose step has embeddings.
A member's draws are its eager step's: the draws of a masking pass are marked as the member's
(DrawTape.redraw draws again only for the members that mask), and a member that does not mask
has its generator's state put back after its unused masking inputs.

The price: a member of a kind present that does not mask forwards its kind's 2B (or 3B) images
for its B. At mask_probability 0.5 an SMCL member runs 2B images per step, where its own steps
average 1.5B. (Before the kept rows, a separate plain pass made it 3B: FUSION.md's two options,
measured in docs/RESULTS.md.)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Protocol

import torch

from smcl_tune.method.batch import Batch
from smcl_tune.method.draws import drawing_for
from smcl_tune.method.step import StepInputs, StepOutput, StepSettings, step_inputs, step_losses
from smcl_tune.trial.components import TrialComponents
from smcl_tune.trial.device import autocast
from smcl_tune.trial.epoch import EpochSums
from smcl_tune.trial.fused.kept_rows_norm import KeptRows, kept_heads
from smcl_tune.trial.fused.slot_values import SlotValues
from smcl_tune.trial.fused.stacked_network import MemberView, StackedNetwork
from smcl_tune.trial.fused.stacked_sgd import StackedSGD


class Member(Protocol):
    """What the step reads of a member (group_run.Member)."""

    index: int
    parts: TrialComponents

    @property
    def recorded_shape(self) -> tuple: ...


class FusedGroup(Protocol):
    """What the step reads and moves of a group (group_run.FusedGroup)."""

    network: StackedNetwork
    optimizer: StackedSGD
    device: torch.device
    size: int
    names: list[str]
    members: Sequence[Member]
    values: SlotValues
    counts: torch.Tensor

    def eager_step(
        self,
        members: Mapping[int, Member],
        batches: Mapping[int, Batch],
        weights: Mapping[int, torch.Tensor | None],
        rates: torch.Tensor,
    ) -> tuple[torch.Tensor, dict[int, int]]: ...


MaskingKind = tuple[int, bool]
"""The shape of a member's masking pass: its images per head image (2: [x_b ; x_tilde] or
[x_b ; x_m]; 3: [x_b ; x_tilde ; x_m]) and whether the pass has embeddings."""


def masking_kind(settings: StepSettings) -> MaskingKind | None:
    """The member's masking pass (step_inputs' shapes); None for a method that never masks."""
    if not settings.uses_minor_batch:
        return None
    return (3 if settings.forwards_minor_images else 2), settings.contrastive_weight > 0


@dataclass(frozen=True)
class StepPlan:
    """What a step of fixed shape runs: the members that step (slots, in order), the members of
    the plain pass (x_b: a method that never masks, or a masking kind none of whose members masks
    in this step), and each masking kind present with all its members."""

    members: tuple[int, ...]
    plain: tuple[int, ...]
    kinds: tuple[tuple[MaskingKind, tuple[int, ...]], ...]


def step_plan(members: Mapping[int, Member], batches: Mapping[int, Batch]) -> StepPlan:
    """The plan of a step in which member i steps on batches[i] (a masking batch: i masks)."""
    order = tuple(sorted(batches))
    by_kind: dict[MaskingKind, list[int]] = {}
    present: set[MaskingKind] = set()
    for index in order:
        kind = masking_kind(members[index].parts.settings)
        if kind is not None:
            by_kind.setdefault(kind, []).append(index)
            if batches[index].masks:
                present.add(kind)
    kinds = tuple((kind, tuple(indices)) for kind, indices in sorted(by_kind.items()) if kind in present)
    in_kinds = {index for _, indices in kinds for index in indices}
    return StepPlan(order, tuple(index for index in order if index not in in_kinds), kinds)


def with_minor_stand_in(batch: Batch) -> Batch:
    """A plain batch with its head images standing in for the minor batch its unused masking pass
    needs (same shapes); a masking batch as it is."""
    if batch.masks:
        return batch
    head_images, head_labels, _, _, head_content, _ = batch
    return Batch(head_images, head_labels, head_images, head_labels, head_content, head_content)


def slot_settings(group: FusedGroup, member: Member) -> StepSettings:
    """The member's step settings with its slot's values (slot_values.py): what a recorded step
    reads of them is the slot's memory, whichever member holds the slot when it is replayed."""
    return replace(member.parts.settings, values=group.values.of_slot(member.index))


def _masking_inputs(member: Member, settings: StepSettings, view: MemberView, batch: Batch, masks: bool) -> StepInputs:
    generator = member.parts.generators.steps
    kept = None if masks else generator.get_state()
    with drawing_for(member.index):
        inputs = step_inputs(settings, view, batch, generator)
    if kept is not None:
        generator.set_state(kept)  # the member does not mask: its eager step draws nothing
    return inputs


def _sums(output: StepOutput, inputs: StepInputs) -> torch.Tensor:
    return torch.stack(EpochSums.of_step(output, inputs.labels[: inputs.head_count]))


def _pass(
    group: FusedGroup,
    index: tuple[int, ...],
    inputs: Mapping[int, StepInputs],
    kept: KeptRows | None = None,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """One vmapped pass of the members `index` on their own inputs' images: logits and embeddings."""
    images = torch.stack([inputs[member].images for member in index])
    return group.network.forward(index, images, inputs[index[0]].with_embedding, kept=kept)


def kinds_step(
    group: FusedGroup,
    plan: StepPlan,
    members: Mapping[int, Member],
    batches: Mapping[int, Batch],
    masks: Mapping[int, bool],
    masking: torch.Tensor,
    weights: Mapping[int, torch.Tensor | None],
    rates: torch.Tensor,
) -> tuple[torch.Tensor, dict[int, int]]:
    """One step of the members in `plan`, on `batches` (each with its minor batch or a stand-in).
    Whether member i masks: `masking[i]` on the device, which the recorded kernels read, and
    `masks[i]` on the host, for its draws. `rates`: [N] learning rates. The members' sums
    [N, len(EpochSums)] (float64; zero for a slot that does not step), and the images each member
    composes when it masks.

    A member of a masking kind present in the step runs its kind's pass, [x_b ; x_tilde] or
    [x_b ; x_tilde ; x_m], whether it masks or not. Its BatchNorm statistics are taken over the
    rows of its own step (all of them if it masks, x_b's if not: kept_rows_norm.py), and
    x_b's logits come first, so a member that does not mask gets its plain step's logits and
    statistics from the same pass; its loss is chosen by torch.where (the other adds exact zeros
    to its gradient)."""
    losses: dict[int, torch.Tensor] = {}
    shares: dict[int, torch.Tensor] = {}
    settings = {index: slot_settings(group, members[index]) for index in plan.members}
    with autocast(group.device):
        plain_inputs, masking_inputs = {}, {}
        for index in plan.members:
            batch, view = batches[index], MemberView(group.network, index)
            plain_inputs[index] = step_inputs(settings[index], view, Batch(batch.head_images, batch.head_labels))
        for _, kind_members in plan.kinds:
            for index in kind_members:
                view = MemberView(group.network, index)
                masking_inputs[index] = _masking_inputs(
                    members[index], settings[index], view, batches[index], masks[index]
                )
        if plan.plain:
            logits, _ = _pass(group, plan.plain, plain_inputs)
            for position, index in enumerate(plan.plain):
                output = _losses(group, settings[index], plain_inputs[index], logits[position], None, weights[index])
                losses[index], shares[index] = output.loss, _sums(output, plain_inputs[index])
        for _, kind_members in plan.kinds:
            chosen = masking[group.network.index_of(kind_members)]
            first = masking_inputs[kind_members[0]]
            kept = kept_heads(chosen, first.head_count, first.images.shape[0])
            logits, embeddings = _pass(group, kind_members, masking_inputs, kept)
            for position, index in enumerate(kind_members):
                mine, plain = masking_inputs[index], plain_inputs[index]
                embedding = None if embeddings is None else embeddings[position]
                masked = _losses(group, settings[index], mine, logits[position], embedding, weights[index])
                unmasked = _losses(
                    group, settings[index], plain, logits[position][: plain.head_count], None, weights[index]
                )
                losses[index] = torch.where(masking[index], masked.loss, unmasked.loss)
                shares[index] = torch.where(masking[index], _sums(masked, mine), _sums(unmasked, plain))
    group.optimizer.zero_grad()
    torch.stack([losses[index] for index in plan.members]).sum().backward()
    group.optimizer.step(rates, _used(group, plan, masking))
    sums = torch.zeros(group.size, len(EpochSums._fields), dtype=torch.float64, device=group.device)
    sums.index_copy_(0, group.network.index_of(plan.members), torch.stack([shares[index] for index in plan.members]))
    composed = {index: inputs.mask_areas.numel() for index, inputs in masking_inputs.items()}
    return sums, composed


def _losses(
    group: FusedGroup,
    settings: StepSettings,
    inputs: StepInputs,
    logits: torch.Tensor,
    embeddings: torch.Tensor | None,
    weights: torch.Tensor | None,
) -> StepOutput:
    return step_losses(settings, inputs, logits, embeddings, weights, group.counts)


def _used(group: FusedGroup, plan: StepPlan, masking: torch.Tensor) -> list[torch.Tensor]:
    """Per parameter, the members whose step used it ([N] bool): the members that step, and for
    the projection head those whose own pass has embeddings."""
    stepping = group.optimizer.device_mask([slot in plan.members for slot in range(group.size)])
    embedded_kinds = {index for kind, indices in plan.kinds if kind[1] for index in indices}
    embedded = masking & group.optimizer.device_mask([slot in embedded_kinds for slot in range(group.size)])
    return [embedded if name.startswith("projection.") else stepping for name in group.names]
