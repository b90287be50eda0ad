"""The step's host draws (box sizes, fills, random maps, CMO's boxes) on their way to the device.

A step draws from its trial's host generator, then copies the draw to the images' device. A
CUDA graph (trial/graph_step.py) cannot replay that copy: it would read the host memory of the
capture's draw again. So a graphed step takes its draws through a `DrawTape`: at capture each
draw is made and given a fixed device buffer; before each replay the tape makes the same draws
again, in the same order, from the same generator, into those buffers. The draws of a step are
then those of the eager step, number for number. A fused group's step (trial/fused/group_graphs.py)
marks each draw with the member it is drawn for (`drawing_for`): a replay draws again only for the
members whose step draws this time.
"""

from __future__ import annotations

from collections.abc import Callable, Container, Hashable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

import torch

HostDraw = Callable[[], torch.Tensor]
"""A draw on the host from the step's generator, made from the step's shapes and settings alone
(no tensor of the step): a graphed step makes it again before each replay."""


class DrawTape:
    """The host draws of one captured step, each with the device buffer the graph reads it from."""

    def __init__(self) -> None:
        self.draws: list[HostDraw] = []
        self.buffers: list[torch.Tensor] = []
        self.first_values: list[torch.Tensor] = []
        self.owners: list[Hashable | None] = []  # whom each draw was made for (drawing_for); None: the step

    def take(self, draw: HostDraw, device: torch.device) -> torch.Tensor:
        """The capture's draw: made now (the captured step's own), held in a new device buffer."""
        value = draw()
        buffer = torch.empty(value.shape, dtype=value.dtype, device=device)
        self.draws.append(draw)
        self.buffers.append(buffer)
        self.first_values.append(value)
        self.owners.append(_OWNER.get())
        return buffer

    def load_first(self) -> None:
        """The capture's own draws into the buffers, for the replay of the captured step."""
        for buffer, value in zip(self.buffers, self.first_values):
            copy_in(buffer, value)
        self.first_values = []

    def redraw(self, owners: Container[Hashable] | None = None) -> None:
        """The next step's draws, in the eager step's order, into the buffers; with `owners`, only
        the draws made for them. The others' generators keep their states, and their buffers are
        zeroed: the step leaves out what they feed (their members do not mask), and the graphs of
        one memory pool (trial/graph_step.py) may have written there since, so that a value
        such as an infinity could reach a gradient as 0 * inf."""
        for draw, buffer, owner in zip(self.draws, self.buffers, self.owners):
            if owners is None or owner is None or owner in owners:
                copy_in(buffer, draw())
            else:
                buffer.zero_()


def copy_in(buffer: torch.Tensor, value: torch.Tensor) -> None:
    """`value` (host) into `buffer` (the device), without waiting for the device."""
    # From page-locked memory the copy is asynchronous, and torch's pinned allocator keeps the
    # block until the copy has read it.
    buffer.copy_(value.pin_memory() if buffer.is_cuda else value, non_blocking=True)


_RECORDING: ContextVar[DrawTape | None] = ContextVar("smcl_draw_tape", default=None)
_OWNER: ContextVar[Hashable | None] = ContextVar("smcl_draw_owner", default=None)


@contextmanager
def recording(tape: DrawTape) -> Iterator[DrawTape]:
    """Within: every `on_device` draw goes to `tape` (the step being captured)."""
    token = _RECORDING.set(tape)
    try:
        yield tape
    finally:
        _RECORDING.reset(token)


def on_device(draw: HostDraw, device: torch.device) -> torch.Tensor:
    """A host draw on `device`: copied there (asynchronously, as a blocking copy would wait for the
    GPU's queue), or, while a step is captured, a buffer its replays refill."""
    tape = _RECORDING.get()
    if tape is not None:
        return tape.take(draw, device)
    return draw().to(device, non_blocking=True)


@contextmanager
def drawing_for(owner: Hashable) -> Iterator[None]:
    """Within: the draws taped are marked as made for `owner` (DrawTape.redraw's `owners`)."""
    token = _OWNER.set(owner)
    try:
        yield
    finally:
        _OWNER.reset(token)
