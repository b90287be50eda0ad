"""BatchNorm whose training statistics are taken over some rows of the batch only: the fixed-shape
group step (kinds_step.py) forwards a member that does not mask through its kind's masking pass,
[x_b ; x_tilde] (n = 2B or 3B rows), and gets its plain step's pass over x_b alone from it
(FUSION.md: "give BatchNorm per-sample weights that leave out the unused rows").

Each layer normalises x[sources] instead of x, where sources[i] = i for a kept row and a kept row
for a left-out one, with every kept row repeated equally often (i mod B for x_b's B rows). A batch
of c copies of the kept rows has their mean and biased variance, so every kept row's output is
BatchNorm's over the kept rows alone. So are the gradients: a left-out row's copy receives no
gradient of its own (its loss is left out), and the part it receives through the batch's mean and
variance flows back to the row it copies, which sums to BatchNorm's gradient over the kept rows
(c copies of each row give each the batch's terms c times, over c times the count). torch's own
batch norm runs the pass, so a member that keeps every row gets torch's kernels unchanged.
The running statistics are moved as torch's BatchNorm2d moves them over the kept rows (M values a
channel: the mean, and the variance times M / (M - 1), where torch's pass used N / (N - 1) of the
N values of all rows: rescaled after it)."""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn


class KeptRowsBatchNorm2d(nn.Module):
    """A BatchNorm2d in train mode over the rows `row_sources` names ([n] long, bound per call by
    functional_call; not part of any checkpoint)."""

    def __init__(self, norm: nn.BatchNorm2d) -> None:
        super().__init__()
        if norm.momentum is None or not norm.affine or not norm.track_running_stats:
            raise ValueError("kept-rows BatchNorm: needs an affine BatchNorm2d with a momentum and running statistics")
        self.eps, self.momentum = norm.eps, norm.momentum
        self.weight, self.bias = norm.weight, norm.bias
        self.register_buffer("running_mean", norm.running_mean)
        self.register_buffer("running_var", norm.running_var)
        self.register_buffer("num_batches_tracked", norm.num_batches_tracked)
        self.register_buffer(
            "row_sources", torch.zeros(0, dtype=torch.long, device=norm.running_mean.device), persistent=False
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        kept = x.index_select(0, self.row_sources)
        mean, variance = self.running_mean.clone(), self.running_var.clone()  # torch's pass moves these
        out = F.batch_norm(kept, mean, variance, self.weight, self.bias, True, self.momentum, self.eps)
        with torch.no_grad():
            # torch moved the running variance by m * var * N / (N - 1) over all N = n H W values
            # of `kept`; BatchNorm2d over the kept rows alone moves it by m * var * M / (M - 1)
            # (C values: cheaper than a second pass over the activations for the variance).
            pixels = x.shape[2] * x.shape[3]
            every = x.shape[0] * pixels
            own = (self.row_sources == torch.arange(x.shape[0], device=x.device)).sum() * pixels
            moved = variance - (1 - self.momentum) * self.running_var
            self.running_var.copy_(variance + moved * (((every - 1) / every) * own / (own - 1) - 1))
            self.running_mean.copy_(mean)
            self.num_batches_tracked.add_(1)
        return out


def kept_rows(network: nn.Module) -> tuple[nn.Module, list[str]]:
    """A copy of `network` whose BatchNorm2d layers take their statistics over kept rows, and those
    layers' names (each takes its rows as the buffer `<name>.row_sources`)."""
    copied = copy.deepcopy(network)
    norms = {
        name: module for name, module in copied.named_modules() if isinstance(module, nn.modules.batchnorm._NormBase)
    }
    others = sorted(name for name, module in norms.items() if type(module) is not nn.BatchNorm2d)
    if others:
        raise ValueError(f"kept-rows BatchNorm: only BatchNorm2d layers are supported, not {', '.join(others)}")
    for name in norms:
        parent_name, _, child = name.rpartition(".")
        parent = copied.get_submodule(parent_name) if parent_name else copied
        setattr(parent, child, KeptRowsBatchNorm2d(getattr(parent, child)))
    return copied, list(norms)


def head_sources(keeps_all: torch.Tensor, head_count: int, rows: int) -> torch.Tensor:
    """[k, rows] row sources of k members: every row its own for a member that keeps all
    (`keeps_all` [k] bool), x_b's B rows repeated (i mod B) for one that keeps x_b's alone."""
    if rows % head_count:
        raise ValueError(f"kept-rows BatchNorm: {rows} rows are not a whole number of copies of {head_count}")
    own = torch.arange(rows, device=keeps_all.device)
    return torch.where(keeps_all.view(-1, 1), own, own % head_count)
