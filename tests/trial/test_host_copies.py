"""An epoch exchanges data with the host a fixed number of times, not once per step: one
trial's epoch, and a fused group's (a CUDA graph of the step can hold no such exchange).

On CUDA each tensor made from Python numbers is a copy from host memory that waits for the GPU:
the first GPU check counted 151 such waits in one SMCL epoch of CIFAR-10-LT (the saliency's
luma weights and the mask-area count, every step). Such a tensor shows on any device as
`aten.lift_fresh`, and a value read back to the host (`.item()`, `bool(tensor)`) as
`aten._local_scalar_dense`, so both are counted here on the CPU. A CPU tensor's `.tolist()`,
`.numpy()` or `.cpu()` reaches no operator here: the CUDA twin at the end counts those. Reads of the step
generator's draws are not counted: that generator lives on the host on every device
(trial/components.py), so reading its draws never waits for a GPU.
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


class CountHostTraffic(TorchDispatchMode):
    """Counts tensors made from host data and values read back to the host, but for reads of what
    the host generators drew, or of what was computed from those draws alone (a copy towards the
    training device is a device tensor: its reads count)."""

    def __init__(self, host_generators: list[torch.Generator]):
        super().__init__()
        self.host_generators = {generator._cdata for generator in host_generators}  # a draw wraps it anew
        self.count = 0
        # by the C++ tensor (a read may see a new Python wrapper of it), held so that none is reused
        self._host_draws: dict[int, torch.Tensor] = {}

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        result = func(*args, **kwargs)
        if func is torch.ops.aten.lift_fresh.default:
            self.count += 1
        elif func is torch.ops.aten._local_scalar_dense.default:
            self.count += args[0]._cdata not in self._host_draws
        elif isinstance(result, torch.Tensor) and self._drawn_on_the_host(func, (*args, *kwargs.values())):
            self._host_draws[result._cdata] = result
        return result

    def _drawn_on_the_host(self, func, arguments: tuple) -> bool:
        if any(getattr(argument, "_cdata", None) in self.host_generators for argument in arguments):
            return True
        if func in (torch.ops.aten._to_copy.default, torch.ops.aten.copy_.default):
            return False
        tensors = [argument for argument in arguments if isinstance(argument, torch.Tensor)]
        return bool(tensors) and all(tensor._cdata in self._host_draws for tensor in tensors)


def _trial_config(method: dict, batch_size: int, seed: int = 0):
    trial_config = trial_config_from_dict(config({**MASKING, **method}, 2, batch_size))
    trial_config.training.seed = seed
    return trial_config


def host_traffic_in_an_epoch(method: dict, batch_size: int) -> int:
    trial = SteppedTrial.build(_trial_config(method, batch_size), coded_data(), torch.device("cpu"))
    trial.epoch = 1
    with CountHostTraffic([trial.parts.generators.steps]) as counter:
        metrics = trial.train_epoch()
    assert metrics["masked_step_fraction"] == 1.0 or method["name"] != "smcl"
    return counter.count


def host_traffic_in_a_fused_epoch(method: dict, batch_size: int, strategy: str) -> int:
    configs = [_trial_config(method, batch_size, seed) for seed in range(3)]
    configs[1].training.lr = 0.02  # members with their own rates: the rates are read per step
    group = build_group(configs, coded_data(), torch.device("cpu"), strategy=strategy)
    group.train_epoch(group.members)  # epoch 0 takes the mask gallery's pairs (host copies, once a trial)
    with CountHostTraffic([member.parts.generators.steps for member in group.members]) as counter:
        metrics = group.train_epoch(group.members)
    assert all(epoch["masked_step_fraction"] == 1.0 for epoch in metrics.values()) or method["name"] != "smcl"
    return counter.count


@pytest.mark.parametrize("method", METHODS, ids=IDS)
def test_an_epoch_of_more_steps_exchanges_no_more_with_the_host(method):
    few_steps = host_traffic_in_an_epoch(method, batch_size=64)
    many_steps = host_traffic_in_an_epoch(method, batch_size=8)
    assert many_steps == few_steps


@pytest.mark.parametrize("strategy", STRATEGIES)
@pytest.mark.parametrize("method", METHODS, ids=IDS)
def test_a_fused_epoch_of_more_steps_exchanges_no_more_with_the_host(method, strategy):
    # 4 steps against 15 (233 images): every operator of each member's step runs through the
    # counting mode in Python, so the many-step epoch is the test's cost
    few_steps = host_traffic_in_a_fused_epoch(method, 64, strategy)
    many_steps = host_traffic_in_a_fused_epoch(method, 16, strategy)
    assert many_steps == few_steps


def cuda_synchronisations_in_an_epoch(method: dict, batch_size: int) -> int:
    import warnings

    trial = SteppedTrial.build(_trial_config(method, batch_size), coded_data(), torch.device("cuda"))
    trial.epoch = 1
    torch.cuda.synchronize()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.cuda.set_sync_debug_mode("warn")
        try:
            trial.train_epoch()
        finally:
            torch.cuda.set_sync_debug_mode("default")
    return sum("synchroniz" in str(warning.message) for warning in caught)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("method", METHODS, ids=IDS)
def test_on_cuda_an_epoch_of_more_steps_waits_for_the_gpu_no_more_often(method):
    # CUDA's own count of the host's waits: the CPU tests' count, checked where it matters
    assert cuda_synchronisations_in_an_epoch(method, 8) == cuda_synchronisations_in_an_epoch(method, 64)
