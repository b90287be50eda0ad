"""CMO (Park et al. 2022): a CutMix box of the minor image at a random place, labelled by its area."""

import pytest
import torch
import torch.nn.functional as F

from smcl_tune.config import MethodConfig
from smcl_tune.method.batch import Batch
from smcl_tune.method.cmo import random_box_mask
from smcl_tune.method.losses import soft_cross_entropy
from smcl_tune.method.masking import sample_beta
from smcl_tune.method.step import StepSettings, step_loss
from smcl_tune.models import build_network

NUM_CLASSES = 5
SIZE = 16


def _batch(seed: int, size: int = 8):
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(size, 3, SIZE, SIZE, generator=generator), torch.randint(
        0, NUM_CLASSES, (size,), generator=generator
    )


def reference_cutmix_box(lam: float, centre_y: int, centre_x: int) -> torch.Tensor:
    """CutMix's box (Yun et al. 2019): sides W sqrt(1 - lam), H sqrt(1 - lam) around the centre, clipped."""
    side = (1.0 - lam) ** 0.5
    box_h, box_w = round(SIZE * side), round(SIZE * side)
    top, left = centre_y - box_h // 2, centre_x - box_w // 2
    mask = torch.zeros(1, SIZE, SIZE)
    for row in range(SIZE):
        for col in range(SIZE):
            if top <= row < top + box_h and left <= col < left + box_w:
                mask[0, row, col] = 1.0
    return mask


def test_a_cmo_step_recomputed_from_its_parts():
    torch.manual_seed(0)
    network = build_network("small_cnn", NUM_CLASSES).eval()
    (x_b, y_b), (x_m, y_m) = _batch(1), _batch(2)
    settings = StepSettings(MethodConfig(name="cmo", loss_weight=3.0), NUM_CLASSES)
    output = step_loss(settings, network, Batch(x_b, y_b, x_m, y_m), torch.Generator().manual_seed(7))

    # the same generator state, drawn in the documented order: lambda ~ Beta(1, 1), then the centres
    generator = torch.Generator().manual_seed(7)
    lam = sample_beta(1.0, 8, generator)
    centre_y = torch.randint(0, SIZE, (8,), generator=generator)
    centre_x = torch.randint(0, SIZE, (8,), generator=generator)
    masks = torch.stack([reference_cutmix_box(float(lam[i]), int(centre_y[i]), int(centre_x[i])) for i in range(8)])
    composite = (1 - masks) * x_b + masks * x_m
    area = masks.flatten(1).mean(dim=1)
    mixed = (1 - area)[:, None] * F.one_hot(y_b, NUM_CLASSES) + area[:, None] * F.one_hot(y_m, NUM_CLASSES)
    targets = torch.cat([F.one_hot(y_b, NUM_CLASSES).float(), mixed])
    logits, _ = network(torch.cat([x_b, composite]))
    expected = soft_cross_entropy(logits, targets)

    assert torch.allclose(output.mask_areas, area)
    assert torch.allclose(output.loss, expected, atol=1e-5) and torch.equal(output.loss, output.classification_loss)
    assert float(output.contrastive_loss) == 0  # no contrastive term, whatever loss_weight says
    unclipped = (1 - lam) ** 0.5 * SIZE
    assert (area < unclipped.round() ** 2 / SIZE**2 - 1e-6).any()  # some boxes were clipped: label by the real area


def test_random_boxes_land_anywhere_and_have_the_drawn_size():
    generator = torch.Generator().manual_seed(0)
    lam = torch.full((400,), 0.75)  # side 16 * 0.5 = 8 pixels before clipping
    masks = random_box_mask(lam, SIZE, SIZE, generator)
    assert masks.shape == (400, 1, SIZE, SIZE) and set(masks.unique().tolist()) <= {0.0, 1.0}
    assert masks.flatten(1).sum(dim=1).max() == 64
    coverage = masks.mean(dim=0)[0]
    assert coverage[0, 0] > 0 and coverage[-1, -1] > 0  # corners are covered too: no saliency, no centring
    assert coverage[:8].mean().item() == pytest.approx(coverage[8:].mean().item(), abs=0.08)
    assert coverage[:, :8].mean().item() == pytest.approx(coverage[:, 8:].mean().item(), abs=0.08)
