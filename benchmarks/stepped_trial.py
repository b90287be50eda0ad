"""A trial stepped one epoch at a time, for the scripts (and tests) that time or inspect its steps:
the product's own components (trial/components.py), trained by the product's own `train_epoch`
(the plan, criterion and learning rates `run_trial` gives `train_one_epoch`)."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from smcl_tune.config import TrialConfig
from smcl_tune.data.batches import Plan
from smcl_tune.data.splits import TrialData
from smcl_tune.method.step import StepLoss
from smcl_tune.trial.components import TrialComponents
from smcl_tune.trial.epoch import BatchHook, train_one_epoch
from smcl_tune.trial.lr_schedule import epoch_learning_rate
from smcl_tune.trial.planning import class_weights, epoch_plan


@dataclass
class SteppedTrial:
    config: TrialConfig
    data: TrialData
    parts: TrialComponents
    epoch: int = 0
    history: list[dict[str, float]] = field(default_factory=list)

    @classmethod
    def build(cls, config: TrialConfig, data: TrialData, device: torch.device) -> SteppedTrial:
        """As `run_trial` builds it, at epoch 0."""
        data = data.to(device)
        return cls(config, data, TrialComponents.build(config, data, device))

    def plan(self) -> Plan:
        return epoch_plan(self.config, self.epoch, self.parts.samplers, self.parts.generators.steps)

    def train_epoch(self, plan: Plan | None = None, on_masking_batch: BatchHook | None = None) -> dict[str, float]:
        """One epoch of the product's steps (of `plan`, by default the epoch's own); its metrics."""
        parts = self.parts
        plan = self.plan() if plan is None else plan
        weights = class_weights(self.config.method, self.epoch, parts.counts)
        metrics = train_one_epoch(
            parts.step_network,
            StepLoss(parts.settings, parts.generators.steps, weights, parts.counts),
            parts.optimizer,
            parts.batches.epoch(plan),
            epoch_learning_rate(self.config.training, self.epoch, len(plan)),
            parts.device,
            on_masking_batch,
            parts.graphs,
        )
        self.history.append(metrics)
        self.epoch += 1
        return metrics
