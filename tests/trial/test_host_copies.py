"""An epoch makes its tensors from host data a fixed number of times, not once per step: one
trial's epoch, and a fused group's (a CUDA graph of the step can hold no such copy).

On CUDA each tensor made from Python numbers is a copy from host memory that waits for the GPU:
the first GPU check counted 151 such waits in one SMCL epoch of CIFAR-10-LT (the saliency's
luma weights and the mask-area count, every step). Such a tensor shows on any device as
`aten.lift_fresh`, so the count is checked here on the CPU. A value read back to the host
(`aten._local_scalar_dense`: `.item()`, `bool(tensor)`) is not counted here: on the CPU, reads
that never wait on CUDA happen every step (one_hot's range check runs on the CPU only; the step
generator's draws are host tensors by design), so a count cannot tell them from a real wait.
"""

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from benchmarks.stepped_trial import SteppedTrial
from smcl_tune.config import trial_config_from_dict
from smcl_tune.trial.fused.group_run import build_group
from smcl_tune.trial.fused.stacked_network import STRATEGIES
from tests.trial.test_train_loop import coded_data, config

MASKING = {"mask_start_epoch": 0, "mask_end_epoch": 2, "mask_probability": 1.0}
METHODS = [
    {"name": "smcl"},
    {"name": "smcl", "mask_mode": "threshold"},
    {"name": "smcl", "compose": "paste", "mask_mode": "threshold", "mask_source": "minor"},
    {"name": "ce", "mask_end_epoch": None},
]
IDS = ["erase-box", "erase-threshold", "paste", "ce"]


class CountHostTensors(TorchDispatchMode):
    def __init__(self):
        super().__init__()
        self.count = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func is torch.ops.aten.lift_fresh.default:
            self.count += 1
        return func(*args, **(kwargs or {}))


def _trial_config(method: dict, batch_size: int, seed: int = 0):
    trial_config = trial_config_from_dict(config({**MASKING, **method}, 2, batch_size))
    trial_config.training.seed = seed
    return trial_config


def host_tensors_in_an_epoch(method: dict, batch_size: int) -> int:
    trial = SteppedTrial.build(_trial_config(method, batch_size), coded_data(), torch.device("cpu"))
    trial.epoch = 1
    with CountHostTensors() as counter:
        metrics = trial.train_epoch()
    assert metrics["masked_step_fraction"] == 1.0 or method["name"] != "smcl"
    return counter.count


def host_tensors_in_a_fused_epoch(method: dict, batch_size: int, strategy: str) -> int:
    configs = [_trial_config(method, batch_size, seed) for seed in range(3)]
    configs[1].training.lr = 0.02  # members with their own rates: the rates are read per step
    group = build_group(configs, coded_data(), torch.device("cpu"), strategy=strategy)
    for member in group.members:
        member.epoch = 1
    with CountHostTensors() as counter:
        metrics = group.train_epoch(group.members)
    assert all(epoch["masked_step_fraction"] == 1.0 for epoch in metrics.values()) or method["name"] != "smcl"
    return counter.count


@pytest.mark.parametrize("method", METHODS, ids=IDS)
def test_an_epoch_of_more_steps_makes_no_more_tensors_from_host_data(method):
    few_steps = host_tensors_in_an_epoch(method, batch_size=64)
    many_steps = host_tensors_in_an_epoch(method, batch_size=8)
    assert many_steps == few_steps


@pytest.mark.parametrize("strategy", STRATEGIES)
@pytest.mark.parametrize("method", METHODS, ids=IDS)
def test_a_fused_epoch_of_more_steps_makes_no_more_tensors_from_host_data(method, strategy):
    few_steps = host_tensors_in_a_fused_epoch(method, 64, strategy)
    many_steps = host_tensors_in_a_fused_epoch(method, 8, strategy)
    assert many_steps == few_steps
