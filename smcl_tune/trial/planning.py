"""An epoch's plan and its class weights: which head batches it trains on, which of its steps mask
(p_mask, within the masking window) with which minor-class batches, and DRW's weights."""

from __future__ import annotations

import torch

from smcl_tune.config import MethodConfig, TrialConfig
from smcl_tune.data.batches import Plan
from smcl_tune.method.losses import drw_class_weights
from smcl_tune.trial.components import TrialSamplers


def epoch_plan(config: TrialConfig, epoch: int, samplers: TrialSamplers, step_generator: torch.Generator) -> Plan:
    """This epoch's head batches and, for the steps that mask, their minor-class batches."""
    method = config.method
    heads = samplers.instance.epoch()
    if config.training.max_steps_per_epoch is not None:
        heads = heads[: config.training.max_steps_per_epoch]
    if method.name == "ce" or not (method.mask_start_epoch <= epoch < config.mask_end_epoch):
        return [(head, None) for head in heads]
    masking = (torch.rand(len(heads), generator=step_generator) < method.mask_probability).tolist()
    return [(head, samplers.minor.sample(len(head)) if masks else None) for head, masks in zip(heads, masking)]


def class_weights(method: MethodConfig, epoch: int, counts: torch.Tensor) -> torch.Tensor | None:
    """DRW's per-class loss weights from its start epoch on; None before, and without DRW."""
    if method.uses_drw and epoch >= method.drw_start_epoch:
        return drw_class_weights(counts, method.drw_beta)
    return None
