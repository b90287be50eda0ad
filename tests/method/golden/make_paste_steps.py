"""Writes paste_steps.pt: the losses of the first reconstruction's step (paste), as the code computed
them before `compose: erase` existed (commit 42ef9a1), for fixed inputs and generator states.

It was run once, at that commit: `.venv/bin/python tests/method/golden/make_paste_steps.py`.
tests/method/test_paste_pin.py reads the file and asks today's code for the same losses, to the bit.
"""

from pathlib import Path

import torch

from smcl_tune.config import MethodConfig
from smcl_tune.method.batch import Batch
from smcl_tune.method.step import StepSettings, step_loss
from smcl_tune.models import build_network

NUM_CLASSES = 5
# Each case: the old settings (threshold masks from the minor image were the defaults then).
CASES = {
    "threshold_minor": {"saliency_threshold": 0.5},
    "threshold_minor_t03_minor_label": {"saliency_threshold": 0.3, "soft_label": "minor", "loss_weight": 0.7},
    "box_minor": {"mask_mode": "box", "box_alpha": 1.0},
    "threshold_head_source": {"mask_source": "head", "saliency_threshold": 0.4},
    "erase_head_noise": {"erase_head": True, "fill": "noise", "saliency_threshold": 0.5},
    "mask_only": {"method": "mask_only", "saliency_threshold": 0.5},
}


def main() -> None:
    generator = torch.Generator().manual_seed(7)
    head = torch.randn(8, 3, 16, 16, generator=generator)
    head_labels = torch.randint(0, NUM_CLASSES, (8,), generator=generator)
    minor = torch.randn(8, 3, 16, 16, generator=generator)
    minor_labels = torch.randint(0, NUM_CLASSES, (8,), generator=generator)
    torch.manual_seed(0)
    network = build_network("small_cnn", NUM_CLASSES).eval()
    inputs = {"head": head, "head_labels": head_labels, "minor": minor, "minor_labels": minor_labels}
    cases = {}
    for name, fields in CASES.items():
        fields = dict(fields)
        method = fields.pop("method", "smcl")
        settings = StepSettings(MethodConfig(name=method, **fields), NUM_CLASSES)
        output = step_loss(
            settings, network, Batch(head, head_labels, minor, minor_labels), torch.Generator().manual_seed(3)
        )
        cases[name] = {
            "method": method,
            "fields": fields,
            "loss": output.loss.detach(),
            "classification_loss": output.classification_loss.detach(),
            "contrastive_loss": output.contrastive_loss.detach(),
            "mask_areas": output.mask_areas.detach(),
        }
    torch.save(
        {"inputs": inputs, "network": network.state_dict(), "generator_seed": 3, "cases": cases},
        Path(__file__).with_name("paste_steps.pt"),
    )


if __name__ == "__main__":
    main()
