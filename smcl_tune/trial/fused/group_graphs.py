"""A fused group's training steps replayed as CUDA graphs (`training.cuda_graph: true` in a group).

The step recorded is kinds_step.py's, whose shapes do not follow the members' masking decisions.
One graph per step plan (which members step, whether the plain pass runs, which masking kinds), per
batch shapes, per set of members with class weights, and per set of members (a member's
hyperparameters are constants of the recorded kernels, so a refilled slot is recorded again; the
graphs of members that left are dropped). As for one trial (trial/graph_step.py), a plan steps
eagerly WARMUP_STEPS times, on a side stream, before its capture; before each replay the batches,
the masking decisions, the learning rates and (when they change) the class weights are copied into
the graph's buffers, and the draws of the members that mask are made again into theirs. A capture
that fails leaves the group's steps eager (FusedGroup's own step), said in one line.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Mapping
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
from smcl_tune.trial.graph_step import WARMUP_STEPS, Capture, Replayable, cuda_capture, eager_reason

log = logging.getLogger(__name__)


def _shapes(batch: Batch) -> tuple:
    return tuple(None if part is None else (tuple(part.shape), part.dtype) for part in batch)


@dataclass
class CapturedGroupStep:
    recording: Replayable
    batches: dict[int, Batch]  # the graph's input buffers, per member
    weights: dict[int, torch.Tensor | None]
    draws: DrawTape
    sums: torch.Tensor
    composed: dict[int, int]
    serials: frozenset[int]  # the members recorded
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
        self.group, self.capture, self.warmup_steps = group, capture, warmup_steps
        device = group.device
        self.masking = torch.zeros(group.size, dtype=torch.bool, device=device)
        self.rates = torch.zeros(group.size, dtype=group.network.dtype, device=device)
        self.graphs: dict[tuple, CapturedGroupStep] = {}
        self.eager_steps: Counter[tuple] = Counter()
        self.failed: str | None = None
        self.replays = 0
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
        self._drop_graphs_of_members_gone(members)
        plan = step_plan(members, batches)
        key = (
            plan,
            tuple(members[index].serial for index in plan.members),
            tuple(_shapes(with_minor_stand_in(batches[index])) for index in plan.members),
            tuple(weights[index] is not None for index in plan.members),
        )
        decisions = torch.tensor([index in batches and batches[index].masks for index in range(self.group.size)])
        self.rates.copy_(rates, non_blocking=True)
        captured = self.graphs.get(key)
        if captured is not None:
            self.replays += 1
            return captured.replay(batches, weights, decisions), captured.composed
        copy_in(self.masking, decisions)
        if self.failed is None and self.eager_steps[key] >= self.warmup_steps:
            captured = self._capture(plan, members, batches, weights)
            if captured is not None:
                self.graphs[key] = captured
                captured.draws.load_first()
                captured.recording.replay()
                self.replays += 1
                return captured.sums, captured.composed
            return self.group.eager_step(members, batches, weights, rates)
        self.eager_steps[key] += 1
        return self._eager(plan, members, batches, weights)

    def _drop_graphs_of_members_gone(self, members: Mapping[int, Member]) -> None:
        """A member that stopped training (it ended, failed or left) never trains again: the graphs
        that record it hold memory no step will use."""
        serials = {member.serial for member in members.values()}
        for key in [key for key, graph in self.graphs.items() if not graph.serials <= serials]:
            del self.graphs[key]

    def _eager(
        self,
        plan: StepPlan,
        members: Mapping[int, Member],
        batches: Mapping[int, Batch],
        weights: Mapping[int, torch.Tensor | None],
    ) -> tuple[torch.Tensor, dict[int, int]]:
        full = {index: with_minor_stand_in(batch) for index, batch in batches.items()}
        masks = {index: batch.masks for index, batch in batches.items()}
        arguments = (self.group, plan, members, full, masks, self.masking, weights, self.rates)
        side = self.side_stream
        if side is None:
            return kinds_step(*arguments)
        current = torch.cuda.current_stream(self.group.device)
        side.wait_stream(current)
        with torch.cuda.stream(side):
            result = kinds_step(*arguments)
        current.wait_stream(side)
        return result

    def _capture(
        self,
        plan: StepPlan,
        members: Mapping[int, Member],
        batches: Mapping[int, Batch],
        weights: Mapping[int, torch.Tensor | None],
    ) -> CapturedGroupStep | None:
        # a plain batch's minor buffers start as its head images: its unused masking pass is recorded too
        fixed = {
            index: Batch(*(_fixed(part) for part in with_minor_stand_in(batch))) for index, batch in batches.items()
        }
        fixed_weights = {index: _fixed(values) for index, values in weights.items()}
        generators = {index: members[index].parts.generators.steps for index in plan.members}
        drawn_from = {index: generator.get_state() for index, generator in generators.items()}
        draws = DrawTape()
        masks = {index: batch.masks for index, batch in batches.items()}

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
            message = str(error).strip()
            self.failed = message.splitlines()[0] if message else type(error).__name__
            log.warning(
                "training.cuda_graph: the fused group's steps run eagerly from here (the capture failed: %s)",
                self.failed,
            )
            return None
        serials = frozenset(members[index].serial for index in plan.members)
        copied_from = {index: weights[index] for index in weights}
        return CapturedGroupStep(
            graph, fixed, fixed_weights, draws, share.sums, recorded, serials, self.masking, copied_from
        )


def _fixed(part: torch.Tensor | None) -> torch.Tensor | None:
    return None if part is None else part.clone()


def group_graphs(group: FusedGroup, wanted: bool) -> GroupGraphs | None:
    """The group's step graphs when `training.cuda_graph` asks for them and the device allows; else None (eager)."""
    if not wanted:
        return None
    reason = eager_reason(group.device)
    if reason is not None:
        log.warning("training.cuda_graph: the steps run eagerly (%s)", reason)
        return None
    return GroupGraphs(group, cuda_capture)
