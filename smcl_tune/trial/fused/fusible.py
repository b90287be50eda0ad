"""Which trials can train as one fused group: the same network structure, the same data, and steps
of the same size in lockstep. Everything else (hyperparameters, seeds, method, classifier loss,
saliency, epochs) may differ from member to member."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from smcl_tune.config import TrialConfig
from smcl_tune.errors import ConfigError


def fusible_shape(config: TrialConfig) -> dict[str, Any]:
    """What members of one group must share: the network (architecture, projection, classifier, and
    so its parameters' shapes), the data (one split, one set of images), the batches' size and
    augmentation, the steps of an epoch, the device and its threads; and compilation (none)."""
    training = config.training
    return {
        "data": config.data.model_dump(mode="json"),
        "architecture": config.model.architecture,
        "projection_dim": config.model.projection_dim,
        "classifier": config.classifier,
        "batch_size": training.batch_size,
        "augment": training.augment,
        "max_steps_per_epoch": training.max_steps_per_epoch,
        "device": training.device,
        "num_threads": training.num_threads,
        "compile": training.compile,
        "cuda_graph": training.cuda_graph,
    }


def check_fusible(configs: Sequence[TrialConfig]) -> None:
    """ConfigError naming the first field the members do not share."""
    if not configs:
        raise ConfigError("a fused group needs at least one member")
    first = fusible_shape(configs[0])
    for index, config in enumerate(configs[1:], start=1):
        shape = fusible_shape(config)
        differing = [name for name in first if shape[name] != first[name]]
        if differing:
            raise ConfigError(f"fused member {index} differs from member 0 in {', '.join(differing)}: not one shape")
    if first["compile"]:
        raise ConfigError("training.compile: a fused group runs its members as one stacked model, uncompiled")
