"""torch.optim.SGD's update with a learning rate that may be a device tensor, for a step captured as
a CUDA graph (trial/graph_step.py): the rate is read from device memory when the graph replays.

torch's own SGD reads a tensor rate back to the host (its foreach and for-loop updates pass it as
an `alpha`), and its fused update cannot start the momentum of some parameters but not others (the
projection head, which only a pass with embeddings trains). The update is torch's (dampening 0):
d = g + wd * p; b = d on a buffer's first step, else m * b + d; d = d + m * b (Nesterov) or b;
p = p - lr * d. Its state and state_dict are torch's (`momentum_buffer` per parameter, parameters
by index), so a checkpoint of either loads in the other.

Every trial steps with it, graphed or not, and it is not a torch.optim.Optimizer: that class's
methods (zero_grad, add_param_group, state_dict) import torch._dynamo on their first call, about
1 s of every trial process's start-up for graph breaks a plain update never needs.
"""

from __future__ import annotations

import copy
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

import torch

# torch.optim.SGD's hyperparameters, as its state_dict names them; this update reads the first five
TORCH_SGD_DEFAULTS = {"dampening": 0, "maximize": False, "foreach": None, "differentiable": False, "fused": None}


class CapturableSGD:
    def __init__(
        self,
        params: Iterable[torch.nn.Parameter],
        lr: float | torch.Tensor,
        momentum: float = 0.0,
        weight_decay: float = 0.0,
        nesterov: bool = False,
    ) -> None:
        if lr < 0 or momentum < 0 or weight_decay < 0:
            raise ValueError(f"SGD needs lr, momentum and weight_decay >= 0, not {lr}, {momentum}, {weight_decay}")
        if nesterov and momentum <= 0:
            raise ValueError("Nesterov momentum requires a momentum")  # torch's rule
        params = list(params)
        if not params:
            raise ValueError("optimizer got an empty parameter list")
        self.defaults = {
            "lr": lr,
            "momentum": momentum,
            "weight_decay": weight_decay,
            "nesterov": nesterov,
            **TORCH_SGD_DEFAULTS,
        }
        self.param_groups: list[dict[str, Any]] = [{"params": params, **self.defaults}]
        self.state: defaultdict[torch.Tensor, dict[str, torch.Tensor]] = defaultdict(dict)

    def zero_grad(self, set_to_none: bool = True) -> None:
        for group in self.param_groups:
            for param in group["params"]:
                if param.grad is None:
                    continue
                if set_to_none:
                    param.grad = None
                else:  # torch's: a gradient with a history is detached, a view cannot be
                    if param.grad.grad_fn is not None:
                        param.grad.detach_()
                    else:
                        param.grad.requires_grad_(False)
                    param.grad.zero_()

    @torch.no_grad()
    def step(self) -> None:
        for group in self.param_groups:
            params = [param for param in group["params"] if param.grad is not None]
            if not params:
                continue
            grads = [param.grad for param in params]
            decay, momentum = group["weight_decay"], group["momentum"]
            directions = torch._foreach_add(grads, params, alpha=decay) if decay else grads
            if momentum:
                buffers = [self.state[param].get("momentum_buffer") for param in params]
                if all(buffer is not None for buffer in buffers):  # two launches, not two per parameter
                    torch._foreach_mul_(buffers, momentum)
                    torch._foreach_add_(buffers, directions)
                else:
                    for index, (param, buffer) in enumerate(zip(params, buffers)):
                        if buffer is None:
                            buffers[index] = self.state[param]["momentum_buffer"] = directions[index].detach().clone()
                        else:
                            buffer.mul_(momentum).add_(directions[index])
                directions = torch._foreach_add(directions, buffers, alpha=momentum) if group["nesterov"] else buffers
            rate = group["lr"]
            if isinstance(rate, torch.Tensor):
                torch._foreach_sub_(params, torch._foreach_mul(directions, rate))
            else:
                torch._foreach_add_(params, directions, alpha=-rate)

    def state_dict(self) -> dict[str, Any]:
        """torch.optim.Optimizer's layout: the parameters numbered in group order, each state by number.
        The tensors are the optimizer's own, not copies (as torch's)."""
        numbers: dict[int, int] = {}
        groups = []
        for group in self.param_groups:
            first = len(numbers)
            numbers.update({id(param): first + offset for offset, param in enumerate(group["params"])})
            settings = {key: value for key, value in group.items() if key != "params"}
            groups.append({**settings, "params": list(range(first, len(numbers)))})
        state = {numbers[id(param)]: value for param, value in self.state.items()}
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """A state_dict of this class or of torch.optim.SGD over the same parameters: its
        hyperparameters (copies) replace the groups', its buffers are copied to each parameter's
        device and dtype. Checked whole before anything changes."""
        saved_groups = state_dict["param_groups"]
        if [len(group["params"]) for group in saved_groups] != [len(group["params"]) for group in self.param_groups]:
            raise ValueError("loaded state dict has a different number of parameters or groups")
        for saved in saved_groups:
            unsupported = {key: saved[key] for key in ("dampening", "maximize") if saved.get(key)}
            if unsupported:
                raise ValueError(f"loaded state dict asks for {unsupported}, which this SGD does not apply")
        by_number = {}
        for group, saved in zip(self.param_groups, saved_groups):
            by_number.update(zip(saved["params"], group["params"]))
        unknown = [number for number in state_dict["state"] if int(number) not in by_number]
        if unknown:
            raise ValueError(f"loaded state dict has state for parameters {unknown} that its groups do not name")
        state: defaultdict[torch.Tensor, dict[str, Any]] = defaultdict(dict)
        for number, values in state_dict["state"].items():
            param = by_number[int(number)]
            state[param] = {key: _onto(value, param) for key, value in values.items()}
        for group, saved in zip(self.param_groups, saved_groups):
            group.update({key: copy.deepcopy(value) for key, value in saved.items() if key != "params"})
        self.state = state


def _onto(value: Any, param: torch.Tensor) -> Any:
    if not isinstance(value, torch.Tensor):
        return value
    dtype = param.dtype if value.is_floating_point() else value.dtype
    return value.to(device=param.device, dtype=dtype, copy=True)
