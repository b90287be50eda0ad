"""torch.optim.SGD's update with a learning rate that may be a device tensor, for a step captured as
a CUDA graph (trial/graph_step.py): the rate is read from device memory when the graph replays.

torch's own SGD reads a tensor rate back to the host (its foreach and for-loop updates pass it as
an `alpha`), and its fused update cannot start the momentum of some parameters but not others (the
projection head, which only a pass with embeddings trains). The update is torch's (dampening 0):
d = g + wd * p; b = d on a buffer's first step, else m * b + d; d = d + m * b (Nesterov) or b;
p = p - lr * d. Its state is torch's (`momentum_buffer` per parameter), so checkpoints load in either.
"""

from __future__ import annotations

import torch


class CapturableSGD(torch.optim.SGD):
    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            params = [param for param in group["params"] if param.grad is not None]
            if not params:
                continue
            grads = [param.grad for param in params]
            decay, momentum = group["weight_decay"], group["momentum"]
            directions = torch._foreach_add(grads, params, alpha=decay) if decay else grads
            if momentum:
                buffers = [self.state[param].get("momentum_buffer") for param in params]
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
        return loss
