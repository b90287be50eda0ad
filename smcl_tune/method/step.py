"""The loss of one training step for `ce`, `supcon`, `mask_only`, `smcl` (SMCL.md, steps 1-8) and `cmo`."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from smcl_tune.config import MethodConfig
from smcl_tune.method.batch import Batch
from smcl_tune.method.cmo import cmo_batch
from smcl_tune.method.draws import on_device
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
from smcl_tune.method.one_hot import one_hot
from smcl_tune.method.saliency import cam_saliency, gradient_saliency, random_saliency, spectral_residual_saliency
from smcl_tune.method.step_values import StepValues


@dataclass(frozen=True)
class StepSettings:
    """What one step needs: the method's configuration and the number of classes. Every field of
    the method is read from `method` itself, so a field is written once, in MethodConfig; its
    numbers (`values`) are the method's own unless given (a fused group's slot tensors: step_values.py)."""

    method: MethodConfig
    num_classes: int
    values: StepValues = field(default=None, compare=False)  # type: ignore[assignment]  # None: the method's

    def __post_init__(self) -> None:
        if self.values is None:
            object.__setattr__(self, "values", StepValues.of(self.method))

    @property
    def name(self) -> str:
        return self.method.name

    @property
    def uses_minor_batch(self) -> bool:
        return self.method.name != "ce"

    @property
    def forwards_minor_images(self) -> bool:
        """Whether a masking step also forwards the real minor images x_m (`minor_images`)."""
        return self.method.minor_images and self.method.name in ("mask_only", "smcl")

    @property
    def contrastive_weight(self) -> float:
        return 0.0 if self.method.name in ("ce", "mask_only", "cmo") else self.method.loss_weight


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
    generator: torch.Generator | None,
) -> torch.Tensor:
    if settings.method.saliency == "spectral_residual":
        # float32 under bf16 autocast too: the blur would otherwise run in bf16 and move the threshold mask.
        with torch.autocast(images.device.type, enabled=False):
            return spectral_residual_saliency(images.float(), settings.method.saliency_blur_sigma, content)
    if settings.method.saliency == "random":
        return random_saliency(images, generator, content)
    was_training = network.training
    network.eval()  # the extra forward pass must not move BatchNorm's running statistics
    try:
        if settings.method.saliency == "cam":
            return cam_saliency(lambda x: network(x)[0], network.backbone.last_block, images, labels, content)
        return gradient_saliency(lambda x: network(x)[0], images, labels, content)
    finally:
        network.train(was_training)


def _mask(
    settings: StepSettings, saliency: torch.Tensor, generator: torch.Generator, content: torch.Tensor | None
) -> torch.Tensor:
    if settings.method.mask_mode == "threshold":
        return threshold_mask(saliency, settings.values.saliency_threshold, content)
    alpha, size = settings.values.box_alpha, saliency.shape[0]
    lam = on_device(lambda: sample_beta(alpha, size, generator), saliency.device)
    return box_mask(saliency, lam, content)


@dataclass
class MaskedBatch:
    """The pieces of a masking step: what the mask was made from, the mask and the masked image."""

    saliency: torch.Tensor  # [B, H, W] in [0, 1]: of x_b (erase, or paste from the head) or of x_m (paste)
    mask: torch.Tensor  # [B, 1, H, W]
    composite: torch.Tensor  # x_tilde [B, C, H, W]
    targets: torch.Tensor  # soft labels [B, num_classes]
    area: torch.Tensor  # a [B]


def mask_batch(settings: StepSettings, network: nn.Module, batch: Batch, generator: torch.Generator) -> MaskedBatch:
    """The masked images x_tilde of a masking step's batch, with their soft labels and masked areas a
    (SMCL.md, steps 1-4).

    erase: x_tilde = (1 - M) * x_b + M * fill, M from the saliency of x_b (nothing is pasted);
    paste: x_tilde = (1 - M) * x_bg + M * x_m, M from the saliency of x_m or of x_b.
    The batch's head_content / minor_content (False on the pixels the random crop's zero padding
    added) keep the padding from being the saliency's peak or above a threshold.
    """
    method = settings.method
    if method.compose == "erase":
        saliency = _saliency(settings, network, batch.head_images, batch.head_labels, batch.head_content, generator)
        mask = _mask(settings, saliency, generator, batch.head_content)
        composite = fill_masked(batch.head_images, mask, method.fill, generator)
    else:
        saliency, mask, composite = _pasted(settings, network, batch, generator)
    area = mask_area(mask)
    targets = soft_labels(batch.head_labels, batch.minor_labels, area, settings.num_classes, method.soft_label)
    return MaskedBatch(saliency, mask, composite, targets, area)


def _pasted(
    settings: StepSettings, network: nn.Module, batch: Batch, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The first reconstruction (`compose: paste`): saliency, mask, and x_m pasted on x_b."""
    head_images, head_content = batch.head_images, batch.head_content
    if settings.method.mask_source == "minor":
        saliency = _saliency(settings, network, batch.minor_images, batch.minor_labels, batch.minor_content, generator)
        mask = _mask(settings, saliency, generator, batch.minor_content)
        head_saliency = None
    else:
        saliency = head_saliency = _saliency(settings, network, head_images, batch.head_labels, head_content, generator)
        mask = _mask(settings, head_saliency, generator, head_content)
    background = head_images
    if settings.method.erase_head:
        if head_saliency is None:
            head_saliency = _saliency(settings, network, head_images, batch.head_labels, head_content, generator)
        own_mask = _mask(settings, head_saliency, generator, head_content)
        background = fill_masked(head_images, own_mask, settings.method.fill, generator)
    return saliency, mask, compose(background, batch.minor_images, mask)


@dataclass
class StepInputs:
    """What one step forwards and trains on (SMCL.md, steps 1-5): the images of its one pass, their
    cross-entropy targets and contrastive labels, and whether the pass has a contrastive term (its
    weight is the settings' `values.loss_weight`)."""

    images: torch.Tensor  # x_b; [x_b ; x_tilde], [x_b ; x_tilde ; x_m] or [x_b ; x_m]: [n, C, H, W]
    targets: torch.Tensor  # soft targets [n, num_classes]
    labels: torch.Tensor  # contrastive labels [n]
    head_count: int  # B: the first B images are x_b
    mask_areas: torch.Tensor  # [B] the masked area fraction of each composed image; empty without masks
    with_embedding: bool  # False: no contrastive term (w = 0, or a plain step), the pass needs no embeddings


def step_inputs(
    settings: StepSettings, network: nn.Module, batch: Batch, generator: torch.Generator | None = None
) -> StepInputs:
    """The images of a step's pass and what they train towards. `network` is asked only for a
    model-based saliency (gradient), in eval mode.

    One pass over [x_b ; x_tilde] (SMCL.md, step 5), or [x_b ; x_tilde ; x_m] with `minor_images`;
    supcon forwards [x_b ; x_m]; cmo [x_b ; x_tilde] with CMO's CutMix composite; a plain step x_b.
    """
    head_images, head_labels = batch.head_images, batch.head_labels
    size = head_images.shape[0]
    head_targets = one_hot(head_labels, settings.num_classes)
    if not batch.masks or not settings.uses_minor_batch:
        return StepInputs(head_images, head_targets, head_labels, size, head_images.new_zeros(0), False)

    minor_images, minor_labels = batch.minor_images, batch.minor_labels
    minor_targets = one_hot(minor_labels, settings.num_classes)
    if settings.name == "supcon":
        images, targets = [head_images, minor_images], [head_targets, minor_targets]
        area = head_images.new_zeros(0)  # no mask: the minor images go in whole
    elif settings.name == "cmo":
        pasted = cmo_batch(
            head_images,
            head_labels,
            minor_images,
            minor_labels,
            settings.num_classes,
            settings.values.box_alpha,
            generator,
        )
        images, targets, area = [head_images, pasted.composite], [head_targets, pasted.targets], pasted.area
    else:
        parts = mask_batch(settings, network, batch, generator)
        images, targets, area = [head_images, parts.composite], [head_targets, parts.targets], parts.area
    labels = [head_labels, minor_labels]
    if settings.forwards_minor_images:
        images.append(minor_images)
        targets.append(minor_targets)
        labels.append(minor_labels)
    with_embedding = settings.contrastive_weight > 0
    return StepInputs(torch.cat(images), torch.cat(targets), torch.cat(labels), size, area, with_embedding)


def step_losses(
    settings: StepSettings,
    inputs: StepInputs,
    logits: torch.Tensor,
    embeddings: torch.Tensor | None,
    class_weights: torch.Tensor | None = None,
    class_counts: torch.Tensor | None = None,
) -> StepOutput:
    """L = L_MCE + w * L_MSC of a step's pass (SMCL.md, steps 6-8), from its logits and embeddings."""
    classification = _classification_loss(settings, logits, inputs.targets, class_weights, class_counts)
    if inputs.with_embedding:
        contrastive = supervised_contrastive_loss(embeddings, inputs.labels, settings.values.temperature)
    else:
        contrastive = logits.new_zeros(())
    loss = classification + settings.values.loss_weight * contrastive if inputs.with_embedding else classification
    return StepOutput(loss, classification, contrastive, logits[: inputs.head_count], inputs.mask_areas)


def step_loss(
    settings: StepSettings,
    network: nn.Module,
    batch: Batch,
    generator: torch.Generator | None = None,
    class_weights: torch.Tensor | None = None,
    class_counts: torch.Tensor | None = None,
) -> StepOutput:
    """L = L_MCE + w * L_MSC for a masking step, or plain classification loss on x_b.

    batch: the instance-sampled (x_b, y_b) and, on a masking step, the minor-class biased (x_m, y_m).
    generator: the step's draws (masks' Beta sizes, fills, CMO's boxes).
    class_weights: DRW weights when active; class_counts: for Balanced Softmax and LDAM's margins.
    """
    inputs = step_inputs(settings, network, batch, generator)
    logits, embeddings = network(inputs.images, with_embedding=inputs.with_embedding)
    return step_losses(settings, inputs, logits, embeddings, class_weights, class_counts)


@dataclass(frozen=True)
class StepLoss:
    """The criterion of an epoch: `step(network, batch)` is that step's loss (step_loss) with this
    trial's settings, its step generator, and the epoch's class weights."""

    settings: StepSettings
    generator: torch.Generator
    class_weights: torch.Tensor | None = None
    class_counts: torch.Tensor | None = None

    def __call__(self, network: nn.Module, batch: Batch) -> StepOutput:
        return step_loss(self.settings, network, batch, self.generator, self.class_weights, self.class_counts)


def _classification_loss(
    settings: StepSettings,
    logits: torch.Tensor,
    targets: torch.Tensor,
    class_weights: torch.Tensor | None,
    class_counts: torch.Tensor | None,
) -> torch.Tensor:
    method = settings.method
    if method.classifier_loss == "balanced_softmax":
        logits = balanced_softmax_logits(logits, class_counts)
    elif method.classifier_loss == "ldam_drw":
        margins = ldam_margins(class_counts, settings.values.ldam_max_margin)
        logits = ldam_logits(logits, targets, margins, settings.values.ldam_scale)
    return soft_cross_entropy(logits, targets, class_weights)
