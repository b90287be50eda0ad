"""A trial stepped one epoch at a time, for the scripts (and tests) that time or inspect its steps:
the product's own pieces (trial/components.py), trained by the product's own `train_one_epoch`
with the criterion, plan and learning rates `run_trial` gives it."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from smcl_tune.config import TrialConfig
from smcl_tune.data.batches import Plan, TrainingBatches
from smcl_tune.data.splits import StreamSplit, TrialData
from smcl_tune.method.step import StepLoss, StepSettings
from smcl_tune.trial.components import TrialGenerators, TrialSamplers, build_optimizer, build_trial_network
from smcl_tune.trial.device import training_network
from smcl_tune.trial.epoch import BatchHook, train_one_epoch
from smcl_tune.trial.lr_schedule import epoch_learning_rate
from smcl_tune.trial.planning import class_weights, epoch_plan


@dataclass
class SteppedTrial:
    config: TrialConfig
    data: TrialData
    device: torch.device
    network: nn.Module
    step_network: nn.Module
    optimizer: torch.optim.Optimizer
    generators: TrialGenerators
    samplers: TrialSamplers
    batches: TrainingBatches
    settings: StepSettings
    counts: torch.Tensor
    epoch: int = 0
    history: list[dict[str, float]] = field(default_factory=list)

    @classmethod
    def build(cls, config: TrialConfig, data: TrialData, device: torch.device) -> SteppedTrial:
        """As `run_trial` builds it, at epoch 0."""
        data = data.to(device)
        network = build_trial_network(config, data.num_classes, device)
        sampling = torch.device("cpu") if isinstance(data.train, StreamSplit) else device
        generators = TrialGenerators.seeded(config.training.seed, sampling)
        training = config.training
        return cls(
            config=config,
            data=data,
            device=device,
            network=network,
            step_network=training_network(network, training, device),
            optimizer=build_optimizer(network, training),
            generators=generators,
            samplers=TrialSamplers.of(config, data, generators.batches),
            batches=TrainingBatches(data.train, data.mean, data.std, training.augment, generators.batches, device),
            settings=StepSettings(config.method, data.num_classes),
            counts=torch.as_tensor(data.train_counts, dtype=torch.float32, device=device),
        )

    def plan(self) -> Plan:
        return epoch_plan(self.config, self.epoch, self.samplers, self.generators.steps)

    def criterion(self) -> StepLoss:
        weights = class_weights(self.config.method, self.epoch, self.counts)
        return StepLoss(self.settings, self.generators.steps, weights, self.counts)

    def train_epoch(self, plan: Plan | None = None, on_masking_batch: BatchHook | None = None) -> dict[str, float]:
        """One epoch of the product's steps (of `plan`, by default the epoch's own); its metrics."""
        plan = self.plan() if plan is None else plan
        metrics = train_one_epoch(
            self.step_network,
            self.criterion(),
            self.optimizer,
            self.batches.epoch(plan),
            epoch_learning_rate(self.config.training, self.epoch, len(plan)),
            self.device,
            on_masking_batch,
        )
        self.history.append(metrics)
        self.epoch += 1
        return metrics
