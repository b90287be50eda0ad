"""The training step replayed as a CUDA graph (`training.cuda_graph: true`).

On a GPU a ResNet-32 step is microseconds of arithmetic behind about 12 ms of Python and kernel
launches (docs/RESULTS.md, the first GPU run). A CUDA graph launches the whole step at once: the
masking, the pass, the backward, the optimizer's update and the step's share of the epoch sums
(the pattern of "whole-network capture" in torch's CUDA graphs notes). What the capture needs:
- static shapes: one graph per kind of step (plain or masking, each set of batch shapes, with or
  without class weights); a kind warms up eagerly for WARMUP_STEPS steps, then is captured;
- the learning rate as a device tensor, written before each replay, which the optimizer's update
  reads from device memory (trial/capturable_sgd.py);
- no host synchronisation inside the step (tests/trial/test_host_copies.py);
- fixed input buffers: before each replay the batch is copied into them (device to device) and
  the step's host draws are made again into theirs (method/draws.py).
The graphs of a trial (or of a fused group, trial/fused/group_graphs.py) share one memory pool,
so that they hold one step's activations, not one per graph. torch's notes call that safe for
graphs replayed in the order of their capture; it holds in any order here, as no graph reads what
another may leave in the pool: a replay's sums are added to the epoch's before the next replay,
its draw buffers are written before it (or zeroed, draws.py), and its gradients, written by its
own backward, are read by its own update.
A capture that fails leaves the trial eager from that step on, with one line saying why.
"""

from __future__ import annotations

import functools
import logging
import traceback
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import PurePath
from typing import Any, Protocol

import torch
from torch import nn

from smcl_tune.errors import error_chain, first_line
from smcl_tune.method.batch import Batch
from smcl_tune.method.draws import DrawTape, recording
from smcl_tune.method.step import StepLoss
from smcl_tune.trial.capturable_sgd import CapturableSGD
from smcl_tune.trial.epoch import StepShare, training_step

log = logging.getLogger(__name__)

WARMUP_STEPS = 3  # eager steps of a kind before its capture: cuDNN picks its kernels, autograd its streams


class Replayable(Protocol):
    def replay(self) -> None: ...


Capture = Callable[[Callable[[], StepShare], DrawTape], tuple[Replayable, StepShare]]
"""Records a step (a function of fixed buffers alone), its host draws going to the tape, without
running it: the recording, and the buffers each replay writes the step's share of the sums to."""


def cuda_capture(
    step: Callable[[], StepShare], draws: DrawTape, pool: tuple[int, int] | None = None
) -> tuple[Replayable, StepShare]:
    """`pool`: the memory pool the graphs of one trial or group share (torch.cuda.graph_pool_handle)."""
    graph = torch.cuda.CUDAGraph()
    # thread_local: a DataLoader's pin-memory thread (the stream loader) may allocate meanwhile, which
    # the global mode would make fail; the outer stream context puts the trial's stream back even when
    # a failed capture raises before torch.cuda.graph restores it.
    with (
        torch.cuda.stream(torch.cuda.current_stream()),
        recording(draws),
        torch.cuda.graph(graph, pool=pool, capture_error_mode="thread_local"),
    ):
        share = step()
    return graph, share


CAPTURING_MODULES = ("graph_step.py", "group_graphs.py")  # the capture's own frames, around every step's


def capture_failure(error: BaseException) -> str:
    """Why a capture failed, in one line: the step's own error, the line of smcl_tune the step
    raised it from, and what the capture then said. A step that fails inside torch.cuda.graph has
    CUDA's capture_end fail in turn ("operation failed due to a previous error during capture"),
    which Python raises with the step's error as its context."""
    cause = list(error_chain(error))[-1]
    reason = first_line(cause)
    ours = [
        (path, frame.lineno)
        for frame in traceback.extract_tb(cause.__traceback__)
        if (path := _in_smcl_tune(frame.filename)) is not None
    ]
    if ours and PurePath(ours[-1][0]).name not in CAPTURING_MODULES:
        reason += f" (at {ours[-1][0]}:{ours[-1][1]})"
    if cause is not error:
        reason += f"; then: {first_line(error)}"
    return reason


def _in_smcl_tune(filename: str) -> str | None:
    """The file's path from the package's folder (smcl_tune/...), or None for a file outside it."""
    parts = PurePath(filename).parts
    folders = [index for index, part in enumerate(parts[:-1]) if part == "smcl_tune"]
    return "/".join(parts[folders[-1] :]) if folders else None


def eager_reason(device: torch.device) -> str | None:
    """Why a trial on `device` cannot replay its steps as CUDA graphs; None if it can."""
    if device.type != "cuda":
        return f"CUDA graphs need a CUDA device, and this trial runs on {device}"
    current = torch.cuda.current_device()
    if device.index not in (None, current):
        # torch.cuda.graph captures on the current device's streams: another device's step would
        # run once while captured, and its graph would replay nothing
        return (
            f"CUDA graphs are captured on the current CUDA device, cuda:{current}, and this trial runs on {device}; "
            "choose its GPU with CUDA_VISIBLE_DEVICES instead"
        )
    return None


def batch_shapes(batch: Batch) -> tuple:
    """The shapes and dtypes of a batch's parts (None for a part it lacks): what a graph is fixed to."""
    return tuple(None if part is None else (tuple(part.shape), part.dtype) for part in batch)


def step_kind(criterion: StepLoss, batch: Batch) -> tuple:
    """What a captured step is fixed to: the batch's shapes and dtypes, and whether it has class weights."""
    return criterion.class_weights is not None, batch_shapes(batch)


def on_side_stream(side: torch.cuda.Stream | None, device: torch.device, run: Callable[[], Any]) -> Any:
    """`run()` on the side stream, ordered after and before the current stream's work (a warm-up
    step, as torch's notes on capturing a whole network run it); on the current stream without one."""
    if side is None:
        return run()
    current = torch.cuda.current_stream(device)
    side.wait_stream(current)
    with torch.cuda.stream(side):
        result = run()
    current.wait_stream(side)
    return result


@dataclass
class CapturedStep:
    """One kind of step, recorded: its input buffers, its criterion over fixed buffers, its draws."""

    recording: Replayable
    batch: Batch
    criterion: StepLoss
    draws: DrawTape
    share: StepShare
    # the class weights and counts last copied in (a new epoch's criterion brings its own)
    copied_from: tuple[Any, Any] = (None, None)

    def replay(self, criterion: StepLoss, batch: Batch) -> StepShare:
        for buffer, part in zip(self.batch, batch):
            if buffer is not None:
                buffer.copy_(part, non_blocking=True)
        sources = (criterion.class_weights, criterion.class_counts)
        if any(source is not copied for source, copied in zip(sources, self.copied_from)):
            for buffer, values in zip((self.criterion.class_weights, self.criterion.class_counts), sources):
                if buffer is not None:
                    buffer.copy_(values, non_blocking=True)
            self.copied_from = sources
        self.draws.redraw()
        self.recording.replay()
        return self.share


def fixed_copy(part: torch.Tensor | None) -> torch.Tensor | None:
    """A graph's own buffer holding `part` (None stays None)."""
    return None if part is None else part.clone()


class StepGraphs:
    """A trial's training steps: eager for the first WARMUP_STEPS of each kind, then its graph's replays.

    The optimizer's steps read the learning rate from `rate`, a device tensor; the graphs are
    made after a checkpoint is restored (they hold the optimizer's momentum buffers).
    """

    def __init__(self, network: nn.Module, optimizer: CapturableSGD, device: torch.device, capture: Capture) -> None:
        self.network, self.optimizer, self.device = network, optimizer, device
        self.capture = capture
        self.rate = torch.zeros((), dtype=torch.float32, device=device)
        self.graphs: dict[tuple, CapturedStep] = {}
        self.eager_steps: Counter[tuple] = Counter()
        self.failed: str | None = None  # why the steps stay eager, once a capture failed
        self.replays = 0
        self.side_stream = torch.cuda.Stream(device) if device.type == "cuda" else None

    def _read_rate_from_the_device(self) -> None:
        # A restored checkpoint puts its own rate and update back in the optimizer's groups.
        for group in self.optimizer.param_groups:
            if group["lr"] is not self.rate:
                group["lr"] = self.rate

    def step(self, criterion: StepLoss, batch: Batch, rate: float) -> StepShare:
        self._read_rate_from_the_device()
        self.rate.fill_(rate)
        kind = step_kind(criterion, batch)
        captured = self.graphs.get(kind)
        if captured is not None:
            self.replays += 1
            return captured.replay(criterion, batch)
        if self.failed is None and self.eager_steps[kind] >= WARMUP_STEPS:
            captured = self._capture(criterion, batch)
            if captured is not None:
                self.graphs[kind] = captured
                captured.draws.load_first()
                captured.recording.replay()
                self.replays += 1
                return captured.share
        self.eager_steps[kind] += 1
        return self._eager(criterion, batch)

    def _eager(self, criterion: StepLoss, batch: Batch) -> StepShare:
        side = self.side_stream if self.failed is None else None
        return on_side_stream(side, self.device, lambda: training_step(self.network, criterion, self.optimizer, batch))

    def _capture(self, criterion: StepLoss, batch: Batch) -> CapturedStep | None:
        fixed_batch = Batch(*(fixed_copy(part) for part in batch))
        fixed_criterion = replace(
            criterion,
            class_weights=fixed_copy(criterion.class_weights),
            class_counts=fixed_copy(criterion.class_counts),
        )
        draws = DrawTape()
        drawn_from = criterion.generator.get_state()

        def step() -> StepShare:
            return training_step(self.network, fixed_criterion, self.optimizer, fixed_batch)

        started = self._momentum_started()
        try:
            graph, share = self.capture(step, draws)
            if self._made_by_the_capture(started):
                # its first-step copy would be in the graph: each replay would start the momentum anew
                raise RuntimeError("a parameter's momentum would start inside the graph")
        except Exception as error:  # any failure of a capture leaves the trial eager, said once
            criterion.generator.set_state(drawn_from)
            for state in self._made_by_the_capture(started):
                del state["momentum_buffer"]  # it holds no value: the eager step starts it
            self.failed = capture_failure(error)
            log.warning("training.cuda_graph: the steps run eagerly from here (the capture failed: %s)", self.failed)
            return None
        # the capture's criterion holds copies of this criterion's weights and counts
        copied_from = (criterion.class_weights, criterion.class_counts)
        return CapturedStep(graph, fixed_batch, fixed_criterion, draws, share, copied_from)

    def _momentum_started(self) -> dict[torch.Tensor, torch.Tensor]:
        """Each parameter's momentum buffer (held, so compared by identity): what a capture must find, not make."""
        states = self.optimizer.state.items()
        return {param: state["momentum_buffer"] for param, state in states if "momentum_buffer" in state}

    def _made_by_the_capture(self, started: dict[torch.Tensor, torch.Tensor]) -> list[dict]:
        return [
            state
            for param, state in self.optimizer.state.items()
            if "momentum_buffer" in state and started.get(param) is not state["momentum_buffer"]
        ]


def step_graphs(network: nn.Module, optimizer: CapturableSGD, device: torch.device, wanted: bool) -> StepGraphs | None:
    """The trial's step graphs when `training.cuda_graph` asks for them and the device allows; else None (eager)."""
    if not wanted:
        return None
    reason = eager_reason(device)
    if reason is not None:
        log.warning("training.cuda_graph: the steps run eagerly (%s)", reason)
        return None
    return StepGraphs(network, optimizer, device, shared_pool_capture())


def shared_pool_capture() -> Capture:
    """cuda_capture into one new memory pool, for the graphs of one trial or group."""
    return functools.partial(cuda_capture, pool=torch.cuda.graph_pool_handle())
