"""Writes paste_steps_train.pt: the losses of the first reconstruction's step (paste) in train mode
(BatchNorm over the step's own forward pass), as the code computed them at commit 42ef9a1, for the
inputs, weights and generator seed of paste_steps.pt. Run once, in a worktree of that commit:
`PYTHONPATH=. python tests/method/golden/make_paste_steps_train.py` (this text is that commit's API)."""

from pathlib import Path

import torch

from smcl_tune.config import MethodConfig
from smcl_tune.method.step import StepSettings, step_loss
from smcl_tune.models import build_network

NUM_CLASSES = 5
GOLDEN = Path(__file__).with_name("paste_steps.pt")  # copied beside this script in the worktree
CASES = {
    "threshold_minor": {"saliency_threshold": 0.5},
    "threshold_minor_t03_minor_label": {"saliency_threshold": 0.3, "soft_label": "minor", "loss_weight": 0.7},
    "box_minor": {"mask_mode": "box", "box_alpha": 1.0},
    "threshold_head_source": {"mask_source": "head", "saliency_threshold": 0.4},
    "erase_head_noise": {"erase_head": True, "fill": "noise", "saliency_threshold": 0.5},
    "mask_only": {"method": "mask_only", "saliency_threshold": 0.5},
}


def main() -> None:
    golden = torch.load(GOLDEN, weights_only=True)
    inputs, start = golden["inputs"], golden["network"]
    network = build_network("small_cnn", NUM_CLASSES).train()
    cases = {}
    for name, fields in CASES.items():
        fields = dict(fields)
        method = fields.pop("method", "smcl")
        network.load_state_dict(start)  # each case from the same weights and BatchNorm statistics
        settings = StepSettings.from_config(MethodConfig(name=method, **fields), NUM_CLASSES)
        output = step_loss(
            settings,
            network,
            inputs["head"],
            inputs["head_labels"],
            inputs["minor"],
            inputs["minor_labels"],
            torch.Generator().manual_seed(golden["generator_seed"]),
        )
        cases[name] = {
            "method": method,
            "fields": fields,
            "loss": output.loss.detach(),
            "classification_loss": output.classification_loss.detach(),
            "contrastive_loss": output.contrastive_loss.detach(),
            "mask_areas": output.mask_areas.detach(),
            "running_mean": {k: v.clone() for k, v in network.state_dict().items() if k.endswith("running_mean")},
        }
    torch.save({"cases": cases}, Path(__file__).with_name("paste_steps_train.pt"))


if __name__ == "__main__":
    main()
