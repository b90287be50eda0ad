"""A fused group's training steps replayed as CUDA graphs (`training.cuda_graph: true` in a group).

The step recorded is kinds_step.py's, whose shapes do not follow the members' masking decisions.
One graph per step plan (which members step, which of them run the plain pass, which masking
kinds), per batch shapes, per set of members with class weights, and per recorded shape of each
member stepping (slot_values.py): a member's values, step generator and optimizer hyperparameters
are read from its slot's memory, so a member that refills a slot replays the graphs recorded for
its predecessor when their recorded shapes are equal (FUSION.md: a refill never recaptures); a
graph whose slots no longer hold training members of its shapes is dropped, once an epoch. As for one trial
(trial/graph_step.py), a plan steps eagerly WARMUP_STEPS times, on a side stream, before its
capture; before each replay the batches, the masking decisions, the learning rates and (when they
change) the class weights are copied into the graph's buffers, and the draws of the members that
mask are made again into theirs (the others' zeroed). The group's graphs share one memory pool
(trial/graph_step.py says why that is safe). A capture that fails leaves the group's steps eager
(FusedGroup's own step), said in one line.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch

from smcl_tune.method.batch import Batch
from smcl_tune.method.draws import DrawTape, copy_in
from smcl_tune.trial.epoch import StepShare
from smcl_tune.trial.fused.kinds_step import (
    FusedGroup,
    Member,
    StepPlan,
    kinds_step,
    step_plan,
    with_minor_stand_in,
)
from smcl_tune.trial.graph_step import (
    WARMUP_STEPS,
    Capture,
    Replayable,
    batch_shapes,
    capture_failure,
    eager_reason,
    fixed_copy,
    on_side_stream,
    shared_pool_capture,
)

log = logging.getLogger(__name__)


@dataclass
class CapturedGroupStep:
    recording: Replayable
    batches: dict[int, Batch]  # the graph's input buffers, per member
    weights: dict[int, torch.Tensor | None]
    draws: DrawTape
    sums: torch.Tensor
    composed: dict[int, int]
    held: frozenset[tuple[int, tuple]]  # (slot, recorded shape) of each member recorded
    masking: torch.Tensor  # [N] bool: the buffer of which members mask, read by the recorded step
    copied_from: dict[int, Any] = field(default_factory=dict)  # the class weights last copied in, per member

    def replay(
        self, batches: Mapping[int, Batch], weights: Mapping[int, torch.Tensor | None], decisions: torch.Tensor
    ) -> torch.Tensor:
        self.copy_decisions(decisions)
        for index, batch in batches.items():
            for buffer, part in zip(self.batches[index], batch):
                if part is not None:  # a plain batch leaves the minor buffers as they are: its pass is unused
                    buffer.copy_(part, non_blocking=True)
        for index, values in weights.items():
            if values is not None and self.copied_from.get(index) is not values:
                self.weights[index].copy_(values, non_blocking=True)
                self.copied_from[index] = values
        self.draws.redraw(owners={index for index, batch in batches.items() if batch.masks})
        self.recording.replay()
        return self.sums

    def copy_decisions(self, decisions: torch.Tensor) -> None:
        """Which members mask in this step (host bools), into the buffer the recorded step reads."""
        copy_in(self.masking, decisions)


class GroupGraphs:
    """A group's steps: eager (kinds_step) for the first WARMUP_STEPS of each key, then replays."""

    def __init__(self, group: FusedGroup, capture: Capture, warmup_steps: int = WARMUP_STEPS) -> None:
        if group.network.strategy != "vmap":
            raise ValueError(f"a recorded group step needs a vmapped group, not {group.network.strategy!r}")
        self.group, self.capture, self.warmup_steps = group, capture, warmup_steps
        device = group.device
        self.masking = torch.zeros(group.size, dtype=torch.bool, device=device)
        self.rates = torch.zeros(group.size, dtype=group.network.dtype, device=device)
        self.graphs: dict[tuple, CapturedGroupStep] = {}
        self.eager_steps: Counter[tuple] = Counter()
        self.failed: str | None = None
        self.captures = self.replays = 0
        self.side_stream = torch.cuda.Stream(device) if device.type == "cuda" else None

    def step(
        self,
        members: Mapping[int, Member],
        batches: Mapping[int, Batch],
        weights: Mapping[int, torch.Tensor | None],
        rates: torch.Tensor,
    ) -> tuple[torch.Tensor, dict[int, int]]:
        """One step of `members` on their `batches` at `rates` ([N], the slots'): the members'
        sums [N, len(EpochSums)] and the images each member that masks composed."""
        plan = step_plan(members, batches)
        full = {index: with_minor_stand_in(batch) for index, batch in batches.items()}
        key = (
            plan,
            tuple(members[index].recorded_shape for index in plan.members),
            tuple(batch_shapes(full[index]) for index in plan.members),
            tuple(weights[index] is not None for index in plan.members),
        )
        decisions = torch.tensor([index in batches and batches[index].masks for index in range(self.group.size)])
        self.rates.copy_(rates, non_blocking=True)
        captured = self.graphs.get(key)
        if captured is not None:
            self.replays += 1
            return captured.replay(batches, weights, decisions), captured.composed
        copy_in(self.masking, decisions)
        masks = {index: batch.masks for index, batch in batches.items()}
        if self.failed is None and self.eager_steps[key] >= self.warmup_steps:
            captured = self._capture(plan, members, full, masks, weights)
            if captured is not None:
                self.graphs[key] = captured
                self.captures += 1
                captured.draws.load_first()
                captured.recording.replay()
                self.replays += 1
                return captured.sums, captured.composed
            return self.group.eager_step(members, batches, weights, rates)
        self.eager_steps[key] += 1
        arguments = (self.group, plan, members, full, masks, self.masking, weights, self.rates)
        return on_side_stream(self.side_stream, self.group.device, lambda: kinds_step(*arguments))

    def keep_graphs_of(self, members: Iterable[Member]) -> None:
        """Drops the graphs one of whose slots holds no member of its recorded shape among `members`
        (an epoch's training members): a slot whose member stopped training (it ended, failed or
        left) and was not refilled by one of its shape, whose graphs hold memory no step will use."""
        held = {(member.index, member.recorded_shape) for member in members}
        for key in [key for key, graph in self.graphs.items() if not graph.held <= held]:
            del self.graphs[key]

    def _capture(
        self,
        plan: StepPlan,
        members: Mapping[int, Member],
        full: Mapping[int, Batch],
        masks: Mapping[int, bool],
        weights: Mapping[int, torch.Tensor | None],
    ) -> CapturedGroupStep | None:
        # a plain batch's minor buffers start as its head images: its unused masking pass is recorded too
        fixed = {index: Batch(*(fixed_copy(part) for part in batch)) for index, batch in full.items()}
        fixed_weights = {index: fixed_copy(values) for index, values in weights.items()}
        generators = {index: members[index].parts.generators.steps for index in plan.members}
        drawn_from = {index: generator.get_state() for index, generator in generators.items()}
        draws = DrawTape()

        def step() -> StepShare:
            sums, composed = kinds_step(
                self.group, plan, members, fixed, masks, self.masking, fixed_weights, self.rates
            )
            recorded.update(composed)
            return StepShare(sums, 0)

        recorded: dict[int, int] = {}
        try:
            graph, share = self.capture(step, draws)
        except Exception as error:  # any failure of a capture leaves the group eager, said once
            for index, generator in generators.items():
                generator.set_state(drawn_from[index])
            self.failed = capture_failure(error)
            log.warning(
                "training.cuda_graph: the fused group's steps run eagerly from here (the capture failed: %s)",
                self.failed,
            )
            return None
        held = frozenset((index, members[index].recorded_shape) for index in plan.members)
        copied_from = {index: weights[index] for index in weights}
        return CapturedGroupStep(
            graph, fixed, fixed_weights, draws, share.sums, recorded, held, self.masking, copied_from
        )


def group_graphs(group: FusedGroup, wanted: bool) -> GroupGraphs | None:
    """The group's step graphs when `training.cuda_graph` asks for them and the device allows; else None (eager)."""
    if not wanted:
        return None
    reason = eager_reason(group.device)
    if reason is None and group.network.strategy != "vmap":
        # its passes through the stacked BatchNorm statistics' views, then a vmapped pass's
        # write-back into them, would fail the recorded step's backward
        reason = f"a recorded group step runs its members vmapped, and this group runs {group.network.strategy}"
    if reason is not None:
        log.warning("training.cuda_graph: the steps run eagerly (%s)", reason)
        return None
    return GroupGraphs(group, shared_pool_capture())
