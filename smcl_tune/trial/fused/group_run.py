"""A fixed group of fused trials, run to their ends: each member is the trial `run_trial` would run
(its own weights, BatchNorm statistics, optimizer state, hyperparameters, seeds, data order,
masking decisions, metrics, checkpoint and result), while the steps of all members run as one
stacked model (stacked_network.py) with one optimizer (stacked_sgd.py).

What stays per member and unfused: the draws (each member's own generators, outside the fused
calls), a step's images and targets (a Python loop over the members: cheap tensor ops), and
evaluation (each member's network materialised, evaluated as the unfused trial is).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import Any

import torch
from torch import nn

from smcl_tune.config import TrialConfig, trial_config_from_dict
from smcl_tune.data.splits import TrialData, build_trial_data
from smcl_tune.method.batch import Batch
from smcl_tune.method.step import StepInputs, StepOutput, step_inputs, step_losses
from smcl_tune.models import build_network
from smcl_tune.results import TrialResult, TrialState
from smcl_tune.trial.checkpoint import TrialCheckpoint, resumable_checkpoint
from smcl_tune.trial.components import TrialComponents, on_device
from smcl_tune.trial.device import autocast, gpu_memory_metrics, resolve_device, start_gpu_memory_peak
from smcl_tune.trial.epoch import EpochCounts, EpochSums, epoch_metrics
from smcl_tune.trial.evaluation import validation_metrics
from smcl_tune.trial.fused.fusible import check_fusible
from smcl_tune.trial.fused.group_graphs import GroupGraphs, group_graphs
from smcl_tune.trial.fused.slot_values import SlotValues, recorded_shape
from smcl_tune.trial.fused.stacked_network import MemberView, StackedNetwork, default_strategy
from smcl_tune.trial.fused.stacked_sgd import StackedSGD
from smcl_tune.trial.gallery_capture import GalleryCapture
from smcl_tune.trial.lr_schedule import epoch_learning_rate
from smcl_tune.trial.output_files import write_gallery, write_trial_files
from smcl_tune.trial.planning import class_weights, epoch_plan
from smcl_tune.trial.result import trial_result
from smcl_tune.trial.selection import Selection

log = logging.getLogger(__name__)

Report = Callable[[dict[str, Any], Path | None], None]
PROJECTION = "projection."  # the parameters of SMCLNetwork's projection head


@dataclass
class Member:
    """One trial of the group: its configuration and components, and how far it has gone."""

    index: int  # its slice of the stacked network and optimizer
    config: TrialConfig
    parts: TrialComponents  # its own generators, samplers, batches, settings, counts (its network: the initial weights)
    report: Report | None = None
    checkpoint_dir: Path | None = None
    epoch: int = 0
    selection: Selection = field(default_factory=Selection)
    history: list[dict[str, float]] = field(default_factory=list)
    gallery: GalleryCapture | None = None
    status: str = TrialState.COMPLETED
    reason: str | None = None
    last_metrics: dict[str, Any] = field(default_factory=dict)

    @cached_property
    def recorded_shape(self) -> tuple:
        """What its recorded steps hold fixed (slot_values.py): a slot's graphs serve its next member of this shape."""
        return recorded_shape(self.parts.settings)

    @property
    def training(self) -> bool:
        return self.status == TrialState.COMPLETED and self.epoch < self.config.training.epochs


class FusedGroup:
    """The stacked network and optimizer of a group's members."""

    def __init__(
        self, members: Sequence[Member], device: torch.device, strategy: str | None = None, size: int | None = None
    ) -> None:
        """`members` in slots 0, 1, ...; with `size`, more slots, free until a member is admitted."""
        self.members = list(members)
        self.device = device
        self.size = size or len(self.members)
        spare = [self.members[0]] * (self.size - len(self.members))  # a free slot's weights never train
        networks = [member.parts.network for member in [*self.members, *spare]]
        self.network = StackedNetwork(networks, strategy or default_strategy(device))
        trainings = [member.config.training for member in [*self.members, *spare]]
        self.optimizer = StackedSGD(self.network.parameters(), trainings)
        self.names = list(self.network.params)
        # what the recorded steps read of a slot's member: its values, its step generator, the counts
        self.values = SlotValues([member.config.method for member in [*self.members, *spare]], device)
        self.step_generators = [member.parts.generators.steps for member in self.members]
        self.step_generators += [torch.Generator() for _ in spare]
        self.counts = self.members[0].parts.counts  # the condition's: every member trains on one data
        # the steps' CUDA graphs (training.cuda_graph, which members share: fusible.py); None: eager
        self.graphs: GroupGraphs | None = group_graphs(self, self.members[0].config.training.cuda_graph)
        start_gpu_memory_peak(device)  # the members' gpu_memory_peak_mib: the group's, from its start

    def free_slots(self) -> int:
        return self.size - len(self.members)

    def admit(self, member: Member) -> None:
        """`member` (at its initial weights) takes a free slot: its weights, hyperparameters, values
        and a fresh optimizer state there, and the slot's step generator, set to its own generator's
        state (slot_values.py: a graph recorded for the slot's last member then steps it). Members
        join and leave between epochs."""
        taken = {other.index for other in self.members}
        member.index = min(slot for slot in range(self.size) if slot not in taken)
        self.network.load_member_state(member.index, member.parts.network.state_dict())
        self.optimizer.set_member(member.index, member.config.training)
        self.values.set_slot(member.index, member.config.method)
        generator = self.step_generators[member.index]
        generator.set_state(member.parts.generators.steps.get_state())
        member.parts = replace(member.parts, generators=replace(member.parts.generators, steps=generator))
        self.members.append(member)

    def release(self, member: Member) -> None:
        """`member` leaves; its slot is free (its weights stay there, untrained, until the next member's)."""
        self.members.remove(member)

    def member_network(self, member: Member) -> nn.Module:
        """The member's weights in a network of its own (for evaluation and its result)."""
        config = member.config
        network = build_network(
            config.model.architecture, member.parts.settings.num_classes, config.model.projection_dim, config.classifier
        )
        network = on_device(network, self.device)
        network.load_state_dict(self.network.member_state(member.index))
        return network

    def checkpoint(self, member: Member) -> TrialCheckpoint:
        return TrialCheckpoint(
            config=member.config.model_dump(mode="json"),
            epoch=member.epoch,
            network=self.network.member_state(member.index),
            optimizer=self.optimizer.member_state(member.index, self.names),
            batch_generator=member.parts.generators.batches.get_state(),
            step_generator=member.parts.generators.steps.get_state(),
            selection=member.selection,
            history=member.history,
            gallery=member.gallery.gallery,
        )

    def restore(self, member: Member, checkpoint: TrialCheckpoint) -> None:
        self.network.load_member_state(member.index, checkpoint.network)
        self.optimizer.load_member_state(member.index, checkpoint.optimizer)
        checkpoint.restore_generators(member.parts.generators)
        member.epoch, member.selection, member.history = checkpoint.epoch, checkpoint.selection, checkpoint.history
        member.gallery.gallery = checkpoint.gallery

    def used(self, inputs: dict[int, StepInputs]) -> list[list[bool]]:
        """Per parameter, the members whose step used it: every member that stepped used all its
        parameters but the projection head, which only a pass with embeddings runs."""
        stepped = [index in inputs for index in range(self.size)]
        embedded = [index in inputs and inputs[index].with_embedding for index in range(self.size)]
        return [embedded if name.startswith(PROJECTION) else stepped for name in self.names]

    def forward(
        self, inputs: dict[int, StepInputs], members: dict[int, Member], weights: dict[int, torch.Tensor | None]
    ) -> dict[int, StepOutput]:
        """Each member's step losses (`weights`: each member's class weights of the epoch); members
        whose passes have one shape run as one stacked call."""
        kinds: dict[tuple, list[int]] = {}
        for index, step in inputs.items():
            kinds.setdefault((tuple(step.images.shape), step.with_embedding), []).append(index)
        outputs = {}
        for (_, with_embedding), indices in kinds.items():
            images = torch.stack([inputs[index].images for index in indices])
            logits, embeddings = self.network.forward(indices, images, with_embedding)
            for position, index in enumerate(indices):
                member = members[index]
                outputs[index] = step_losses(
                    member.parts.settings,
                    inputs[index],
                    logits[position],
                    None if embeddings is None else embeddings[position],
                    weights[index],
                    member.parts.counts,
                )
        return outputs

    def eager_step(
        self,
        members: dict[int, Member],
        batches: dict[int, Batch],
        weights: dict[int, torch.Tensor | None],
        rates: torch.Tensor,
    ) -> tuple[torch.Tensor, dict[int, int]]:
        """One step of `members` on their `batches` at `rates` ([N], the slots'), the members that
        mask and those that do not as passes of their own: the members' sums [N, len(EpochSums)]
        and the images each member composed."""
        with autocast(self.device):
            inputs = {
                index: step_inputs(
                    member.parts.settings,
                    MemberView(self.network, index),
                    batches[index],
                    member.parts.generators.steps,
                )
                for index, member in members.items()
            }
            outputs = self.forward(inputs, members, weights)
        self.optimizer.zero_grad()
        torch.stack([output.loss for output in outputs.values()]).sum().backward()
        self.optimizer.step(rates, self.used(inputs))
        sums = torch.zeros(self.size, len(EpochSums._fields), dtype=torch.float64, device=self.device)
        for index, output in outputs.items():
            labels = inputs[index].labels[: inputs[index].head_count]
            sums[index] = torch.stack(EpochSums.of_step(output, labels))
        return sums, {index: output.mask_areas.numel() for index, output in outputs.items()}

    def train_epoch(self, training: list[Member]) -> dict[int, dict[str, float]]:
        """One epoch of every training member (each at its own epoch: their steps run in lockstep)."""
        plans = {m.index: epoch_plan(m.config, m.epoch, m.parts.samplers, m.parts.generators.steps) for m in training}
        batches = {m.index: iter(m.parts.batches.epoch(plans[m.index])) for m in training}
        rates = {m.index: epoch_learning_rate(m.config.training, m.epoch, len(plans[m.index])) for m in training}
        hooks = {
            m.index: m.gallery.hook(m.epoch, MemberView(self.network, m.index), m.parts.generators.steps)
            for m in training
        }
        by_index = {m.index: m for m in training}
        weights = {m.index: class_weights(m.config.method, m.epoch, m.parts.counts) for m in training}
        totals = torch.zeros(self.size, len(EpochSums._fields), dtype=torch.float64, device=self.device)
        counts = {m.index: [0, 0, 0, 0] for m in training}  # steps, masked steps, images, masks
        steps = len(next(iter(plans.values())))
        members = range(self.size)
        # every step's rate of every member (0 for those that sit the epoch out), copied once an epoch
        schedule = [[rates[index](step) if index in rates else 0.0 for index in members] for step in range(steps)]
        learning_rates = torch.tensor(schedule, dtype=self.network.dtype, device=self.device)
        if self.graphs is not None:
            self.graphs.keep_graphs_of(training)
        started = time.perf_counter()
        for step in range(steps):
            stepping = {}
            for index in by_index:
                batch = stepping[index] = next(batches[index])
                if batch.masks and hooks[index] is not None:
                    hooks[index](batch)
                counts[index][0] += 1
                counts[index][1] += batch.masks
                counts[index][2] += len(batch.head_labels)
            if self.graphs is not None and self.graphs.failed is None:
                sums, composed = self.graphs.step(by_index, stepping, weights, learning_rates[step])
            else:
                sums, composed = self.eager_step(by_index, stepping, weights, learning_rates[step])
            totals += sums
            for index, batch in stepping.items():
                counts[index][3] += composed.get(index, 0) if batch.masks else 0
        sums_by_member = totals.tolist()  # the epoch's only host synchronisation
        return {
            index: epoch_metrics(
                EpochSums(*sums_by_member[index]), EpochCounts(*counts[index]), rates[index](steps - 1), started
            )
            for index in by_index
        }


def build_group(
    configs: Sequence[TrialConfig],
    data: TrialData,
    device: torch.device,
    reports: Sequence[Report | None] | None = None,
    checkpoint_dirs: Sequence[Path | None] | None = None,
    strategy: str | None = None,
) -> FusedGroup:
    """The members of a group at epoch 0, each built as `run_trial` builds its trial (its seeded
    weights, generators, samplers and batches), and their stacked network and optimizer."""
    reports = list(reports or [None] * len(configs))
    checkpoint_dirs = list(checkpoint_dirs or [None] * len(configs))
    members = [
        new_member(index, config, data, device, reports[index], checkpoint_dirs[index])
        for index, config in enumerate(configs)
    ]
    return FusedGroup(members, device, strategy)


def new_member(
    index: int,
    config: TrialConfig,
    data: TrialData,
    device: torch.device,
    report: Report | None = None,
    checkpoint_dir: Path | None = None,
) -> Member:
    """A member at epoch 0, built as `run_trial` builds its trial: its seeded weights, generators,
    samplers and batches."""
    eager = config.model_copy(update={"training": config.training.model_copy(update={"cuda_graph": False})})
    parts = TrialComponents.build(eager, data, device)  # the group steps its members, eagerly
    member = Member(index, config, parts, report, checkpoint_dir)
    member.gallery = GalleryCapture(parts.settings, data.mean, data.std, None)
    return member


def run_fused_group(
    configs: Sequence[TrialConfig | dict[str, Any]],
    reports: Sequence[Report | None] | None = None,
    checkpoint_dirs: Sequence[Path | None] | None = None,
    resume_from: Sequence[Path | None] | None = None,
    data: TrialData | None = None,
    strategy: str | None = None,
) -> list[TrialResult]:
    """Train and evaluate a group of trials of one shape (fusible.py) as one stacked model; each
    member's report, checkpoint folder and result are those `run_trial` gives that trial alone."""
    configs = [trial_config_from_dict(config) if isinstance(config, dict) else config for config in configs]
    check_fusible(configs)
    count = len(configs)
    reports = list(reports or [None] * count)
    checkpoint_dirs = list(checkpoint_dirs or [None] * count)
    resume_from = list(resume_from or [None] * count)
    training = configs[0].training
    if training.num_threads is not None:
        torch.set_num_threads(training.num_threads)
    device = resolve_device(training.device)
    data = (data or build_trial_data(configs[0].data)).to(device)
    group = build_group(configs, data, device, reports, checkpoint_dirs, strategy)
    members = group.members
    for member, resume in zip(members, resume_from):
        checkpoint = None if resume is None else resumable_checkpoint(Path(resume), member.config)
        if checkpoint is not None:
            group.restore(member, checkpoint)
            log.info("member %d resumed at epoch %d", member.index, member.epoch)
    while training_members := [member for member in members if member.training]:
        for index, metrics in group.train_epoch(training_members).items():
            finish_epoch(group, members[index], metrics, data)
    return [finish_trial(group, member, data) for member in members]


def _save(group: FusedGroup, member: Member, data: TrialData) -> Path | None:
    directory = member.checkpoint_dir
    if directory is None:
        return None
    group.checkpoint(member).save(directory)
    write_gallery(directory, member.gallery.gallery, member.epoch, data.class_names, member.config.method.mask_source)
    return directory


def finish_epoch(group: FusedGroup, member: Member, metrics: dict[str, float], data: TrialData) -> None:
    """What `run_trial` does after an epoch, for one member: a non-finite loss fails it; validation,
    selection, the history, the checkpoint and the report."""
    epoch = member.epoch
    if not math.isfinite(metrics["loss"]):
        member.status, member.reason = TrialState.FAILED, f"non-finite loss ({metrics['loss']}) in epoch {epoch}"
        log.info("member %d stopped: %s", member.index, member.reason)  # its trial's result says it, once
        return
    metrics.update(gpu_memory_metrics(group.device), epoch=epoch)
    if len(data.val) > 0:
        metrics.update(validation_metrics(group.member_network(member), data))
        member.selection.consider(
            epoch, metrics["val_balanced_accuracy"], lambda: group.network.member_state(member.index)
        )
    member.history.append(metrics)
    member.epoch += 1
    if member.epoch == member.config.training.epochs:
        member.last_metrics = metrics  # the last epoch's report is the trial's last
        return
    folder = _save(group, member, data)
    if member.report is not None:
        member.report(metrics, folder)


def finish_trial(group: FusedGroup, member: Member, data: TrialData) -> TrialResult:
    """The member's result, checkpoint, files and final report, as `run_trial` ends a trial."""
    network = group.member_network(member)
    result = trial_result(network, data, member.selection, member.history, member.status, member.reason)
    folder = _save(group, member, data)
    if folder is not None:
        write_trial_files(result, folder)
    if member.report is not None:
        epoch = {"epoch": member.epoch - 1} if member.epoch else {}
        member.report({**epoch, **member.last_metrics, **result.final_metrics()}, folder)
    return result
