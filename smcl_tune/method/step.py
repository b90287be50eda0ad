"""The loss of one training step for `ce`, `supcon`, `mask_only`, `smcl` (SMCL.md, steps 1-8) and `cmo`."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from smcl_tune.config import MethodConfig
from smcl_tune.method.cmo import cmo_batch
from smcl_tune.method.losses import (
    balanced_softmax_logits,
    ldam_logits,
    ldam_margins,
    soft_cross_entropy,
    supervised_contrastive_loss,
)
from smcl_tune.method.masking import (
    box_mask,
    compose,
    fill_masked,
    mask_area,
    sample_beta,
    soft_labels,
    threshold_mask,
)
from smcl_tune.method.saliency import gradient_saliency, spectral_residual_saliency

METHODS = ("ce", "supcon", "mask_only", "smcl", "cmo")


def _config_default(name: str) -> Any:
    """MethodConfig's default of a field: the one place a method default is written."""
    return MethodConfig.model_fields[name].default


@dataclass(frozen=True)
class StepSettings:
    """What one step needs of the method's configuration: `method` is MethodConfig's `name`, every
    other field but `num_classes` is MethodConfig's field of the same name, with its default."""

    method: str
    num_classes: int
    saliency: str = _config_default("saliency")
    saliency_blur_sigma: float = _config_default("saliency_blur_sigma")
    compose: str = _config_default("compose")
    mask_mode: str = _config_default("mask_mode")
    saliency_threshold: float = _config_default("saliency_threshold")
    box_alpha: float = _config_default("box_alpha")
    mask_source: str = _config_default("mask_source")
    erase_head: bool = _config_default("erase_head")
    fill: str = _config_default("fill")
    soft_label: str = _config_default("soft_label")
    minor_images: bool = _config_default("minor_images")
    temperature: float = _config_default("temperature")
    loss_weight: float = _config_default("loss_weight")
    classifier_loss: str = _config_default("classifier_loss")
    ldam_max_margin: float = _config_default("ldam_max_margin")
    ldam_scale: float = _config_default("ldam_scale")

    @classmethod
    def from_config(cls, method: MethodConfig, num_classes: int) -> StepSettings:
        """The settings of a trial's method configuration."""
        shared = {
            item.name: getattr(method, item.name) for item in fields(cls) if item.name not in ("method", "num_classes")
        }
        return cls(method=method.name, num_classes=num_classes, **shared)

    @property
    def uses_minor_batch(self) -> bool:
        return self.method != "ce"

    @property
    def forwards_minor_images(self) -> bool:
        """Whether a masking step also forwards the real minor images x_m (`minor_images`)."""
        return self.minor_images and self.method in ("mask_only", "smcl")

    @property
    def contrastive_weight(self) -> float:
        return 0.0 if self.method in ("ce", "mask_only", "cmo") else self.loss_weight


@dataclass
class StepOutput:
    loss: torch.Tensor
    classification_loss: torch.Tensor
    contrastive_loss: torch.Tensor
    head_logits: torch.Tensor
    mask_areas: torch.Tensor  # [B] the masked area fraction of each composed image; empty without masks


def _saliency(
    settings: StepSettings,
    network: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    content: torch.Tensor | None,
) -> torch.Tensor:
    if settings.saliency == "spectral_residual":
        # float32 under bf16 autocast too: the blur would otherwise run in bf16 and move the threshold mask.
        with torch.autocast(images.device.type, enabled=False):
            return spectral_residual_saliency(images.float(), settings.saliency_blur_sigma, content)
    was_training = network.training
    network.eval()  # the extra forward pass must not move BatchNorm's running statistics
    try:
        return gradient_saliency(lambda x: network(x)[0], images, labels, content)
    finally:
        network.train(was_training)


def _mask(
    settings: StepSettings, saliency: torch.Tensor, generator: torch.Generator, content: torch.Tensor | None
) -> torch.Tensor:
    if settings.mask_mode == "threshold":
        return threshold_mask(saliency, settings.saliency_threshold, content)
    # Drawn on the host; an asynchronous copy, as a blocking one would wait for the GPU's queue.
    lam = sample_beta(settings.box_alpha, saliency.shape[0], generator).to(saliency.device, non_blocking=True)
    return box_mask(saliency, lam, content)


@dataclass
class MaskedBatch:
    """The pieces of a masking step: what the mask was made from, the mask and the masked image."""

    saliency: torch.Tensor  # [B, H, W] in [0, 1]: of x_b (erase, or paste from the head) or of x_m (paste)
    mask: torch.Tensor  # [B, 1, H, W]
    composite: torch.Tensor  # x_tilde [B, C, H, W]
    targets: torch.Tensor  # soft labels [B, num_classes]
    area: torch.Tensor  # a [B]


def mask_batch(
    settings: StepSettings,
    network: nn.Module,
    head_images: torch.Tensor,
    head_labels: torch.Tensor,
    minor_images: torch.Tensor,
    minor_labels: torch.Tensor,
    generator: torch.Generator,
    head_content: torch.Tensor | None = None,
    minor_content: torch.Tensor | None = None,
) -> MaskedBatch:
    """The masked images x_tilde with their soft labels and masked areas a (SMCL.md, steps 1-4).

    erase: x_tilde = (1 - M) * x_b + M * fill, M from the saliency of x_b (nothing is pasted);
    paste: x_tilde = (1 - M) * x_bg + M * x_m, M from the saliency of x_m or of x_b.
    head_content / minor_content: bool [B, H, W], False on the pixels the random crop's zero
    padding added (never the saliency's peak, never above a threshold); None: no padding.
    """
    if settings.compose == "erase":
        saliency = _saliency(settings, network, head_images, head_labels, head_content)
        mask = _mask(settings, saliency, generator, head_content)
        composite = fill_masked(head_images, mask, settings.fill, generator)
    else:
        saliency, mask, composite = _pasted(
            settings,
            network,
            head_images,
            head_labels,
            minor_images,
            minor_labels,
            generator,
            head_content,
            minor_content,
        )
    area = mask_area(mask)
    targets = soft_labels(head_labels, minor_labels, area, settings.num_classes, settings.soft_label)
    return MaskedBatch(saliency, mask, composite, targets, area)


def _pasted(
    settings: StepSettings,
    network: nn.Module,
    head_images: torch.Tensor,
    head_labels: torch.Tensor,
    minor_images: torch.Tensor,
    minor_labels: torch.Tensor,
    generator: torch.Generator,
    head_content: torch.Tensor | None,
    minor_content: torch.Tensor | None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The first reconstruction (`compose: paste`): saliency, mask, and x_m pasted on x_b."""
    if settings.mask_source == "minor":
        saliency = _saliency(settings, network, minor_images, minor_labels, minor_content)
        mask = _mask(settings, saliency, generator, minor_content)
        head_saliency = None
    else:
        saliency = head_saliency = _saliency(settings, network, head_images, head_labels, head_content)
        mask = _mask(settings, head_saliency, generator, head_content)
    background = head_images
    if settings.erase_head:
        if head_saliency is None:
            head_saliency = _saliency(settings, network, head_images, head_labels, head_content)
        own_mask = _mask(settings, head_saliency, generator, head_content)
        background = fill_masked(head_images, own_mask, settings.fill, generator)
    return saliency, mask, compose(background, minor_images, mask)


def step_loss(
    settings: StepSettings,
    network: nn.Module,
    head_images: torch.Tensor,
    head_labels: torch.Tensor,
    minor_images: torch.Tensor | None = None,
    minor_labels: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
    class_weights: torch.Tensor | None = None,
    class_counts: torch.Tensor | None = None,
    head_content: torch.Tensor | None = None,
    minor_content: torch.Tensor | None = None,
) -> StepOutput:
    """L = L_MCE + w * L_MSC for a masking step, or plain classification loss on x_b.

    head_images / head_labels: the instance-sampled batch (x_b, y_b); minor_images /
    minor_labels: the minor-class biased batch (x_m, y_m), None for a plain step.
    class_weights: DRW weights when active; class_counts: for Balanced Softmax and LDAM's margins.
    head_content / minor_content: where each image is its own and not the crop's padding
    (see `mask_batch`); None: no padding.

    One forward pass over [x_b ; x_tilde] (SMCL.md, step 5), or [x_b ; x_tilde ; x_m] with
    `minor_images`; supcon forwards [x_b ; x_m]; cmo [x_b ; x_tilde] with CMO's CutMix composite.
    """
    batch = head_images.shape[0]
    head_targets = F.one_hot(head_labels, settings.num_classes).float()
    zero = head_images.new_zeros(())
    if minor_images is None or not settings.uses_minor_batch:
        logits, _ = network(head_images)
        classification = _classification_loss(settings, logits, head_targets, class_weights, class_counts)
        return StepOutput(classification, classification, zero, logits, head_images.new_zeros(0))

    minor_targets = F.one_hot(minor_labels, settings.num_classes).float()
    if settings.method == "supcon":
        images, targets, labels = (
            [head_images, minor_images],
            [head_targets, minor_targets],
            [head_labels, minor_labels],
        )
        area = head_images.new_zeros(0)  # no mask: the minor images go in whole
    elif settings.method == "cmo":
        pasted = cmo_batch(
            head_images, head_labels, minor_images, minor_labels, settings.num_classes, settings.box_alpha, generator
        )
        images, targets, labels = (
            [head_images, pasted.composite],
            [head_targets, pasted.targets],
            [head_labels, minor_labels],
        )
        area = pasted.area
    else:
        parts = mask_batch(
            settings,
            network,
            head_images,
            head_labels,
            minor_images,
            minor_labels,
            generator,
            head_content,
            minor_content,
        )
        images, targets, labels = (
            [head_images, parts.composite],
            [head_targets, parts.targets],
            [head_labels, minor_labels],
        )
        area = parts.area
        if settings.forwards_minor_images:
            images.append(minor_images)
            targets.append(minor_targets)
            labels.append(minor_labels)
    weight = settings.contrastive_weight
    logits, embeddings = network(torch.cat(images), with_embedding=weight > 0)
    classification = _classification_loss(settings, logits, torch.cat(targets), class_weights, class_counts)
    if weight > 0:
        contrastive = supervised_contrastive_loss(embeddings, torch.cat(labels), settings.temperature)
    else:
        contrastive = zero
    return StepOutput(classification + weight * contrastive, classification, contrastive, logits[:batch], area)


def _classification_loss(
    settings: StepSettings,
    logits: torch.Tensor,
    targets: torch.Tensor,
    class_weights: torch.Tensor | None,
    class_counts: torch.Tensor | None,
) -> torch.Tensor:
    if settings.classifier_loss == "balanced_softmax":
        logits = balanced_softmax_logits(logits, class_counts)
    elif settings.classifier_loss == "ldam_drw":
        margins = ldam_margins(class_counts, settings.ldam_max_margin)
        logits = ldam_logits(logits, targets, margins, settings.ldam_scale)
    return soft_cross_entropy(logits, targets, class_weights)
