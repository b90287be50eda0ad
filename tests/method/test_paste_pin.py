"""The first reconstruction stays reachable: `compose: paste, mask_mode: threshold, mask_source:
minor` gives the losses the code computed before `compose: erase` existed.

golden/paste_steps.pt was written by golden/make_paste_steps.py at commit 42ef9a1 (the code of
that time), with its inputs, network weights and generator seed, the network in eval mode;
golden/paste_steps_train.pt by golden/make_paste_steps_train.py (that commit's API, in a worktree
of it) for the same inputs in train mode: BatchNorm over the step's doubled forward pass, and the
running statistics that pass leaves.

Mask areas and BatchNorm statistics are compared to the bit, a loss to float32's epsilon, relative
(one or two units in the last place): torch's CPU kernels pick their vector width by the machine,
and on an AVX-512 machine the soft-label case's classification loss is 1 ulp from the one recorded
on the machine of that commit.
"""

from pathlib import Path

import pytest
import torch

from smcl_tune.config import MethodConfig
from smcl_tune.method.batch import Batch
from smcl_tune.method.step import StepSettings, step_loss
from smcl_tune.models import build_network

GOLDEN = torch.load(Path(__file__).with_name("golden") / "paste_steps.pt", weights_only=True)
TRAIN_GOLDEN = torch.load(Path(__file__).with_name("golden") / "paste_steps_train.pt", weights_only=True)
# What the defaults were then, set as fields now.
FIRST_RECONSTRUCTION = {
    "compose": "paste",
    "mask_mode": "threshold",
    "mask_source": "minor",
    "saliency": "spectral_residual",
}


def _within_float32_epsilon(value: torch.Tensor, recorded: torch.Tensor) -> bool:
    """Equal but for one or two units in the last place, in the same shape and dtype."""
    if value.shape != recorded.shape or value.dtype != recorded.dtype:
        return False
    return bool(((value - recorded).abs() <= torch.finfo(recorded.dtype).eps * recorded.abs()).all())


def _old_step(recorded: dict, network: torch.nn.Module):
    """The step of a recorded case with today's code, on the recorded inputs and generator seed."""
    network.load_state_dict(GOLDEN["network"])
    inputs = GOLDEN["inputs"]
    settings = StepSettings(MethodConfig(name=recorded["method"], **{**FIRST_RECONSTRUCTION, **recorded["fields"]}), 5)
    output = step_loss(
        settings,
        network,
        Batch(inputs["head"], inputs["head_labels"], inputs["minor"], inputs["minor_labels"]),
        torch.Generator().manual_seed(GOLDEN["generator_seed"]),
    )
    for name in ("loss", "classification_loss", "contrastive_loss"):
        assert _within_float32_epsilon(getattr(output, name).detach(), recorded[name]), name
    assert torch.equal(output.mask_areas, recorded["mask_areas"])


@pytest.mark.parametrize("case", sorted(GOLDEN["cases"]))
def test_paste_fields_give_the_losses_of_the_code_before_erase(case):
    _old_step(GOLDEN["cases"][case], build_network("small_cnn", 5).eval())


@pytest.mark.parametrize("case", sorted(TRAIN_GOLDEN["cases"]))
def test_in_train_mode_the_paste_fields_give_the_old_losses_and_batchnorm_statistics(case):
    recorded = TRAIN_GOLDEN["cases"][case]
    network = build_network("small_cnn", 5).train()
    _old_step(recorded, network)
    running = {key: value for key, value in network.state_dict().items() if key.endswith("running_mean")}
    assert running.keys() == recorded["running_mean"].keys()
    assert all(torch.equal(running[key], recorded["running_mean"][key]) for key in running)
