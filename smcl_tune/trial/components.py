"""What a trial is built from, seeded from its training.seed: its network, its optimizer, its two
random generators and the samplers that draw with them. Each is made here once; the trial loop only uses them."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from smcl_tune.config import TrainingConfig, TrialConfig
from smcl_tune.data.samplers import InstanceSampler, MinorClassSampler
from smcl_tune.data.splits import TrialData
from smcl_tune.models import build_network


def build_trial_network(config: TrialConfig, num_classes: int, device: torch.device) -> nn.Module:
    """The trial's network at its seeded initial weights, on `device` (channels_last on CUDA)."""
    torch.manual_seed(config.training.seed)
    network = build_network(config.model.architecture, num_classes, config.model.projection_dim, config.classifier)
    network = network.to(device)
    if device.type == "cuda":
        network = network.to(memory_format=torch.channels_last)
        torch.cuda.reset_peak_memory_stats(device)
    return network


def build_optimizer(network: nn.Module, training: TrainingConfig) -> torch.optim.Optimizer:
    """SGD with the recipe's momentum, weight decay and Nesterov setting; the schedule sets its lr per step."""
    return torch.optim.SGD(
        network.parameters(),
        lr=training.lr,
        momentum=training.momentum,
        weight_decay=training.weight_decay,
        nesterov=training.nesterov,
    )


@dataclass(frozen=True)
class TrialGenerators:
    """A trial's random draws: `batches` for the data order, crops, flips and minor-class samples (on the
    device the images are drawn from), `steps` for the masking decisions, box sizes and fills."""

    batches: torch.Generator
    steps: torch.Generator

    @classmethod
    def seeded(cls, seed: int, sampling_device: torch.device) -> TrialGenerators:
        return cls(
            batches=torch.Generator(device=sampling_device).manual_seed(seed + 1),
            steps=torch.Generator().manual_seed(seed + 2),
        )


@dataclass(frozen=True)
class TrialSamplers:
    """The trial's two samplers, drawing with its `batches` generator: the instance sampler's head
    batches, and the minor-class (effective-number) sampler of the masking steps."""

    instance: InstanceSampler
    minor: MinorClassSampler

    @classmethod
    def of(cls, config: TrialConfig, data: TrialData, generator: torch.Generator) -> TrialSamplers:
        return cls(
            InstanceSampler(len(data.train), config.training.batch_size, generator),
            MinorClassSampler(data.train.labels, data.train_counts, config.method.sampler_beta, generator),
        )
