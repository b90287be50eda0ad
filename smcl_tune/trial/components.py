"""What a trial is built from, seeded from its training.seed: its network, its optimizer, its two
random generators, the samplers that draw with them and the device batches. Each is made here
once (TrialComponents.build); the trial loop only uses them."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from smcl_tune.config import TrainingConfig, TrialConfig
from smcl_tune.data import batches
from smcl_tune.data.batches import TrainingBatches
from smcl_tune.data.samplers import InstanceSampler, MinorClassSampler
from smcl_tune.data.splits import StreamSplit, TrialData
from smcl_tune.method.step import StepSettings
from smcl_tune.models import build_network
from smcl_tune.trial.capturable_sgd import CapturableSGD
from smcl_tune.trial.device import training_network
from smcl_tune.trial.graph_step import StepGraphs, step_graphs


def on_device(network: nn.Module, device: torch.device) -> nn.Module:
    """`network` on `device` in the trials' layout, as their images (data/batches.MEMORY_FORMAT)."""
    return network.to(device, memory_format=batches.MEMORY_FORMAT)


def build_trial_network(config: TrialConfig, num_classes: int, device: torch.device) -> nn.Module:
    """The trial's network at its seeded initial weights, on `device`."""
    torch.manual_seed(config.training.seed)
    network = build_network(config.model.architecture, num_classes, config.model.projection_dim, config.classifier)
    return on_device(network, device)


def build_optimizer(network: nn.Module, training: TrainingConfig) -> CapturableSGD:
    """SGD with the recipe's momentum, weight decay and Nesterov setting; the schedule sets its lr per
    step (a device tensor's value, under training.cuda_graph)."""
    return CapturableSGD(
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


@dataclass(frozen=True)
class TrialComponents:
    """Everything a trial trains with, built once from its config and data: the network (and the one
    the steps call, compiled when asked for), the optimizer, the generators, the samplers, the
    device batches, the step's settings and the training counts. Never replaced while the trial runs:
    the epochs use them, a checkpoint saves their states."""

    device: torch.device
    network: nn.Module
    step_network: nn.Module
    optimizer: CapturableSGD
    generators: TrialGenerators
    samplers: TrialSamplers
    batches: TrainingBatches
    settings: StepSettings
    counts: torch.Tensor  # training images per class, float32 on the device
    graphs: StepGraphs | None  # the steps' CUDA graphs (training.cuda_graph); None: eager steps

    @classmethod
    def build(cls, config: TrialConfig, data: TrialData, device: torch.device) -> TrialComponents:
        """The components of a trial at epoch 0; `data` already on `device`."""
        training = config.training
        network = build_trial_network(config, data.num_classes, device)
        # Indices are drawn where the images are: on the device, or on the host for a stream split.
        sampling = torch.device("cpu") if isinstance(data.train, StreamSplit) else device
        generators = TrialGenerators.seeded(training.seed, sampling)
        optimizer = build_optimizer(network, training)
        return cls(
            device=device,
            network=network,
            step_network=training_network(network, training, device),
            optimizer=optimizer,
            generators=generators,
            samplers=TrialSamplers.of(config, data, generators.batches),
            batches=TrainingBatches(data.train, data.mean, data.std, training.augment, generators.batches, device),
            settings=StepSettings(config.method, data.num_classes),
            counts=torch.as_tensor(data.train_counts, dtype=torch.float32, device=device),
            graphs=step_graphs(network, optimizer, device, training.cuda_graph),
        )
