"""An epoch makes its tensors from host data a fixed number of times, not once per step.

On CUDA each tensor made from Python numbers is a copy from host memory that waits for the GPU:
the first GPU check counted 151 such waits in one SMCL epoch of CIFAR-10-LT (the saliency's
luma weights and the mask-area count, every step). Such a tensor shows on any device as
`aten.lift_fresh`, so the count is checked here on the CPU.
"""

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from benchmarks.stepped_trial import SteppedTrial
from smcl_tune.config import trial_config_from_dict
from tests.trial.test_train_loop import coded_data, config


class CountHostTensors(TorchDispatchMode):
    def __init__(self):
        super().__init__()
        self.count = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func is torch.ops.aten.lift_fresh.default:
            self.count += 1
        return func(*args, **(kwargs or {}))


def host_tensors_in_an_epoch(method: dict, batch_size: int) -> int:
    masking = {"mask_start_epoch": 0, "mask_end_epoch": 2, "mask_probability": 1.0}
    trial = SteppedTrial.build(
        trial_config_from_dict(config({**masking, **method}, 2, batch_size)),
        coded_data(),
        torch.device("cpu"),
    )
    trial.epoch = 1
    with CountHostTensors() as counter:
        metrics = trial.train_epoch()
    assert metrics["masked_step_fraction"] == 1.0 or method["name"] != "smcl"
    return counter.count


@pytest.mark.parametrize(
    "method",
    [
        {"name": "smcl"},
        {"name": "smcl", "mask_mode": "threshold"},
        {"name": "smcl", "compose": "paste", "mask_mode": "threshold", "mask_source": "minor"},
        {"name": "ce", "mask_end_epoch": None},
    ],
    ids=["erase-box", "erase-threshold", "paste", "ce"],
)
def test_an_epoch_of_more_steps_makes_no_more_tensors_from_host_data(method):
    few_steps = host_tensors_in_an_epoch(method, batch_size=64)
    many_steps = host_tensors_in_an_epoch(method, batch_size=8)
    assert many_steps == few_steps
