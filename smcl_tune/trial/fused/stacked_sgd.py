"""SGD over stacked parameters with each member's own hyperparameters ([N] tensors broadcast over
its slice): torch.optim.SGD's update for each member, and only where that member's trial would
step. torch.optim.SGD leaves a parameter without a gradient as it is (no weight decay, no
momentum): so does this, for a member that did not use a parameter in a step (the projection head
of a pass without embeddings) or sat the step out."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from smcl_tune.config import TrainingConfig


def _per_member(values: Sequence, like: torch.Tensor, dtype: torch.dtype | None = None) -> torch.Tensor:
    """[N] values (a tensor already on the device, or host values) shaped to broadcast over a
    stacked tensor [N, ...]."""
    if isinstance(values, torch.Tensor):
        tensor = values.to(dtype=dtype or like.dtype)
    else:
        tensor = torch.as_tensor(list(values), dtype=dtype or like.dtype, device=like.device)
    return tensor.view(-1, *([1] * (like.dim() - 1)))


class StackedSGD:
    def __init__(self, params: Sequence[torch.Tensor], trainings: Sequence[TrainingConfig]) -> None:
        self.params = list(params)
        self.trainings = list(trainings)
        self.size = len(self.trainings)
        like = self.params[0]
        self.momentum = [_per_member([t.momentum for t in trainings], param) for param in self.params]
        self.decay = [_per_member([t.weight_decay for t in trainings], param) for param in self.params]
        self.nesterov = [_per_member([t.nesterov for t in trainings], param, torch.bool) for param in self.params]
        self.momentum_buffers = [torch.zeros_like(param) for param in self.params]
        # Per parameter, the members whose momentum buffer holds a step (torch's state for it exists).
        self.started = [torch.zeros(self.size, dtype=torch.bool, device=like.device) for _ in self.params]
        self.masks: dict[tuple[bool, ...], torch.Tensor] = {}

    def set_member(self, member: int, training: TrainingConfig) -> None:
        """Slot `member` becomes a new member's: its hyperparameters, and no momentum yet (a fresh
        torch.optim.SGD)."""
        self.trainings[member] = training
        with torch.no_grad():
            for position in range(len(self.params)):
                self.momentum[position][member] = training.momentum
                self.decay[position][member] = training.weight_decay
                self.nesterov[position][member] = training.nesterov
                self.momentum_buffers[position][member] = 0
                self.started[position][member] = False

    def zero_grad(self) -> None:
        for param in self.params:
            param.grad = None

    @torch.no_grad()
    def step(
        self, learning_rates: torch.Tensor | Sequence[float], used: Sequence[Sequence[bool] | torch.Tensor]
    ) -> None:
        """One step: parameter p of member m moves when used[p][m] (its gradient came from m's loss;
        host values, or a [N] bool device tensor, as a captured step needs),
        at m's learning rate; torch.optim.SGD's update: d = g + wd * p; b = d on a buffer's first
        step, else m * b + d; then d = d + m * b (Nesterov) or b; p = p - lr * d."""
        like = self.params[0]
        rates = _per_member(learning_rates, like).view(-1)
        for position, (param, buffer) in enumerate(zip(self.params, self.momentum_buffers)):
            if param.grad is None:
                continue
            stepping = used[position]
            if not isinstance(stepping, torch.Tensor):
                stepping = self.device_mask(stepping)
            fresh = stepping & ~self.started[position]
            momentum, nesterov = self.momentum[position], self.nesterov[position]
            update = param.grad + param * self.decay[position]
            with_momentum = momentum > 0
            new_buffer = torch.where(_per_member(fresh, param, torch.bool), update, buffer * momentum + update)
            direction = torch.where(nesterov, update + momentum * new_buffer, new_buffer)
            direction = torch.where(with_momentum, direction, update)
            moves = _per_member(stepping, param, torch.bool)
            rate = rates.view(-1, *([1] * (param.dim() - 1)))
            param.copy_(torch.where(moves, param - rate * direction, param))
            buffer.copy_(torch.where(moves & with_momentum, new_buffer, buffer))
            self.started[position] |= stepping & (with_momentum.view(-1))

    def device_mask(self, flags: Sequence[bool]) -> torch.Tensor:
        """[N] host bools as a device tensor; a group has few distinct masks: each is copied there once."""
        key = tuple(flags)
        if key not in self.masks:
            self.masks[key] = torch.as_tensor(key, dtype=torch.bool, device=self.params[0].device)
        return self.masks[key]

    def member_state(self, member: int, names: Sequence[str]) -> dict:
        """Member `member`'s optimizer state as torch.optim.SGD's state_dict over its network's
        parameters (in `names`' order, the network's own): a checkpoint loads in the unfused path."""
        training = self.trainings[member]
        state = {
            position: {"momentum_buffer": buffer[member].clone()}
            for position, buffer in enumerate(self.momentum_buffers)
            if bool(self.started[position][member])
        }
        group = {
            "lr": training.lr,
            "momentum": training.momentum,
            "dampening": 0,
            "weight_decay": training.weight_decay,
            "nesterov": training.nesterov,
            "maximize": False,
            "foreach": None,
            "differentiable": False,
            "fused": None,
            "params": list(range(len(names))),
        }
        return {"state": state, "param_groups": [group]}

    def load_member_state(self, member: int, state: dict) -> None:
        """Member `member`'s momentum from torch.optim.SGD's state_dict (a checkpoint's)."""
        saved = state.get("state", {})
        with torch.no_grad():
            for position, buffer in enumerate(self.momentum_buffers):
                momentum = saved.get(position, {}).get("momentum_buffer")
                self.started[position][member] = momentum is not None
                if momentum is not None:
                    buffer[member].copy_(momentum)
