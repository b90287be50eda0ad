"""BatchNorm in a vmapped pass: one batch norm over the members' channels side by side.

A vmapped pass runs each BatchNorm2d as one kernel over the members folded into the channels,
[B, N x C, H, W], with the members' weights, biases and running statistics side by side as the
kernel's own [N x C] (HFTA's fused BatchNorm, Wang et al., MLSys 2021). torch.func's batch rule for
batch norm folds them too, but it gives the kernel a weight of ones in the input's dtype and
applies the members' weights after it. That rule
- refuses CUDA's bf16 activations: under CUDA's autocast a convolution gives bf16, vmapped or not
  (the CPU's autocast leaves a vmapped one in float32), and the kernel refuses a bf16 weight beside
  float32 running statistics ("expected scalar type BFloat16 but found Float");
- keeps two tensors of the activation's size for the backward (the folded input and the output
  before the weights), where a trial's batch norm keeps its input alone
  (benchmarks/fused_saved_memory.py).
Here the kernel is a trial's own mixed-precision batch norm: a bf16 input with float32 weights and
statistics, normalised in float32, given back in bf16, its folded input the one tensor it keeps.
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn


def _members_first(tensor: torch.Tensor, dim: int | None, count: int) -> torch.Tensor:
    return tensor.movedim(dim, 0) if dim is not None else tensor.expand(count, *tensor.shape)


class FoldedBatchNorm(torch.autograd.Function):
    """F.batch_norm in train mode, its running statistics moved in place; under vmap (its `vmap`
    rule) one kernel over the folded members, whose own operations take the backward."""

    @staticmethod
    def forward(x, weight, bias, running_mean, running_var, momentum: float, eps: float) -> torch.Tensor:
        return F.batch_norm(x, running_mean, running_var, weight, bias, True, momentum, eps)

    @staticmethod
    def setup_context(ctx, inputs, output) -> None:
        x, weight, bias, _, _, _, eps = inputs
        ctx.save_for_backward(x, weight, bias)
        ctx.eps = eps

    @staticmethod
    def backward(ctx, grad):
        # outside vmap (a kept-rows layer on its own): the pass again, which in train mode reads no
        # running statistics, differentiated by torch's own batch norm
        x, weight, bias = ctx.saved_tensors
        with torch.enable_grad():
            inputs = [tensor.detach().requires_grad_() for tensor in (x, weight, bias)]
            out = F.batch_norm(inputs[0], None, None, inputs[1], inputs[2], True, 0.0, ctx.eps)
            grads = torch.autograd.grad(out, inputs, grad)
        return (*grads, None, None, None, None)

    @staticmethod
    def vmap(info, in_dims, x, weight, bias, running_mean, running_var, momentum, eps):
        count = info.batch_size
        x = _members_first(x, in_dims[0], count)  # [N, B, C, H, W]
        rows, channels = x.shape[1], x.shape[2]
        folded = x.transpose(0, 1).reshape(rows, count * channels, *x.shape[3:])
        pairs = zip((running_mean, running_var), in_dims[3:5])
        statistics = [_members_first(running, dim, count) for running, dim in pairs]
        flat = [tensor.reshape(count * channels) for tensor in statistics]  # views of contiguous [N, C]
        out = F.batch_norm(
            folded,
            *flat,
            _members_first(weight, in_dims[1], count).reshape(count * channels),
            _members_first(bias, in_dims[2], count).reshape(count * channels),
            True,
            momentum,
            eps,
        )
        with torch.no_grad():
            for tensor, moved in zip(statistics, flat):
                if moved.data_ptr() != tensor.data_ptr():  # reshape copied a non-contiguous [N, C]
                    tensor.copy_(moved.view(count, channels))
        return out.view(rows, count, channels, *x.shape[3:]), 1


class FoldedBatchNorm2d(nn.BatchNorm2d):
    """A BatchNorm2d whose train-mode pass under vmap is FoldedBatchNorm; in eval mode torch's own."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return super().forward(x.float()).to(x.dtype)  # float32: the batch rule refuses bf16 here too
        self.num_batches_tracked.add_(1)
        return FoldedBatchNorm.apply(
            x, self.weight, self.bias, self.running_mean, self.running_var, self.momentum, self.eps
        )


def with_batch_norms_replaced(
    network: nn.Module, replacement: Callable[[str, nn.BatchNorm2d], nn.Module], what: str
) -> tuple[nn.Module, list[str]]:
    """A copy of `network` whose BatchNorm2d layers are `replacement(name, layer)`, and their names;
    a network with another kind of norm layer is refused (a vmapped pass would run torch's rule)."""
    copied = copy.deepcopy(network)
    norms = {
        name: module for name, module in copied.named_modules() if isinstance(module, nn.modules.batchnorm._NormBase)
    }
    others = sorted(name for name, module in norms.items() if type(module) is not nn.BatchNorm2d)
    if others:
        raise ValueError(f"{what}: only BatchNorm2d layers are supported, not {', '.join(others)}")
    for name, module in norms.items():
        parent_name, _, child = name.rpartition(".")
        setattr(copied.get_submodule(parent_name) if parent_name else copied, child, replacement(name, module))
    return copied, list(norms)


def _folded(name: str, module: nn.BatchNorm2d) -> FoldedBatchNorm2d:
    if module.momentum is None or not module.affine or not module.track_running_stats:
        raise ValueError(
            f"{name}: a folded batch norm needs an affine BatchNorm2d with a momentum and running statistics"
        )
    return FoldedBatchNorm2d(module.num_features, module.eps, module.momentum, device=module.running_mean.device)


def folded_norms(network: nn.Module) -> nn.Module:
    """A copy of `network` (the structure a vmapped pass calls) whose BatchNorm2d layers are
    FoldedBatchNorm2d: the same parameters and buffers, by the same names."""
    return with_batch_norms_replaced(network, _folded, "folded BatchNorm")[0]
