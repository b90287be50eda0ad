"""A fused group's slot values (trial/fused/slot_values.py): a step reading them is the step of the
slot's member at the time it runs, and what they leave fixed is the member's recorded shape."""

from dataclasses import replace

import pytest
import torch

from smcl_tune.config import MethodConfig
from smcl_tune.method.batch import Batch
from smcl_tune.method.step import StepSettings, step_loss
from smcl_tune.models import build_network
from smcl_tune.trial.device import autocast
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


DEVICES = [
    "cpu",
    pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")),
]


@pytest.mark.parametrize("device", DEVICES)
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
def test_a_step_reading_a_slot_written_after_it_was_bound_is_the_new_members_step(method, device):
    """The slot's values are bound first, as a recorded step holds them, and written with the
    member's values afterwards (the refill): the step equals the member's own, on its floats. On
    CUDA under the trials' bf16 autocast too, where a device tensor meeting a bf16 tensor would be
    rounded to bf16 (a temperature of 0.07 read as 0.0698) and a Python float would not."""
    device = torch.device(device)
    torch.manual_seed(0)
    network = build_network("small_cnn", NUM_CLASSES, classifier="cosine").eval().to(device)
    generator = torch.Generator().manual_seed(1)
    x_b, x_m = torch.randn(8, 3, 16, 16, generator=generator), torch.randn(8, 3, 16, 16, generator=generator)
    labels = torch.randint(0, NUM_CLASSES, (8,), generator=generator)
    batch = Batch(x_b.to(device), labels.to(device), x_m.to(device), (torch.arange(8) % NUM_CLASSES).to(device))
    own = StepSettings(MethodConfig(**method), NUM_CLASSES)
    slots = SlotValues([MethodConfig(name=method["name"]), MethodConfig(name="ce")], device)
    bound = replace(own, values=slots.of_slot(0))
    slots.set_slot(0, own.method)

    with autocast(device):
        theirs = step_loss(own, network, batch, torch.Generator().manual_seed(3), None, COUNTS.to(device))
        mine = step_loss(bound, network, batch, torch.Generator().manual_seed(3), None, COUNTS.to(device))
    for name in ("loss", "classification_loss", "contrastive_loss", "mask_areas"):
        torch.testing.assert_close(getattr(mine, name), getattr(theirs, name), rtol=1e-6, atol=1e-6)
    assert float(bound.values.box_alpha) == method.get("box_alpha", 1.0)
    slots.set_slot(0, MethodConfig(name="ce"))
    assert float(bound.values.temperature) == pytest.approx(MethodConfig().temperature), "the views follow the slot"
