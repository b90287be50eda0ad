"""A fused group's slot values (trial/fused/slot_values.py): a step reading them is the step of the
slot's member at the time it runs, and what they leave fixed is the member's recorded shape."""

from dataclasses import replace

import pytest
import torch

from smcl_tune.config import MethodConfig
from smcl_tune.method.batch import Batch
from smcl_tune.method.step import StepSettings, step_loss
from smcl_tune.models import build_network
from smcl_tune.trial.fused.slot_values import SlotValues, recorded_shape

NUM_CLASSES = 5
COUNTS = torch.tensor([400.0, 120.0, 40.0, 12.0, 4.0])


def _shape(**method) -> tuple:
    return recorded_shape(StepSettings(MethodConfig(**method), NUM_CLASSES))


def test_members_that_differ_in_values_or_plans_share_a_recorded_shape_and_choices_part_them():
    base = {"name": "smcl", "mask_mode": "box"}
    values = {"temperature": 0.3, "loss_weight": 0.2, "saliency_threshold": 0.8, "box_alpha": 4.0}
    planned = {"mask_probability": 0.9, "mask_start_epoch": 1, "sampler_beta": 0.99, "drw_start_epoch": 3}
    assert _shape(**base) == _shape(**base, **values) == _shape(**base, **planned)
    for choice in ({"mask_mode": "threshold"}, {"fill": "noise"}, {"saliency_blur_sigma": 2.0}, {"name": "mask_only"}):
        assert _shape(**{**base, **choice}) != _shape(**base), choice
    assert _shape(**base, loss_weight=0.0) != _shape(**base), "no contrastive term: a pass without embeddings"


@pytest.mark.parametrize(
    "method",
    [
        {"name": "smcl", "mask_mode": "box", "classifier_loss": "ldam_drw", "ldam_max_margin": 0.3, "ldam_scale": 12},
        {"name": "smcl", "mask_mode": "threshold", "saliency_threshold": 0.35, "temperature": 0.07, "loss_weight": 2},
        {"name": "cmo", "box_alpha": 0.4, "classifier_loss": "ldam_drw"},
        {"name": "supcon", "temperature": 0.3, "loss_weight": 0.6},
    ],
    ids=["smcl box ldam", "smcl threshold", "cmo ldam", "supcon"],
)
def test_a_step_reading_a_slot_written_after_it_was_bound_is_the_new_members_step(method):
    """The slot's values are bound first, as a recorded step holds them, and written with the
    member's values afterwards (the refill): the step equals the member's own, on its floats."""
    torch.manual_seed(0)
    network = build_network("small_cnn", NUM_CLASSES, classifier="cosine").eval()
    generator = torch.Generator().manual_seed(1)
    x_b, x_m = torch.randn(8, 3, 16, 16, generator=generator), torch.randn(8, 3, 16, 16, generator=generator)
    batch = Batch(x_b, torch.randint(0, NUM_CLASSES, (8,), generator=generator), x_m, torch.arange(8) % NUM_CLASSES)
    own = StepSettings(MethodConfig(**method), NUM_CLASSES)
    slots = SlotValues([MethodConfig(name=method["name"]), MethodConfig(name="ce")], torch.device("cpu"))
    bound = replace(own, values=slots.of_slot(0))
    slots.set_slot(0, own.method)

    theirs = step_loss(own, network, batch, torch.Generator().manual_seed(3), None, COUNTS)
    mine = step_loss(bound, network, batch, torch.Generator().manual_seed(3), None, COUNTS)
    for name in ("loss", "classification_loss", "contrastive_loss", "mask_areas"):
        torch.testing.assert_close(getattr(mine, name), getattr(theirs, name), rtol=1e-6, atol=1e-7)
    assert float(bound.values.box_alpha) == method.get("box_alpha", 1.0)
    slots.set_slot(0, MethodConfig(name="ce"))
    assert float(bound.values.temperature) == pytest.approx(MethodConfig().temperature), "the views follow the slot"
