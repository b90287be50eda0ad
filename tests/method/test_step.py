import pytest
import torch
import torch.nn.functional as F

from smcl_tune.method.losses import soft_cross_entropy, supervised_contrastive_loss
from smcl_tune.method.masking import compose, mask_area, threshold_mask
from smcl_tune.method.saliency import spectral_residual_saliency
from smcl_tune.method.step import StepSettings, mask_batch, step_loss
from smcl_tune.models import build_network

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


def test_smcl_loss_is_mixed_ce_plus_weighted_supcon_on_the_masked_batch(network):
    (x_b, y_b), (x_m, y_m) = _batch(1), _batch(2)
    settings = StepSettings(
        method="smcl", num_classes=NUM_CLASSES, saliency_threshold=0.4, loss_weight=0.7, temperature=0.2
    )
    output = step_loss(settings, network, x_b, y_b, x_m, y_m, torch.Generator().manual_seed(0))
    # slow reference, written out from SMCL.md steps 1-8
    mask = threshold_mask(spectral_residual_saliency(x_m, settings.saliency_blur_sigma), 0.4)
    x_tilde = compose(x_b, x_m, mask)
    area = mask_area(mask)
    targets = torch.cat(
        [
            F.one_hot(y_b, NUM_CLASSES).float(),
            (1 - area)[:, None] * F.one_hot(y_b, NUM_CLASSES) + area[:, None] * F.one_hot(y_m, NUM_CLASSES),
        ]
    )
    logits, z = network(torch.cat([x_b, x_tilde]), with_embedding=True)
    mce = soft_cross_entropy(logits, targets)
    msc = supervised_contrastive_loss(z, torch.cat([y_b, y_m]), 0.2)
    assert torch.allclose(output.classification_loss, mce, atol=1e-5)
    assert torch.allclose(output.contrastive_loss, msc, atol=1e-5)
    assert torch.allclose(output.loss, mce + 0.7 * msc, atol=1e-5)
    assert output.mask_areas.shape == (len(y_b),) and 0 < float(output.mask_areas.mean()) < 1


def test_mask_only_has_no_contrastive_term_and_ce_ignores_the_minor_batch(network):
    (x_b, y_b), (x_m, y_m) = _batch(1), _batch(2)
    mask_only = step_loss(
        StepSettings(method="mask_only", num_classes=NUM_CLASSES, loss_weight=3.0),
        network,
        x_b,
        y_b,
        x_m,
        y_m,
        torch.Generator().manual_seed(0),
    )
    assert float(mask_only.contrastive_loss) == 0 and torch.equal(mask_only.loss, mask_only.classification_loss)
    ce = step_loss(StepSettings(method="ce", num_classes=NUM_CLASSES), network, x_b, y_b, x_m, y_m)
    assert torch.allclose(ce.loss, F.cross_entropy(network(x_b)[0], y_b), atol=1e-6)


def test_supcon_baseline_uses_the_unmasked_minor_images(network):
    (x_b, y_b), (x_m, y_m) = _batch(1), _batch(2)
    output = step_loss(
        StepSettings(method="supcon", num_classes=NUM_CLASSES, loss_weight=0.5, temperature=0.1),
        network,
        x_b,
        y_b,
        x_m,
        y_m,
    )
    logits, z = network(torch.cat([x_b, x_m]), with_embedding=True)
    labels = torch.cat([y_b, y_m])
    expected = F.cross_entropy(logits, labels) + 0.5 * supervised_contrastive_loss(z, labels, 0.1)
    assert torch.allclose(output.loss, expected, atol=1e-5)


def test_mask_source_head_and_erase_head_change_the_composed_image(network):
    (x_b, y_b), (x_m, y_m) = _batch(1), _batch(2)
    default = StepSettings(method="smcl", num_classes=NUM_CLASSES, saliency_threshold=0.3)
    composed = mask_batch(default, network, x_b, y_b, x_m, y_m, torch.Generator().manual_seed(0)).composite
    head = StepSettings(method="smcl", num_classes=NUM_CLASSES, saliency_threshold=0.3, mask_source="head")
    from_head = mask_batch(head, network, x_b, y_b, x_m, y_m, torch.Generator().manual_seed(0)).composite
    head_mask = threshold_mask(spectral_residual_saliency(x_b, 1.5), 0.3)
    assert torch.allclose(from_head, compose(x_b, x_m, head_mask))
    assert not torch.allclose(composed, from_head)
    erase = StepSettings(method="smcl", num_classes=NUM_CLASSES, saliency_threshold=0.3, erase_head=True)
    erased = mask_batch(erase, network, x_b, y_b, x_m, y_m, torch.Generator().manual_seed(0)).composite
    minor_mask = threshold_mask(spectral_residual_saliency(x_m, 1.5), 0.3)
    # where x_m is pasted both agree; where x_b's own object was (and x_m is not pasted) erase differs
    pasted = minor_mask.expand_as(erased).bool()
    assert torch.allclose(erased[pasted], composed[pasted])
    erased_only = (head_mask.bool() & ~minor_mask.bool()).expand_as(erased)
    assert bool(erased_only.any()) and not torch.allclose(erased[erased_only], composed[erased_only])


def test_gradient_saliency_and_box_masks_train_without_moving_batchnorm_statistics(network):
    network.train()
    (x_b, y_b), (x_m, y_m) = _batch(1), _batch(2)
    settings = StepSettings(method="smcl", num_classes=NUM_CLASSES, saliency="gradient", mask_mode="box")
    before = network.backbone.body[1].running_mean.clone()
    mask_batch(settings, network, x_b, y_b, x_m, y_m, torch.Generator().manual_seed(0))
    assert torch.equal(before, network.backbone.body[1].running_mean)
    assert network.training and all(p.grad is None for p in network.parameters())
    output = step_loss(settings, network, x_b, y_b, x_m, y_m, torch.Generator().manual_seed(0))
    output.loss.backward()
    assert torch.isfinite(output.loss) and network.classifier.weight.grad is not None
