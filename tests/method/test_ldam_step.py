"""LDAM-DRW in a training step: every method's targets get LDAM's margins on the cosine logits."""

import pytest
import torch
import torch.nn.functional as F

from smcl_tune.config import MethodConfig
from smcl_tune.method.batch import Batch
from smcl_tune.method.cmo import cmo_batch
from smcl_tune.method.losses import drw_class_weights, soft_cross_entropy, supervised_contrastive_loss
from smcl_tune.method.step import StepSettings, mask_batch, step_loss
from smcl_tune.models import build_network

NUM_CLASSES = 5
COUNTS = torch.tensor([400.0, 120.0, 40.0, 12.0, 4.0])


def _batch(seed: int, size: int = 8):
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(size, 3, 16, 16, generator=generator), torch.randint(
        0, NUM_CLASSES, (size,), generator=generator
    )


@pytest.mark.parametrize("method", ["ce", "supcon", "smcl", "cmo"])
def test_ldam_drw_step_is_the_margin_loss_on_the_steps_targets(method):
    torch.manual_seed(0)
    network = build_network("small_cnn", NUM_CLASSES, classifier="cosine").eval()
    (x_b, y_b), (x_m, y_m) = _batch(1), _batch(2)
    settings = StepSettings(
        MethodConfig(name=method, classifier_loss="ldam_drw", ldam_max_margin=0.4, ldam_scale=20.0), NUM_CLASSES
    )
    weights = drw_class_weights(COUNTS)
    output = step_loss(settings, network, Batch(x_b, y_b, x_m, y_m), torch.Generator().manual_seed(3), weights, COUNTS)

    margins = 0.4 * (COUNTS.min() / COUNTS) ** 0.25  # m_k = C / n_k^(1/4), the rarest class's margin 0.4
    targets = F.one_hot(y_b, NUM_CLASSES).float()
    images, labels = x_b, y_b
    if method == "supcon":
        images, labels = torch.cat([x_b, x_m]), torch.cat([y_b, y_m])
        targets = F.one_hot(labels, NUM_CLASSES).float()
    elif method in ("smcl", "cmo"):
        if method == "smcl":
            parts = mask_batch(settings, network, Batch(x_b, y_b, x_m, y_m), torch.Generator().manual_seed(3))
            composite, mixed = parts.composite, parts.targets
        else:
            parts = cmo_batch(x_b, y_b, x_m, y_m, NUM_CLASSES, 1.0, torch.Generator().manual_seed(3))
            composite, mixed = parts.composite, parts.targets
        images, labels = torch.cat([x_b, composite]), torch.cat([y_b, y_m])
        targets = torch.cat([targets, mixed])
    cosines, z = network(images, with_embedding=True)
    assert cosines.abs().max() <= 1 + 1e-6
    expected = soft_cross_entropy(20.0 * (cosines - targets * margins), targets, weights)
    assert torch.allclose(output.classification_loss, expected, atol=1e-5)
    if method in ("supcon", "smcl"):
        assert torch.allclose(output.contrastive_loss, supervised_contrastive_loss(z, labels, 0.1), atol=1e-5)
