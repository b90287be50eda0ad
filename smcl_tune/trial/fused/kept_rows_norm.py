"""BatchNorm whose training statistics are taken over some rows of the batch only: the fixed-shape
group step (kinds_step.py) forwards a member that does not mask through its kind's masking pass,
[x_b ; x_tilde] (n = 2B or 3B rows), and gets its plain step's pass over x_b alone from it
(FUSION.md: "give BatchNorm per-sample weights that leave out the unused rows").

Each layer normalises, for a member that keeps x_b's B rows alone, x_b's rows repeated to the
pass's n rows (row i is x[i mod B]) instead of x; for one that keeps every row, x. A batch of c
copies of the kept rows has their mean and biased variance, so every kept row's output is
BatchNorm's over the kept rows alone. So are the gradients: a left-out row's copy receives no
gradient of its own (its loss is left out), and the part it receives through the batch's mean and
variance flows back to the row it copies, which sums to BatchNorm's gradient over the kept rows
(c copies of each row give each the batch's terms c times, over c times the count). The choice
is made on the device (KeptRowsCopy: torch.where, per member, x_b's rows broadcast over the
copies); a gather by row indices would, under vmap, hold an int64 index of the activation's shape
for the backward (measured: a third more memory held for a ResNet-32 pass's backward,
docs/RESULTS.md). torch's own batch norm runs the pass, so a member that keeps every row gets
torch's kernels unchanged. The running statistics are moved as torch's BatchNorm2d moves them
over the kept rows (M values a channel: the mean, and the variance times M / (M - 1), where
torch's pass used N / (N - 1) of the N values of all rows: rescaled after it)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from smcl_tune.trial.fused.folded_norm import FoldedBatchNorm, with_batch_norms_replaced


@dataclass(frozen=True)
class KeptRows:
    """The rows a vmapped pass of k members takes each member's BatchNorm statistics over: every
    row where keeps_all[i], else the first head_count (x_b's), of n = c * head_count rows."""

    keeps_all: torch.Tensor  # [k] bool, on the device
    head_count: int


def kept_heads(keeps_all: torch.Tensor, head_count: int, rows: int) -> KeptRows:
    """KeptRows of a pass of `rows` rows: all of them where keeps_all, x_b's head_count otherwise."""
    if rows % head_count:
        raise ValueError(f"kept-rows BatchNorm: {rows} rows are not a whole number of copies of {head_count}")
    return KeptRows(keeps_all, head_count)


class KeptRowsCopy(torch.autograd.Function):
    """x as BatchNorm is to see it: x itself where keeps_all, else x_b's first head_count rows
    broadcast over its copies. The backward gives x_b's rows the sum of their copies' gradients and
    the others none, in one pass (autograd's own, through where, the broadcast and the slice, wrote
    the activation's size several times)."""

    generate_vmap_rule = True

    @staticmethod
    def forward(x: torch.Tensor, keeps_all: torch.Tensor, head_count: int) -> torch.Tensor:
        copies = x.reshape(x.shape[0] // head_count, head_count, *x.shape[1:])
        return torch.where(keeps_all, copies, copies[:1]).reshape(x.shape)

    @staticmethod
    def setup_context(ctx, inputs: tuple, output: torch.Tensor) -> None:
        _, keeps_all, head_count = inputs
        ctx.save_for_backward(keeps_all)
        ctx.head_count = head_count

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None, None]:
        (keeps_all,) = ctx.saved_tensors
        copies = grad.reshape(grad.shape[0] // ctx.head_count, ctx.head_count, *grad.shape[1:])
        own = torch.where(keeps_all, copies, 0)
        own[0] = torch.where(keeps_all, copies[0], copies.sum(0))
        return own.reshape(grad.shape), None, None


class KeptRowsBatchNorm2d(nn.Module):
    """A BatchNorm2d in train mode over a member's kept rows: all of them when `keeps_all` (a
    buffer, bound per call by functional_call: one bool a member under vmap; not part of any
    checkpoint), else the first `head_count` (set for each pass)."""

    def __init__(self, norm: nn.BatchNorm2d) -> None:
        super().__init__()
        if norm.momentum is None or not norm.affine or not norm.track_running_stats:
            raise ValueError("kept-rows BatchNorm: needs an affine BatchNorm2d with a momentum and running statistics")
        self.eps, self.momentum = norm.eps, norm.momentum
        self.weight, self.bias = norm.weight, norm.bias
        self.register_buffer("running_mean", norm.running_mean)
        self.register_buffer("running_var", norm.running_var)
        self.register_buffer("num_batches_tracked", norm.num_batches_tracked)
        device = norm.running_mean.device
        self.register_buffer("keeps_all", torch.ones((), dtype=torch.bool, device=device), persistent=False)
        self.head_count = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        rows = x.shape[0]
        kept = KeptRowsCopy.apply(x, self.keeps_all, self.head_count)
        mean, variance = self.running_mean.clone(), self.running_var.clone()  # torch's pass moves these
        out = FoldedBatchNorm.apply(kept, self.weight, self.bias, mean, variance, self.momentum, self.eps)
        with torch.no_grad():
            # torch moved the running variance by m * var * N / (N - 1) over all N = n H W values
            # of `kept`; BatchNorm2d over the kept rows alone moves it by m * var * M / (M - 1)
            # (C values: cheaper than a second pass over the activations for the variance).
            pixels = x.shape[2] * x.shape[3]
            every = rows * pixels
            own = torch.where(self.keeps_all, rows, self.head_count) * pixels
            moved = variance - (1 - self.momentum) * self.running_var
            self.running_var.copy_(variance + moved * (((every - 1) / every) * own / (own - 1) - 1))
            self.running_mean.copy_(mean)
            self.num_batches_tracked.add_(1)
        return out


def kept_rows(network: nn.Module) -> tuple[nn.Module, list[str]]:
    """A copy of `network` whose BatchNorm2d layers take their statistics over kept rows, and those
    layers' names (each takes its members' choice as the buffer `<name>.keeps_all`)."""
    return with_batch_norms_replaced(network, lambda _, module: KeptRowsBatchNorm2d(module), "kept-rows BatchNorm")
