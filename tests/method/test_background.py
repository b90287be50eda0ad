"""Background-only test images and the head share (SMCL.md, "What the mechanism predicts")."""

import math

import pytest
import torch

from smcl_tune.method.background import background_box_sizes, background_only
from smcl_tune.method.saliency import spectral_residual_saliency
from smcl_tune.metrics import head_share
from smcl_tune.results import uniform_head_share

from .reference import reference_box, reference_fill


def test_the_salient_box_of_each_image_takes_its_mean_colour():
    generator = torch.Generator().manual_seed(0)
    images = (torch.rand(4, 3, 16, 16, generator=generator) * 255).round().to(torch.uint8)
    sizes = background_box_sizes(4)
    erased = background_only(images, sizes)
    assert not torch.equal(erased, images)
    saliency = spectral_residual_saliency(images.float())
    for index in range(4):
        box = reference_box(saliency[index], float(sizes[index]))
        expected = reference_fill(images[index].float(), box, "mean").round()
        assert torch.equal(erased[index].float(), expected)
        assert float(box.mean()) <= 1


def test_the_boxes_are_the_same_for_every_trial():
    assert torch.equal(background_box_sizes(50), background_box_sizes(50))
    assert torch.equal(background_box_sizes(50)[:20], background_box_sizes(20))  # the same per image, any length
    # and the same as every earlier study's: a changed seed or alpha would make head shares incomparable
    expected = torch.tensor([0.5449326038360596, 0.8731040358543396, 0.9993758797645569, 0.2649267911911011])
    assert torch.allclose(background_box_sizes(4), expected, rtol=0, atol=1e-6)  # float noise across CPUs at most
    many = background_box_sizes(10_000)  # Beta(1, 1): uniform, variance 1/12
    assert abs(float(many.mean()) - 0.5) < 0.01 and abs(float(many.var()) - 1 / 12) < 0.005


def test_known_objects_are_erased_instead_of_boxes():
    images = torch.full((2, 3, 8, 8), 100, dtype=torch.uint8)
    images[:, :, 2:4, 2:4] = 250
    objects = torch.zeros(2, 8, 8, dtype=torch.bool)
    objects[:, 2:4, 2:4] = True
    erased = background_only(images, object_masks=objects)
    mean = (100 * 60 + 250 * 4) / 64
    assert torch.equal(erased[:, :, 2:4, 2:4], torch.full((2, 3, 2, 2), round(mean), dtype=torch.uint8))
    assert torch.equal(erased[:, :, 5:], images[:, :, 5:])


def test_head_share_counts_predictions_of_many_shot_classes():
    # [true, predicted]: 10 predictions, 6 of them in classes 0 and 1
    confusion = torch.tensor([[2, 1, 0, 0], [0, 1, 2, 0], [1, 0, 1, 0], [1, 0, 0, 1]])
    assert head_share(confusion, [0, 1]) == pytest.approx(0.6)
    assert math.isnan(head_share(confusion, []))  # no many-shot class: missing, not 0
    assert math.isnan(head_share(torch.zeros(3, 3, dtype=torch.long), [0]))
    assert uniform_head_share({"many": 2, "medium": 1, "few": 1}) == 0.5
