"""N copies of one network as stacked parameters and buffers (torch.func): member m's weights are
the m-th slice of each. A forward pass of some members runs each member's images through its own
weights and its own BatchNorm statistics, in one of two ways:

- "vmap": one vmapped call over the members' slices (a convolution becomes one grouped
  convolution over all members): few, wide kernels, for a device whose steps are bound by kernel
  launches and the host (CUDA);
- "loop": the members one after another, each its own slices through the network's own
  operations: the unfused trial's kernels, for a CPU, where the step is bound by arithmetic and a
  grouped convolution runs slower than the plain ones (benchmarks/fused_speed.py).

Both give every member its own gradients and statistics; the equivalence tests run both."""

from __future__ import annotations

import copy
from collections.abc import Sequence

import torch
from torch import nn
from torch.func import functional_call, stack_module_state, vmap

from smcl_tune.trial.fused.folded_norm import folded_norms
from smcl_tune.trial.fused.kept_rows_norm import KeptRows, kept_rows

STRATEGIES = ("vmap", "loop")


def default_strategy(device: torch.device) -> str:
    return "vmap" if device.type == "cuda" else "loop"


class StackedNetwork:
    def __init__(self, networks: Sequence[nn.Module], strategy: str = "vmap") -> None:
        if len({type(network) for network in networks}) != 1:
            raise ValueError("fused members need networks of one architecture")
        if strategy not in STRATEGIES:
            raise ValueError(f"strategy: one of {', '.join(STRATEGIES)}, got {strategy!r}")
        self.strategy = strategy
        self.params, self.buffers = stack_module_state(list(networks))  # parameters: leaves that take grads
        self.base = copy.deepcopy(networks[0]).to("meta")  # the structure; its own weights are never used
        self.vmapped_base = folded_norms(self.base)  # the structure of a vmapped pass (folded_norm.py)
        self.size = len(networks)
        self.indices: dict[tuple[int, ...], torch.Tensor] = {}
        self.dtype = next(iter(self.params.values())).dtype
        self.kept_rows_base: tuple[nn.Module, list[str]] | None = None  # kept_rows(base): _kept_rows

    def parameters(self) -> list[torch.Tensor]:
        return list(self.params.values())

    def index_of(self, members: Sequence[int]) -> torch.Tensor:
        """`members` as a device index, copied to the device once per set of members."""
        key = tuple(members)
        if key not in self.indices:
            self.indices[key] = torch.as_tensor(key, device=next(iter(self.params.values())).device)
        return self.indices[key]

    def _slices(self, members: Sequence[int]) -> tuple[dict, dict, torch.Tensor | None]:
        if list(members) == list(range(self.size)):
            return self.params, self.buffers, None
        index = self.index_of(members)
        params = {name: value[index] for name, value in self.params.items()}  # a differentiable gather
        buffers = {name: value[index] for name, value in self.buffers.items()}  # copies: written back below
        return params, buffers, index

    def forward(
        self,
        members: Sequence[int],
        images: torch.Tensor,
        with_embedding: bool = False,
        train: bool = True,
        kept: KeptRows | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The logits (and embeddings) of `members`, each on its own images: images [k, n, C, H, W]
        for the k members -> logits [k, n, classes]. In train mode each member's BatchNorm
        statistics move with its own images only; with `kept` (a vmapped pass, in train mode,
        whatever the strategy), with the rows it keeps for each member (kept_rows_norm.py)."""
        if self.strategy == "loop" and kept is None:
            return self._forward_each(members, images, with_embedding, train)
        params, buffers, index = self._slices(members)
        base, bound = self.vmapped_base, buffers
        if kept is not None:
            base, norms = self._kept_rows()
            for name in norms:
                base.get_submodule(name).head_count = kept.head_count
            bound = {**buffers, **{f"{name}.keeps_all": kept.keeps_all for name in norms}}
        out = self._vmapped(params, bound, images, with_embedding, train, base)
        if index is not None and train:
            with torch.no_grad():  # BatchNorm moved the gathered copies of these members' statistics
                for name, value in buffers.items():
                    self.buffers[name][index] = value
        return out

    def _kept_rows(self) -> tuple[nn.Module, list[str]]:
        """The structure with kept-rows BatchNorm layers, and their names (made when first asked)."""
        if self.kept_rows_base is None:
            self.kept_rows_base = kept_rows(self.base)
        return self.kept_rows_base

    def _vmapped(
        self,
        params: dict,
        buffers: dict,
        images: torch.Tensor,
        with_embedding: bool,
        train: bool,
        base: nn.Module,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """One vmapped pass over the members' slices `params` / `buffers` (moved in place in train
        mode), through `base` (the network's structure)."""
        base.train(train)

        def one(member_params, member_buffers, member_images):
            logits, embeddings = functional_call(
                base, (member_params, member_buffers), (member_images,), {"with_embedding": with_embedding}
            )
            return (logits, embeddings) if with_embedding else logits

        out = vmap(one)(params, buffers, images)
        return out if with_embedding else (out, None)

    def _forward_each(
        self, members: Sequence[int], images: torch.Tensor, with_embedding: bool, train: bool
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        outputs = [
            MemberView(self, member).train(train)(member_images, with_embedding)
            for member, member_images in zip(members, images)
        ]
        logits = torch.stack([output[0] for output in outputs])
        return logits, torch.stack([output[1] for output in outputs]) if with_embedding else None

    def member_state(self, member: int) -> dict[str, torch.Tensor]:
        """Member `member`'s weights and buffers as its own network's state_dict (the unfused keys)."""
        state = {name: value[member].detach().clone() for name, value in self.params.items()}
        state.update({name: value[member].detach().clone() for name, value in self.buffers.items()})
        return state

    def load_member_state(self, member: int, state: dict[str, torch.Tensor]) -> None:
        """Member `member`'s weights and buffers from a network's state_dict (a checkpoint's)."""
        with torch.no_grad():
            for name, value in (*self.params.items(), *self.buffers.items()):
                value[member].copy_(state[name])


class MemberView:
    """One member as the step sees a network: called on its images (a model-based saliency asks
    for its logits), switched between train and eval mode. It runs the member's own slices through
    the network's own operations, not a vmapped call, so that a saliency map of equal weights is
    the unfused trial's to the bit (a threshold or an argmax of it would move with float noise);
    in train mode its BatchNorm statistics, views of the stacked ones, move in place."""

    def __init__(self, stacked: StackedNetwork, member: int) -> None:
        self.stacked = stacked
        self.member = member
        self.training = True

    @property
    def backbone(self):
        """The network's backbone module (a class activation map hooks its last block)."""
        return self.stacked.base.backbone

    def train(self, mode: bool = True) -> MemberView:
        self.training = mode
        return self

    def eval(self) -> MemberView:
        return self.train(False)

    def __call__(self, images: torch.Tensor, with_embedding: bool = False):
        stacked, member = self.stacked, self.member
        params = {name: value[member] for name, value in stacked.params.items()}
        buffers = {name: value[member] for name, value in stacked.buffers.items()}
        stacked.base.train(self.training)
        return functional_call(stacked.base, (params, buffers), (images,), {"with_embedding": with_embedding})
