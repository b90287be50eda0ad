"""A fused group's training step of one fixed shape, whichever members mask: the step a CUDA
graph records (trial/fused/group_graphs.py).

The eager step (FusedGroup.forward) runs the members that mask and those that do not as separate
stacked passes, so its shapes follow each member's own random decision: up to 2^N shapes. This
step runs the plain pass (x_b) of every member, and the masking pass of every member of each
masking kind present in the step, whether that member masks or not. Each member's own pass is then
chosen on the device, by `masking` ([N] bool):
- its loss and its share of the epoch's sums are its own pass's; the other pass's loss is left
  out by torch.where, so the gradient that reaches the member's weights is its own pass's (the
  other adds exact zeros);
- each pass moves copies of the members' BatchNorm statistics, and a member keeps its own pass's:
  a member that does not mask has its statistics moved by its clean images alone;
- the optimizer moves the projection head of the members whose pass has embeddings.
A member's draws are its eager step's: the draws of a masking pass are marked as the member's
(DrawTape.redraw draws again only for the members that mask), and a member that does not mask
has its generator's state put back after its unused pass.

The price: the unused passes. At mask_probability 0.5 an SMCL member runs 3B images per step,
where its own passes average 1.5B.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

import torch

from smcl_tune.method.batch import Batch
from smcl_tune.method.draws import drawing_for
from smcl_tune.method.step import StepInputs, StepOutput, StepSettings, step_inputs, step_losses
from smcl_tune.trial.components import TrialComponents
from smcl_tune.trial.device import autocast
from smcl_tune.trial.epoch import EpochSums
from smcl_tune.trial.fused.stacked_network import MemberView, StackedNetwork
from smcl_tune.trial.fused.stacked_sgd import StackedSGD


class Member(Protocol):
    """What the step reads of a member (group_run.Member)."""

    index: int
    parts: TrialComponents
    serial: int


class FusedGroup(Protocol):
    """What the step reads and moves of a group (group_run.FusedGroup)."""

    network: StackedNetwork
    optimizer: StackedSGD
    device: torch.device
    size: int
    names: list[str]
    members: Sequence[Member]

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
    """What a step of fixed shape runs: the members that step (slots, in order), whether the plain
    pass runs (some member does not mask), and each masking kind present with all its members."""

    members: tuple[int, ...]
    plain: bool
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
    plain = any(not batches[index].masks for index in order)
    kinds = tuple((kind, tuple(indices)) for kind, indices in sorted(by_kind.items()) if kind in present)
    return StepPlan(order, plain, kinds)


def with_minor_stand_in(batch: Batch) -> Batch:
    """A plain batch with its head images standing in for the minor batch its unused masking pass
    needs (same shapes); a masking batch as it is."""
    if batch.masks:
        return batch
    head_images, head_labels, _, _, head_content, _ = batch
    return Batch(head_images, head_labels, head_images, head_labels, head_content, head_content)


def _masking_inputs(member: Member, view: MemberView, batch: Batch, masks: bool) -> StepInputs:
    generator = member.parts.generators.steps
    kept = None if masks else generator.get_state()
    with drawing_for(member.index):
        inputs = step_inputs(member.parts.settings, view, batch, generator)
    if kept is not None:
        generator.set_state(kept)  # the member does not mask: its eager step draws nothing
    return inputs


def _sums(output: StepOutput, inputs: StepInputs) -> torch.Tensor:
    return torch.stack(EpochSums.of_step(output, inputs.labels[: inputs.head_count]))


def _passes(
    group: FusedGroup, index: tuple[int, ...], inputs: Mapping[int, StepInputs]
) -> tuple[torch.Tensor, torch.Tensor | None, dict[str, torch.Tensor], torch.Tensor]:
    slots = group.network.index_of(index)
    images = torch.stack([inputs[member].images for member in index])
    logits, embeddings, statistics = group.network.forward_copies(slots, images, inputs[index[0]].with_embedding)
    return logits, embeddings, statistics, slots


def _keep_statistics(
    group: FusedGroup, slots: torch.Tensor, statistics: dict[str, torch.Tensor], chosen: torch.Tensor | None
) -> None:
    """The members in `slots` keep the statistics this pass moved (those `chosen` only, if given)."""
    with torch.no_grad():
        for name, moved in statistics.items():
            stacked = group.network.buffers[name]
            if chosen is not None:
                moved = torch.where(chosen.view(-1, *([1] * (moved.dim() - 1))), moved, stacked[slots])
            stacked[slots] = moved


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
    composes when it masks."""
    with autocast(group.device):
        plain_inputs, masking_inputs = {}, {}
        for index in plan.members:
            member, batch = members[index], batches[index]
            view = MemberView(group.network, index)
            plain_inputs[index] = step_inputs(member.parts.settings, view, Batch(batch.head_images, batch.head_labels))
        for _, kind_members in plan.kinds:
            for index in kind_members:
                view = MemberView(group.network, index)
                masking_inputs[index] = _masking_inputs(members[index], view, batches[index], masks[index])
        outputs: dict[int, list[tuple[StepOutput, StepInputs]]] = {index: [] for index in plan.members}
        kept: list[tuple[torch.Tensor, dict[str, torch.Tensor], torch.Tensor | None]] = []
        passes = [(plan.members, plain_inputs)] if plan.plain else []
        passes += [(kind_members, masking_inputs) for _, kind_members in plan.kinds]
        for pass_members, inputs in passes:
            logits, embeddings, statistics, slots = _passes(group, pass_members, inputs)
            chosen = None if not plan.plain else (masking[slots] if inputs is masking_inputs else ~masking[slots])
            kept.append((slots, statistics, chosen if len(passes) > 1 else None))
            for position, index in enumerate(pass_members):
                output = step_losses(
                    members[index].parts.settings,
                    inputs[index],
                    logits[position],
                    None if embeddings is None else embeddings[position],
                    weights[index],
                    members[index].parts.counts,
                )
                outputs[index].append((output, inputs[index]))
    for slots, statistics, chosen in kept:
        _keep_statistics(group, slots, statistics, chosen)
    losses, shares = [], []
    for index in plan.members:
        ran = outputs[index]
        if len(ran) == 1:
            ((output, inputs),) = ran
            losses.append(output.loss)
            shares.append(_sums(output, inputs))
            continue
        (plain, plain_in), (masked, masked_in) = ran
        losses.append(torch.where(masking[index], masked.loss, plain.loss))
        shares.append(torch.where(masking[index], _sums(masked, masked_in), _sums(plain, plain_in)))
    group.optimizer.zero_grad()
    torch.stack(losses).sum().backward()
    group.optimizer.step(rates, _used(group, plan, masking))
    sums = torch.zeros(group.size, len(EpochSums._fields), dtype=torch.float64, device=group.device)
    sums.index_copy_(0, group.network.index_of(plan.members), torch.stack(shares))
    composed = {index: inputs.mask_areas.numel() for index, inputs in masking_inputs.items()}
    return sums, composed


def _used(group: FusedGroup, plan: StepPlan, masking: torch.Tensor) -> list[torch.Tensor]:
    """Per parameter, the members whose step used it ([N] bool): the members that step, and for
    the projection head those whose own pass has embeddings."""
    stepping = group.optimizer.device_mask([slot in plan.members for slot in range(group.size)])
    embedded_kinds = {index for kind, indices in plan.kinds if kind[1] for index in indices}
    embedded = masking & group.optimizer.device_mask([slot in embedded_kinds for slot in range(group.size)])
    return [embedded if name.startswith("projection.") else stepping for name in group.names]
