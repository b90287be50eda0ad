"""BatchNorm in a vmapped pass under CUDA's bf16 autocast.

On CUDA every pass runs under bf16 autocast (trial/device.py), so a convolution gives bf16
activations, vmapped or not. An unfused trial's BatchNorm2d takes them with its float32 weights and
running statistics: a mixed-precision batch norm, which normalises in float32 and gives bf16.
Under vmap the same layer fails: torch.func's batch rule for batch norm calls the kernel with a
weight of the input's dtype beside the float32 running statistics, which the kernels refuse
("expected scalar type BFloat16 but found Float"; tests/trial/test_float32_norm.py shows it on the
CPU, whose autocast leaves a vmapped convolution in float32, so that the CPU's own groups never
meet it). A vmapped pass therefore gives BatchNorm its input in float32 and takes its output back
in the input's dtype: the trial's arithmetic, up to the kernels' rounding. In float32 (the CPU) both
casts are no-ops. On CUDA the float32 copy is what BatchNorm keeps for its backward: twice the
bytes of the bf16 activation it replaces."""

from __future__ import annotations

import copy

import torch
from torch import nn


class Float32BatchNorm2d(nn.BatchNorm2d):
    """A BatchNorm2d that normalises its input in float32 and gives it back in the input's dtype."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x.float()).to(x.dtype)


def float32_norms(network: nn.Module) -> nn.Module:
    """A copy of `network` (the structure a vmapped pass calls) whose BatchNorm2d layers are
    Float32BatchNorm2d: the same parameters and buffers, by the same names."""
    copied = copy.deepcopy(network)
    for name, module in list(copied.named_modules()):
        if type(module) is not nn.BatchNorm2d:
            continue
        replacement = Float32BatchNorm2d(
            module.num_features,
            module.eps,
            module.momentum,
            module.affine,
            module.track_running_stats,
            device=module.running_mean.device if module.running_mean is not None else None,
        )
        parent_name, _, child = name.rpartition(".")
        setattr(copied.get_submodule(parent_name) if parent_name else copied, child, replacement)
    return copied
