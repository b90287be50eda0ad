"""The training step replayed as a CUDA graph (trial/graph_step.py) trains as the eager step does.

A CUDA graph replays its kernels over the memory it was captured with. What the replays see of
a step is therefore only what `StepGraphs` copies into the capture's buffers: the batch, the
class weights, the learning rate and the host draws. On the CPU a graph is played by `Rerun`:
it runs the captured step function again over those same buffers, taking its draws from the
tape's buffers, so a value the step took from anywhere else (a stale draw, the capture's class
weights, the capture's learning rate) makes the runs part here as it would on a GPU. The CUDA
test at the end captures for real.
"""

from __future__ import annotations

import contextlib
import logging
import math
import re
from dataclasses import replace

import pytest
import torch

from benchmarks.stepped_trial import SteppedTrial
from smcl_tune.config import trial_config_from_dict
from smcl_tune.method.draws import DrawTape, recording
from smcl_tune.trial.capturable_sgd import CapturableSGD
from smcl_tune.trial.epoch import StepShare
from smcl_tune.trial.graph_step import WARMUP_STEPS, StepGraphs, eager_reason
from tests.trial.test_host_copies import CountHostTraffic
from tests.trial.test_train_loop import coded_data, config

EPOCHS = 3
# A first epoch's loss, graphed against today's eager trial, in NCHW (tests/trial/conftest.py):
# above the rate tensor's rounding (measured up to 3.2e-6), below a stale rate's effect (2.9e-2 to
# 1.2e-1 in the SMCL, CMO and SupCon cases).
TODAY_RTOL = 1e-4
# Masking in epochs 0 and 1 with probability 0.5: both kinds of step, interleaved; none in epoch 2.
# The image's own saliency: a model's (cam, gradient) moves its box with float-level differences
# (the graphed update multiplies by a rate tensor, then subtracts), and whole runs then part; as
# for fused members (test_fused_group.py), those are compared one step at a time.
MASKING = {"mask_start_epoch": 0, "mask_end_epoch": 2, "mask_probability": 0.5, "saliency": "spectral_residual"}
METHODS = {
    "smcl erase box noise": {"name": "smcl", "fill": "noise"},
    "smcl paste minor images": {"name": "smcl", "compose": "paste", "minor_images": True},
    "smcl random saliency": {"name": "smcl", "saliency": "random"},
    "smcl threshold": {"name": "smcl", "mask_mode": "threshold"},
    "cmo with drw from epoch 1": {"name": "cmo", "classifier_loss": "drw", "drw_start_epoch": 1},
    "supcon balanced softmax": {"name": "supcon", "classifier_loss": "balanced_softmax"},
    "ce with ldam-drw from epoch 2": {
        "name": "ce",
        "mask_end_epoch": None,
        "classifier_loss": "ldam_drw",
        "drw_start_epoch": 2,
    },
}


class TapeReader:
    """A replay's draws: the tape's buffers, in the order the capture took them."""

    def __init__(self, tape: DrawTape) -> None:
        self.buffers = iter(tape.buffers)

    def take(self, _draw, _device) -> torch.Tensor:
        return next(self.buffers)


class Rerun:
    """A CPU graph: each replay runs the captured step function again over its fixed buffers."""

    def __init__(self, step, tape: DrawTape, share: StepShare) -> None:
        self.step, self.tape, self.share = step, tape, share

    def replay(self) -> None:
        with recording(TapeReader(self.tape)):
            share = self.step()
        self.share.sums.copy_(share.sums)


def rerun_capture(network: torch.nn.Module, optimizer: CapturableSGD):
    """A capture that, like CUDA's, leaves the trial as it was: the step it runs to record its draws is undone."""

    def capture(step, draws: DrawTape):
        state = list(network.state_dict().values()) + [
            optimizer.state[param]["momentum_buffer"]
            for param in network.parameters()
            if "momentum_buffer" in optimizer.state.get(param, {})
        ]
        before = [tensor.clone() for tensor in state]
        with recording(draws):
            share = step()
        for tensor, value in zip(state, before):
            tensor.copy_(value)
        fixed = StepShare(share.sums.clone(), share.composed)
        return Rerun(step, draws, fixed), fixed

    return capture


def stepped(method: dict, batch_size: int = 8, augment: bool = False, graph: bool = False) -> SteppedTrial:
    """A trial of the coded data on the CPU; with `graph`, as training.cuda_graph builds it (its optimizer)."""
    settings = config({**MASKING, **method}, EPOCHS, batch_size)
    # a rate that changes every step of epoch 0 (warm-up), then at epoch 2
    settings["training"].update(augment=augment, warmup_epochs=1, milestones=[2], milestone_factors=[0.1])
    if graph:
        settings["training"].update(cuda_graph=True, device="auto")
    return SteppedTrial.build(trial_config_from_dict(settings), coded_data(), torch.device("cpu"))


def graphed(trial: SteppedTrial, capture=None) -> StepGraphs:
    """The trial's steps replayed by `capture`'s graphs (a CPU trial of its own would run eagerly)."""
    parts = trial.parts
    graphs = StepGraphs(
        parts.network, parts.optimizer, parts.device, capture or rerun_capture(parts.network, parts.optimizer)
    )
    trial.parts = replace(parts, graphs=graphs)
    return graphs


def eager_twin(method: dict, **settings) -> SteppedTrial:
    """The trial the graphs must equal: its steps eager, through the same update at the same rate
    tensor (which rounds otherwise than torch's SGD at a float rate: test_capturable_sgd.py)."""
    trial = stepped(method, graph=True, **settings)
    graphed(trial).failed = "the reference steps eagerly"
    return train(trial)


def assert_trains_alike(eager: SteppedTrial, other: SteppedTrial) -> None:
    """The same epochs' metrics and the same weights, to the bit: a replay runs the eager step's kernels."""
    assert len(other.history) == len(eager.history) == EPOCHS
    for expected, got in zip(eager.history, other.history):
        for name in ("loss", "loss_mce", "loss_msc", "train_accuracy", "masked_area", "masked_step_fraction"):
            torch.testing.assert_close(got[name], expected[name], rtol=0, atol=0, equal_nan=True, msg=name)
    for (name, expected), got in zip(
        eager.parts.network.state_dict().items(), other.parts.network.state_dict().values()
    ):
        torch.testing.assert_close(got, expected, rtol=0, atol=0, msg=name)


def train(trial: SteppedTrial) -> SteppedTrial:
    for _ in range(EPOCHS):
        trial.train_epoch()
    return trial


def today_first_epoch_loss(method: dict) -> float:
    """The first epoch's loss of today's eager trial: torch's SGD at a float rate."""
    return stepped(method).train_epoch()["loss"]


@pytest.mark.usefixtures("nchw_layout")
@pytest.mark.parametrize("method", METHODS.values(), ids=METHODS.keys())
def test_a_graphed_trial_trains_as_the_eager_one(method):
    eager = eager_twin(method)
    trial = stepped(method, graph=True)
    graphs = graphed(trial)
    train(trial)
    assert_trains_alike(eager, trial)
    # and as today's eager trial (its SGD at a float rate: torch's update) in its first epoch, whose warm-up
    # changes the rate every step; later the rate tensor's rounding grows apart as any does
    assert trial.history[0]["loss"] == pytest.approx(today_first_epoch_loss(method), rel=TODAY_RTOL)
    # each kind of step was captured, and most steps were replays
    masking_kinds = [kind for kind in graphs.graphs if kind[1][2] is not None]
    assert masking_kinds or method["name"] == "ce"
    assert graphs.replays > sum(graphs.eager_steps.values())


@pytest.mark.usefixtures("nchw_layout")
def test_a_graph_that_kept_its_capture_rate_would_be_seen(monkeypatch):
    """The first-epoch comparison with today's trial above sees replays whose rate stayed the one of
    the step they were captured at (the first after WARMUP_STEPS eager steps). In NCHW, as that
    comparison: in channels_last the rate tensor's rounding alone moved a case by 5.8e-3, more than
    TODAY_RTOL, and this test could pass for that reason."""
    method = METHODS["smcl threshold"]  # the least moved by a stale rate of those measured
    today = today_first_epoch_loss(method)
    step = StepGraphs.step
    rates = []

    def kept_capture_rate(self, criterion, batch, rate):
        rates.append(rate)
        return step(self, criterion, batch, rates[min(len(rates), WARMUP_STEPS + 1) - 1])

    monkeypatch.setattr(StepGraphs, "step", kept_capture_rate)
    stale = stepped(method, graph=True)
    graphed(stale)
    loss = stale.train_epoch()["loss"]
    assert len(set(rates[WARMUP_STEPS:])) > 1  # the warm-up changed the rate every step
    assert loss != pytest.approx(today, rel=TODAY_RTOL)


def test_a_graphed_trial_with_its_crops_content_masks_trains_as_the_eager_one():
    method = METHODS["smcl erase box noise"]
    eager = eager_twin(method, augment=True)
    trial = stepped(method, augment=True, graph=True)
    graphed(trial)
    assert_trains_alike(eager, train(trial))


def test_replays_weigh_classes_by_each_epochs_weights(monkeypatch):
    """DRW's weights are one vector today; replays copy each epoch's in, whatever they are."""
    import benchmarks.stepped_trial

    def changing(_method, epoch, counts):
        return (counts.max() / counts) ** (0.5 * epoch)

    monkeypatch.setattr(benchmarks.stepped_trial, "class_weights", changing)
    method = {"name": "ce", "mask_end_epoch": None}
    eager = eager_twin(method)
    trial = stepped(method, graph=True)
    graphs = graphed(trial)
    train(trial)
    assert graphs.replays > 0
    assert_trains_alike(eager, trial)


def test_replays_take_each_steps_own_draws_not_the_captures():
    """Were the capture's draws replayed, every masked step would erase boxes of one size."""
    method = METHODS["smcl erase box noise"]
    trial = stepped(method, graph=True)
    graphs = graphed(trial)
    train(trial)
    masking = next(captured for kind, captured in graphs.graphs.items() if kind[1][2] is not None)
    box_sizes = masking.draws.buffers[0]
    assert box_sizes.shape == (8,)
    eager = eager_twin(method)
    assert trial.history[1]["masked_area"] == eager.history[1]["masked_area"]


def test_a_replayed_step_makes_no_host_synchronisation_and_no_tensor_from_host_data():
    """What a CUDA graph cannot hold (the GPU would wait, or a copy would read stale host memory)."""
    trial = stepped(METHODS["smcl erase box noise"], batch_size=8, graph=True)
    graphs = graphed(trial)
    trial.train_epoch()  # the kinds of full batches warmed up and captured
    replays = graphs.replays
    with CountHostTraffic([trial.parts.generators.steps]) as counter:
        trial.train_epoch()
    steps = len(trial.parts.samplers.instance)
    assert graphs.replays - replays == steps - 1  # the smaller last batch still warms up
    # No more than the epoch's own exchanges, which an eager epoch of one step has (its sums read
    # back once): none comes from the replayed steps.
    eager = stepped(METHODS["smcl erase box noise"], batch_size=8)
    eager.train_epoch()
    with CountHostTraffic([eager.parts.generators.steps]) as eager_counter:
        eager.train_epoch(eager.plan()[-1:])
    assert counter.count == eager_counter.count


def test_a_failed_capture_leaves_the_trial_eager_saying_why_once(caplog):
    def failing(step, draws):
        with recording(draws):
            draws.take(lambda: torch.rand(3, generator=trial.parts.generators.steps), torch.device("cpu"))
        raise RuntimeError("operation not permitted when stream is capturing\nmore detail")

    method = METHODS["smcl erase box noise"]
    eager = eager_twin(method)
    trial = stepped(method, graph=True)
    graphs = graphed(trial, failing)
    with caplog.at_level(logging.WARNING, logger="smcl_tune.trial.graph_step"):
        train(trial)
    lines = [record.getMessage() for record in caplog.records if "from here" in record.getMessage()]
    assert lines == [
        "training.cuda_graph: the steps run eagerly from here "
        "(the capture failed: operation not permitted when stream is capturing)"
    ]
    assert graphs.replays == 0 and graphs.eager_steps
    # the failed capture's draws were given back: the steps drew as the eager trial's did
    assert_trains_alike(eager, trial)


def test_a_capture_ended_in_error_says_the_steps_own_error_and_its_line(caplog, monkeypatch):
    """A step that fails inside torch.cuda.graph makes CUDA's capture_end fail in turn, with the
    step's error only as its context: the line names the step's error first, and where it came from."""

    @contextlib.contextmanager
    def ending_as_cuda_does():
        try:
            yield
        finally:
            raise RuntimeError("CUDA error: operation failed due to a previous error during capture")

    def refuse_backward(loss, *arguments, **options):
        raise RuntimeError("operation not permitted when stream is capturing\nmore detail")

    def failing(step, draws):
        with monkeypatch.context() as inside, recording(draws), ending_as_cuda_does():
            inside.setattr(torch.Tensor, "backward", refuse_backward)
            step()

    trial = stepped(METHODS["smcl erase box noise"], graph=True)
    graphs = graphed(trial, failing)
    with caplog.at_level(logging.WARNING, logger="smcl_tune.trial.graph_step"):
        train(trial)
    lines = [record.getMessage() for record in caplog.records if "from here" in record.getMessage()]
    assert len(lines) == 1 and graphs.replays == 0
    assert re.fullmatch(
        r"training\.cuda_graph: the steps run eagerly from here \(the capture failed: operation not permitted when "
        r"stream is capturing \(at smcl_tune/trial/epoch\.py:\d+\); then: CUDA error: operation failed due to a "
        r"previous error during capture\)",
        lines[0],
    ), lines[0]


def test_a_trial_on_a_gpu_that_is_not_the_current_one_steps_eagerly_saying_how_to_choose_it(monkeypatch):
    """torch.cuda.graph captures on the current device's streams: a trial on another GPU would run
    its step once while captured and replay an empty graph, so it steps eagerly instead."""
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    assert eager_reason(torch.device("cuda", 0)) is None and eager_reason(torch.device("cuda")) is None
    assert eager_reason(torch.device("cuda", 1)) == (
        "CUDA graphs are captured on the current CUDA device, cuda:0, and this trial runs on cuda:1; "
        "choose its GPU with CUDA_VISIBLE_DEVICES instead"
    )


def test_a_kind_of_step_is_captured_after_its_warm_up():
    trial = stepped({"name": "ce", "mask_end_epoch": None}, graph=True)
    graphs = graphed(trial)
    trial.train_epoch()
    steps = len(trial.plan())
    # the last batch is smaller: a kind of its own, eager while it warms up (one a epoch)
    assert graphs.eager_steps[next(iter(graphs.graphs))] == WARMUP_STEPS
    assert graphs.replays == steps - WARMUP_STEPS - 1


def _on_cuda(method: dict, twin: bool = False) -> SteppedTrial:
    """A trial on the GPU with training.cuda_graph; `twin`: its steps eager (same update, same rate tensor)."""
    settings = config({**MASKING, **method}, EPOCHS, 8)
    settings["training"].update(device="cuda", cuda_graph=True)
    trial = SteppedTrial.build(trial_config_from_dict(settings), coded_data(), torch.device("cuda"))
    if twin:
        trial.parts.graphs.failed = "the reference steps eagerly"
    return train(trial)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("method", [METHODS["smcl erase box noise"], METHODS["cmo with drw from epoch 1"]], ids=str)
def test_on_cuda_a_captured_trial_trains_as_its_eager_twin(method):
    eager, trial = _on_cuda(method, twin=True), _on_cuda(method)
    graphs = trial.parts.graphs
    assert graphs.failed is None and graphs.replays > sum(graphs.eager_steps.values())
    # the graph replays the eager kernels; cuDNN's backward may sum in another order
    for expected, got in zip(eager.history, trial.history):
        for name in ("loss", "masked_area"):
            torch.testing.assert_close(got[name], expected[name], rtol=1e-3, atol=1e-5, equal_nan=True, msg=name)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_on_cuda_a_step_with_cams_saliency_is_captured():
    """Grad-CAM (a forward hook, autograd.grad, eval mode) inside the graph; its box moves with
    float-level differences, so only the first epoch is compared."""
    method = {"name": "smcl", "saliency": "cam"}
    eager, trial = _on_cuda(method, twin=True), _on_cuda(method)
    graphs = trial.parts.graphs
    assert graphs.failed is None and graphs.replays > 0
    assert trial.history[0]["loss"] == pytest.approx(eager.history[0]["loss"], rel=2e-2)


def test_a_capture_that_would_start_a_momentum_inside_the_graph_is_given_up(caplog):
    """Every replay would start that momentum anew: the trial steps eagerly instead, saying why."""
    trial = stepped({"name": "ce", "mask_end_epoch": None}, graph=True)
    optimizer = trial.parts.optimizer
    first = next(iter(trial.parts.network.parameters()))
    capture = rerun_capture(trial.parts.network, optimizer)

    def capture_after_a_reset(step, draws):
        optimizer.state[first].pop("momentum_buffer")  # as if this parameter had no step before
        return capture(step, draws)

    graphs = graphed(trial, capture_after_a_reset)
    with caplog.at_level(logging.WARNING, logger="smcl_tune.trial.graph_step"):
        metrics = trial.train_epoch()
    assert graphs.failed == "a parameter's momentum would start inside the graph" and graphs.replays == 0
    assert [record.getMessage() for record in caplog.records if "from here" in record.getMessage()] == [
        "training.cuda_graph: the steps run eagerly from here "
        "(the capture failed: a parameter's momentum would start inside the graph)"
    ]
    assert math.isfinite(metrics["loss"]) and "momentum_buffer" in optimizer.state[first]
