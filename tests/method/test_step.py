"""The training step against references written out from SMCL.md, steps 1-8."""

import pytest
import torch
import torch.nn.functional as F

from smcl_tune.config import MethodConfig
from smcl_tune.method.batch import Batch
from smcl_tune.method.losses import soft_cross_entropy, supervised_contrastive_loss
from smcl_tune.method.masking import compose, sample_beta, threshold_mask
from smcl_tune.method.saliency import spectral_residual_saliency
from smcl_tune.method.step import StepSettings, mask_batch, step_inputs, step_loss
from smcl_tune.models import build_network

from .reference import reference_box, reference_fill, reference_soft_label

NUM_CLASSES = 5


def _batch(seed: int, size: int = 8):
    generator = torch.Generator().manual_seed(seed)
    images = torch.randn(size, 3, 16, 16, generator=generator)
    labels = torch.randint(0, NUM_CLASSES, (size,), generator=generator)
    return images, labels


@pytest.fixture
def network():
    torch.manual_seed(0)
    return build_network("small_cnn", NUM_CLASSES).eval()  # eval: BatchNorm independent of batch makeup


def _reference_loss(network, images, targets, labels, weight, temperature):
    """L_MCE over the whole pass + w * L_MSC over its embeddings (SMCL.md, steps 5-8)."""
    logits, z = network(torch.cat(images), with_embedding=True)
    mce = soft_cross_entropy(logits, torch.cat(targets))
    msc = supervised_contrastive_loss(z, torch.cat(labels), temperature)
    return mce, msc, mce + weight * msc


def _reference_erase(x_b, y_b, y_m, saliency, lam, fill, label_mode, content=None):
    masks = torch.stack(
        [reference_box(saliency[i], float(lam[i]), None if content is None else content[i]) for i in range(len(x_b))]
    )
    erased = torch.stack([reference_fill(x_b[i], masks[i], fill) for i in range(len(x_b))])
    areas = masks.flatten(1).mean(1)
    targets = torch.stack(
        [
            reference_soft_label(int(y_b[i]), int(y_m[i]), float(areas[i]), NUM_CLASSES, label_mode)
            for i in range(len(x_b))
        ]
    )
    return masks, erased, areas, targets


@pytest.mark.parametrize(("fill", "label_mode"), [("mean", "mixed"), ("zero", "background"), ("mean", "minor")])
def test_the_smcl_step_erases_the_spectral_residual_box_of_x_b_and_is_recomputed_from_its_parts(
    network, fill, label_mode
):
    (x_b, y_b), (x_m, y_m) = _batch(1), _batch(2)
    settings = StepSettings(
        MethodConfig(
            name="smcl",
            saliency="spectral_residual",
            fill=fill,
            soft_label=label_mode,
            loss_weight=0.7,
            temperature=0.2,
            box_alpha=0.3,  # not the defaults: the step must use the box's alpha and the blur's sigma it is given
            saliency_blur_sigma=0.8,
        ),
        NUM_CLASSES,
    )
    # the paper's reading is the default
    assert settings.method.compose == "erase" and settings.method.mask_mode == "box"
    output = step_loss(settings, network, Batch(x_b, y_b, x_m, y_m), torch.Generator().manual_seed(0))
    # the same generator state gives the same Beta draws: lambda of each image's box
    lam = sample_beta(settings.method.box_alpha, len(x_b), torch.Generator().manual_seed(0))
    saliency = spectral_residual_saliency(x_b, settings.method.saliency_blur_sigma)  # of x_b itself, not of x_m
    _, erased, areas, targets = _reference_erase(x_b, y_b, y_m, saliency, lam, fill, label_mode)
    head_targets = F.one_hot(y_b, NUM_CLASSES).float()
    mce, msc, loss = _reference_loss(network, [x_b, erased], [head_targets, targets], [y_b, y_m], 0.7, 0.2)
    assert torch.allclose(output.mask_areas, areas)
    assert torch.allclose(output.classification_loss, mce, atol=1e-5)
    assert torch.allclose(output.contrastive_loss, msc, atol=1e-5)
    assert torch.allclose(output.loss, loss, atol=1e-5)
    assert bool((areas > 0).all())


def test_erase_keeps_nothing_of_x_m_only_the_background_of_x_b(network):
    (x_b, y_b), (x_m, y_m) = _batch(1), _batch(2)
    settings = StepSettings(MethodConfig(name="smcl"), NUM_CLASSES)
    parts = mask_batch(settings, network, Batch(x_b, y_b, x_m, y_m), torch.Generator().manual_seed(0))
    other_minor = torch.randn_like(x_m)
    again = mask_batch(settings, network, Batch(x_b, y_b, other_minor, y_m), torch.Generator().manual_seed(0))
    assert torch.equal(parts.composite, again.composite)  # x_m's pixels never enter x_tilde
    kept = parts.mask.expand_as(x_b) == 0
    assert torch.equal(parts.composite[kept], x_b[kept])


def test_erase_with_threshold_masks_removes_the_pixels_whose_saliency_is_at_least_t(network):
    (x_b, y_b), (x_m, y_m) = _batch(3), _batch(4)
    settings = StepSettings(
        MethodConfig(name="smcl", saliency="spectral_residual", mask_mode="threshold", saliency_threshold=0.35),
        NUM_CLASSES,
    )
    parts = mask_batch(settings, network, Batch(x_b, y_b, x_m, y_m), torch.Generator().manual_seed(0))
    saliency = spectral_residual_saliency(x_b, 1.5)
    expected = (saliency >= 0.35).float()
    assert torch.equal(parts.mask[:, 0], expected)
    reference = torch.stack([reference_fill(x_b[i], expected[i], "mean") for i in range(len(x_b))])
    assert torch.allclose(parts.composite, reference, atol=1e-6)


def test_minor_images_forwards_the_real_minor_images_as_positives_and_supcon_is_smcl_without_x_tilde(network):
    (x_b, y_b), (x_m, y_m) = _batch(1), _batch(2)
    smcl = StepSettings(MethodConfig(name="smcl", minor_images=True, loss_weight=0.5, temperature=0.3), NUM_CLASSES)
    output = step_loss(smcl, network, Batch(x_b, y_b, x_m, y_m), torch.Generator().manual_seed(0))
    parts = mask_batch(smcl, network, Batch(x_b, y_b, x_m, y_m), torch.Generator().manual_seed(0))
    one_hot_b, one_hot_m = F.one_hot(y_b, NUM_CLASSES).float(), F.one_hot(y_m, NUM_CLASSES).float()
    _, _, expected = _reference_loss(
        network, [x_b, parts.composite, x_m], [one_hot_b, parts.targets, one_hot_m], [y_b, y_m, y_m], 0.5, 0.3
    )
    assert torch.allclose(output.loss, expected, atol=1e-5)
    assert output.head_logits.shape == (len(x_b), NUM_CLASSES)
    # exactly: an untrained network's embeddings are too alike for the loss to tell the labels apart
    inputs = step_inputs(smcl, network, Batch(x_b, y_b, x_m, y_m), torch.Generator().manual_seed(0))
    assert torch.equal(inputs.labels, torch.cat([y_b, y_m, y_m]))  # x_tilde and x_m are positives of y_m
    assert torch.equal(inputs.images[2 * len(x_b) :], x_m)
    # mask_only forwards x_m as well: more cross-entropy, still no contrastive term
    mask_only = StepSettings(MethodConfig(name="mask_only", minor_images=True), NUM_CLASSES)
    inputs = step_inputs(mask_only, network, Batch(x_b, y_b, x_m, y_m), torch.Generator().manual_seed(0))
    assert torch.equal(inputs.images[2 * len(x_b) :], x_m) and not inputs.with_embedding
    # supcon: the same pass without the masked images
    supcon = StepSettings(MethodConfig(name="supcon", loss_weight=0.5, temperature=0.3), NUM_CLASSES)
    baseline = step_loss(supcon, network, Batch(x_b, y_b, x_m, y_m))
    _, _, without_x_tilde = _reference_loss(network, [x_b, x_m], [one_hot_b, one_hot_m], [y_b, y_m], 0.5, 0.3)
    assert torch.allclose(baseline.loss, without_x_tilde, atol=1e-5)
    # and without minor_images the minor images are not forwarded
    plain = step_loss(
        StepSettings(MethodConfig(name="smcl", loss_weight=0.5, temperature=0.3), NUM_CLASSES),
        network,
        Batch(x_b, y_b, x_m, y_m),
        torch.Generator().manual_seed(0),
    )
    assert not torch.allclose(plain.loss, output.loss)


def test_mask_only_has_no_contrastive_term_and_ce_ignores_the_minor_batch(network):
    (x_b, y_b), (x_m, y_m) = _batch(1), _batch(2)
    mask_only = step_loss(
        StepSettings(MethodConfig(name="mask_only", loss_weight=3.0), NUM_CLASSES),
        network,
        Batch(x_b, y_b, x_m, y_m),
        torch.Generator().manual_seed(0),
    )
    assert float(mask_only.contrastive_loss) == 0 and torch.equal(mask_only.loss, mask_only.classification_loss)
    ce = step_loss(StepSettings(MethodConfig(name="ce"), NUM_CLASSES), network, Batch(x_b, y_b, x_m, y_m))
    assert torch.allclose(ce.loss, F.cross_entropy(network(x_b)[0], y_b), atol=1e-6)


def test_paste_with_threshold_masks_pastes_the_minor_images_salient_pixels(network):
    (x_b, y_b), (x_m, y_m) = _batch(1), _batch(2)
    settings = StepSettings(
        MethodConfig(
            name="smcl", saliency="spectral_residual", compose="paste", mask_mode="threshold", saliency_threshold=0.4
        ),
        NUM_CLASSES,
    )
    output = step_loss(settings, network, Batch(x_b, y_b, x_m, y_m), torch.Generator().manual_seed(0))
    mask = threshold_mask(spectral_residual_saliency(x_m, settings.method.saliency_blur_sigma), 0.4)
    x_tilde = compose(x_b, x_m, mask)
    area = mask.flatten(1).mean(1)
    targets = torch.stack(
        [reference_soft_label(int(y_b[i]), int(y_m[i]), float(area[i]), NUM_CLASSES, "mixed") for i in range(8)]
    )
    one_hot_b = F.one_hot(y_b, NUM_CLASSES).float()
    _, _, expected = _reference_loss(network, [x_b, x_tilde], [one_hot_b, targets], [y_b, y_m], 1.0, 0.1)
    assert torch.allclose(output.loss, expected, atol=1e-5)


def test_paste_mask_source_head_and_erase_head_change_the_composed_image(network):
    (x_b, y_b), (x_m, y_m) = _batch(1), _batch(2)
    paste = {"compose": "paste", "mask_mode": "threshold", "saliency_threshold": 0.3, "saliency": "spectral_residual"}
    default = StepSettings(MethodConfig(name="smcl", **paste), NUM_CLASSES)
    composed = mask_batch(default, network, Batch(x_b, y_b, x_m, y_m), torch.Generator().manual_seed(0)).composite
    head = StepSettings(MethodConfig(name="smcl", mask_source="head", **paste), NUM_CLASSES)
    from_head = mask_batch(head, network, Batch(x_b, y_b, x_m, y_m), torch.Generator().manual_seed(0)).composite
    head_mask = threshold_mask(spectral_residual_saliency(x_b, 1.5), 0.3)
    assert torch.allclose(from_head, compose(x_b, x_m, head_mask))
    assert not torch.allclose(composed, from_head)
    erase = StepSettings(MethodConfig(name="smcl", erase_head=True, **paste), NUM_CLASSES)
    erased = mask_batch(erase, network, Batch(x_b, y_b, x_m, y_m), torch.Generator().manual_seed(0)).composite
    minor_mask = threshold_mask(spectral_residual_saliency(x_m, 1.5), 0.3)
    # where x_m is pasted both agree; where x_b's own object was (and x_m is not pasted) erase differs
    pasted = minor_mask.expand_as(erased).bool()
    assert torch.allclose(erased[pasted], composed[pasted])
    erased_only = (head_mask.bool() & ~minor_mask.bool()).expand_as(erased)
    assert bool(erased_only.any()) and not torch.allclose(erased[erased_only], composed[erased_only])


def test_the_step_passes_the_crops_content_masks_to_the_saliency(network):
    (x_b, y_b), (x_m, y_m) = _batch(5), _batch(6)
    x_b[:, :, :, :4] = -3.0  # the crop's zero padding on the left border (black, in normalised units)
    content = torch.ones(len(x_b), 16, 16, dtype=torch.bool)
    content[:, :, :4] = False
    settings = StepSettings(MethodConfig(name="smcl"), NUM_CLASSES)
    parts = mask_batch(
        settings, network, Batch(x_b, y_b, x_m, y_m, head_content=content), torch.Generator().manual_seed(0)
    )
    assert float(parts.saliency[:, :, :4].abs().max()) == 0.0
    lam = sample_beta(1.0, len(x_b), torch.Generator().manual_seed(0))
    expected = torch.stack([reference_box(parts.saliency[i], float(lam[i]), content[i]) for i in range(len(x_b))])
    assert torch.equal(parts.mask[:, 0], expected)
    # paste: the mask comes from x_m, so x_m's own content bounds it, not x_b's
    minor_content = torch.ones_like(content)
    minor_content[:, :, 12:] = False  # x_m padded on the right border instead
    x_m[:, :, :, 12:] = -3.0
    paste = StepSettings(MethodConfig(name="smcl", compose="paste"), NUM_CLASSES)
    both = Batch(x_b, y_b, x_m, y_m, head_content=content, minor_content=minor_content)
    parts = mask_batch(paste, network, both, torch.Generator().manual_seed(0))
    assert float(parts.saliency[:, :, 12:].abs().max()) == 0.0
    lam = sample_beta(1.0, len(x_m), torch.Generator().manual_seed(0))
    expected = [reference_box(parts.saliency[i], float(lam[i]), minor_content[i]) for i in range(len(x_m))]
    assert torch.equal(parts.mask[:, 0], torch.stack(expected))


def test_gradient_saliency_and_box_masks_train_without_moving_batchnorm_statistics(network):
    network.train()
    (x_b, y_b), (x_m, y_m) = _batch(1), _batch(2)
    settings = StepSettings(MethodConfig(name="smcl", saliency="gradient", mask_mode="box"), NUM_CLASSES)
    before = network.backbone.body[1].running_mean.clone()
    mask_batch(settings, network, Batch(x_b, y_b, x_m, y_m), torch.Generator().manual_seed(0))
    assert torch.equal(before, network.backbone.body[1].running_mean)
    assert network.training and all(p.grad is None for p in network.parameters())
    output = step_loss(settings, network, Batch(x_b, y_b, x_m, y_m), torch.Generator().manual_seed(0))
    output.loss.backward()
    assert torch.isfinite(output.loss) and network.classifier.weight.grad is not None
