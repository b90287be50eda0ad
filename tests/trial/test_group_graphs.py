"""A fused group's steps replayed as CUDA graphs (trial/fused/group_graphs.py) are each member's
trial's steps.

The recorded step (kinds_step.py) runs every member's plain pass and the masking pass of every
member of a masking kind present, and picks each member's own on the device. On the CPU a graph is
played as in test_graph_step.py: `Rerun` runs the recorded step function again over the graph's
buffers, its draws taken from the tape's buffers, so a value a replay took from anywhere but
what GroupGraphs copies in (a stale batch or draw, the capture's decisions, rates or class
weights) parts the member from its trial. Each member is compared with its trial at every step
(test_fused_group.py's lockstep), its state set back to its trial's after each.
"""

from __future__ import annotations

import logging

import pytest
import torch

from benchmarks.stepped_trial import SteppedTrial
from smcl_tune.config import trial_config_from_dict
from smcl_tune.method.draws import DrawTape, recording
from smcl_tune.trial.epoch import StepShare
from smcl_tune.trial.fused.group_graphs import CapturedGroupStep, GroupGraphs
from smcl_tune.trial.fused.group_run import build_group
from smcl_tune.trial.graph_step import WARMUP_STEPS
from tests.trial.test_fused_group import METHODS, _compare_step, _config, _every_method, _in_lockstep
from tests.trial.test_graph_step import EPOCHS, MASKING, Rerun
from tests.trial.test_host_copies import CountHostTraffic
from tests.trial.test_train_loop import coded_data, config

pytestmark = [pytest.mark.slow]


def _group_state(group) -> list[torch.Tensor]:
    optimizer = group.optimizer
    return [
        *group.network.params.values(),
        *group.network.buffers.values(),
        *optimizer.momentum_buffers,
        *optimizer.started,
    ]


def group_rerun_capture(group, captured: list):
    """A capture that, like CUDA's, leaves the group as it was (the step it runs to record its
    draws is undone, its draws kept); `captured` collects each recording."""

    def capture(step, draws: DrawTape):
        state = _group_state(group)
        before = [tensor.detach().clone() for tensor in state]
        with recording(draws):
            share = step()
        with torch.no_grad():
            for tensor, value in zip(state, before):
                tensor.copy_(value)
        fixed = StepShare(share.sums.clone(), share.composed)
        rerun = Rerun(step, draws, fixed)
        captured.append(rerun)
        return rerun, fixed

    return capture


def _next_epoch(group) -> dict[int, dict[str, float]]:
    """One epoch of the group's training members, each then at its next epoch: their metrics by slot."""
    metrics = group.train_epoch([member for member in group.members if member.training])
    for member in group.members:
        member.epoch += 1
    return metrics


def _with_graphs(captured: list):
    def attach(group) -> None:
        group.graphs = GroupGraphs(group, group_rerun_capture(group, captured))

    return attach


def _graphed_in_lockstep(configs: list[dict], names=None) -> tuple[GroupGraphs, list, list[list[float]]]:
    """The group's graphs, the captured steps, and per member whether each step masked."""
    captured: list = []
    graphs: list[GroupGraphs] = []

    def attach(group) -> None:
        _with_graphs(captured)(group)
        graphs.append(group.graphs)

    masked = _in_lockstep(configs, names=names, corrupt=attach)
    return graphs[0], captured, masked


@pytest.mark.usefixtures("nchw_layout")  # compared with their trials: tests/trial/conftest.py
def test_graphed_members_of_every_method_step_as_their_trials(tiny_config):
    """Ten members, each of its own method and classifier loss (three masking kinds and CE), over
    30 steps: the plans of a step follow which kinds mask, and those seen WARMUP_STEPS times are
    recorded and replayed."""
    graphs, captured, _ = _graphed_in_lockstep(_every_method(tiny_config, epochs=30), names=list(METHODS))
    assert graphs.failed is None
    assert captured and graphs.replays >= 5, (len(captured), graphs.replays)


@pytest.mark.usefixtures("nchw_layout")  # compared with their trials: tests/trial/conftest.py
def test_smcl_members_whose_decisions_differ_step_as_their_trials_when_replayed(tiny_config):
    """SMCL members with their own temperatures, seeds, fills, saliencies and box sizes, four of one
    masking kind: in most steps some mask and some do not, and a member that does not mask runs in
    its kind's masking pass, its BatchNorm statistics over its x_b rows alone (kept_rows_norm.py),
    or, when its kind is absent, in a plain pass of its own; each member's draws, BatchNorm
    statistics and update stay its own step's.

    Without augmentation: a random crop's zero padding makes regions of equal activations, whose
    2x2 max-pool windows hold exact ties, and a pass of one or two members runs other convolution
    kernels than one of three or more; their rounding then sends a tied window's gradient to
    another of its inputs (measured: 1.1% of a layer's gradient, the same vmapped pass of 1 or 2
    members against 3 or more, on equal weights and images). A difference of rounding, as a
    gradient saliency's argmax (test_fused_group), not of the step; the other tests augment."""
    configs = [
        _config(tiny_config, epochs=24, name="smcl", temperature=0.1, fill="noise"),
        _config(tiny_config, epochs=24, seed=3, name="smcl", temperature=0.4, box_alpha=2.0, minor_images=True),
        _config(tiny_config, epochs=24, seed=5, name="smcl", temperature=0.2, saliency="random"),
        _config(tiny_config, epochs=24, seed=6, name="smcl", mask_mode="box", fill="noise", box_alpha=0.5),
        _config(tiny_config, epochs=24, seed=7, name="smcl", mask_mode="box", loss_weight=0.3),
    ]
    for member in configs:
        member["training"]["augment"] = False
    graphs, _, masked = _graphed_in_lockstep(configs)
    plans = [key[0] for key in graphs.graphs]
    assert graphs.failed is None and any(plan.plain and plan.kinds for plan in plans), plans
    one_kind = [masked[index] for index in (0, 2, 3, 4)]
    mixed_steps = [step for step in zip(*one_kind) if 0 < sum(step) < len(step)]
    assert len(mixed_steps) >= 8, "steps in which some members of one masking kind mask and some do not"
    assert graphs.replays >= 8


@pytest.mark.usefixtures("nchw_layout")  # compared with their trials: tests/trial/conftest.py
def test_a_replay_that_kept_the_captured_decisions_would_be_seen(tiny_config, monkeypatch):
    """The lockstep comparison catches replays that do not copy a step's masking decisions in
    (the same change with no replay, every step eager, passes: it is the replays that part)."""
    configs = [
        _config(tiny_config, epochs=24, name="smcl", temperature=0.1),
        _config(tiny_config, epochs=24, seed=3, name="smcl", temperature=0.4),
    ]
    monkeypatch.setattr(CapturedGroupStep, "copy_decisions", lambda self, decisions: None)
    with pytest.raises(AssertionError):
        _graphed_in_lockstep(configs)

    def never_captured(group) -> None:
        group.graphs = GroupGraphs(group, capture=None, warmup_steps=10**9)

    _in_lockstep(configs, corrupt=never_captured)


def _drw_group(graphs) -> tuple:
    """Three members (SMCL, SMCL with minor images, masking in epochs 0 and 1; CE + DRW from epoch
    2) at batch 10: 24 steps an epoch, the last one of 3 images, and class weights from epoch 2."""
    configs = []
    for seed, method in enumerate(
        [
            {"name": "smcl", "fill": "noise", "mask_mode": "box"},
            {"name": "smcl", "minor_images": True, "saliency": "random"},
            {"name": "ce", "mask_end_epoch": None, "classifier_loss": "drw", "drw_start_epoch": 2},
        ]
    ):
        settings = config({**MASKING, **method}, 4, 10)
        settings["training"].update(seed=seed, lr=0.05 + 0.02 * seed, warmup_epochs=1)
        if method["name"] == "ce":
            settings["method"]["mask_end_epoch"] = None
        configs.append(trial_config_from_dict(settings))
    group = build_group(configs, coded_data(), torch.device("cpu"), strategy="vmap")
    group.graphs = graphs(group)
    history = []
    for _ in range(4):
        history.append(_next_epoch(group))
    return group, history


def test_replays_are_the_recorded_step_run_eagerly_to_the_bit_over_whole_epochs(monkeypatch):
    """Epochs of several steps (a rate that changes every step of epoch 0, a smaller last batch,
    class weights from epoch 2), each plan recorded the second time it comes: the replayed group
    and the same group whose recorded step runs eagerly at every step end with the same weights,
    statistics, momentum and generators, bit for bit, and the same metrics. DRW's weights are
    scaled by epoch here, so that a replay holding the capture's weights would show."""
    import smcl_tune.trial.fused.group_run as group_run

    drw = group_run.class_weights

    def weights_of_the_epoch(method, epoch, counts):
        weights = drw(method, epoch, counts)
        return None if weights is None else weights * (1 + epoch)

    monkeypatch.setattr(group_run, "class_weights", weights_of_the_epoch)
    captured: list = []
    graphed, graphed_history = _drw_group(
        lambda group: GroupGraphs(group, group_rerun_capture(group, captured), warmup_steps=1)
    )
    eager, eager_history = _drw_group(lambda group: GroupGraphs(group, capture=None, warmup_steps=10**9))
    shapes = {tuple(shape[0][0]) for key in graphed.graphs.graphs for shape in key[2][:1]}
    assert graphed.graphs.replays >= 20 and len(shapes) == 2, (graphed.graphs.replays, shapes)
    assert any(any(key[3]) for key in graphed.graphs.graphs), "a graph with class weights"
    for mine, theirs in zip(graphed_history, eager_history):
        for index in mine:
            for name in ("loss", "loss_mce", "loss_msc", "train_accuracy", "masked_step_fraction", "masked_area"):
                torch.testing.assert_close(mine[index][name], theirs[index][name], rtol=0, atol=0, equal_nan=True)
    for mine, theirs in zip(_group_state(graphed), _group_state(eager)):
        torch.testing.assert_close(mine, theirs, rtol=0, atol=0)
    for mine, theirs in zip(graphed.members, eager.members):
        assert torch.equal(mine.parts.generators.steps.get_state(), theirs.parts.generators.steps.get_state())


def test_the_graphs_of_a_member_that_ended_are_dropped(tiny_config):
    """Members with their own epochs: once one ends, the graphs that record it are let go."""
    configs = [
        trial_config_from_dict(_config(tiny_config, epochs=epochs, name="ce", mask_end_epoch=None, seed=seed))
        for seed, epochs in enumerate((5, 9))
    ]
    group = build_group(configs, coded_data(), torch.device("cpu"), strategy="vmap")
    _with_graphs([])(group)
    for _ in range(9):
        _next_epoch(group)
    (key,) = group.graphs.graphs
    assert key[0].members == (1,) and group.graphs.replays == 2 + 1  # epochs 3, 4; then 8


def test_a_capture_that_fails_leaves_the_group_eager_saying_so_once(caplog):
    configs = []
    for seed in range(2):
        settings = config({**MASKING, "name": "smcl"}, EPOCHS, 8)
        settings["training"].update(seed=seed)
        configs.append(trial_config_from_dict(settings))
    group = build_group(configs, coded_data(), torch.device("cpu"), strategy="vmap")

    def refused(step, draws):
        state = _group_state(group)
        before = [tensor.detach().clone() for tensor in state]
        with recording(draws):
            step()  # draws from the members' generators, which the failure must give back
        with torch.no_grad():
            for tensor, value in zip(state, before):
                tensor.copy_(value)
        raise RuntimeError("operation not permitted when stream is capturing\nmore detail")

    group.graphs = GroupGraphs(group, refused)
    eager = build_group(configs, coded_data(), torch.device("cpu"), strategy="vmap")
    with caplog.at_level(logging.WARNING):
        for _ in range(EPOCHS):
            mine, theirs = _next_epoch(group), _next_epoch(eager)
            for member, other in zip(group.members, eager.members):
                assert mine[member.index]["masked_step_fraction"] == theirs[other.index]["masked_step_fraction"]
    said = [record.getMessage() for record in caplog.records if "cuda_graph" in record.getMessage()]
    assert said == [
        "training.cuda_graph: the fused group's steps run eagerly from here "
        "(the capture failed: operation not permitted when stream is capturing)"
    ]
    for member, other in zip(group.members, eager.members):
        assert torch.equal(member.parts.generators.steps.get_state(), other.parts.generators.steps.get_state())


def test_a_recorded_group_step_refuses_a_group_that_loops_over_its_members():
    """In a loop group a step's plain pass runs through views of the stacked BatchNorm statistics,
    and its masking pass, vmapped, writes them back in place before the backward that needs them
    (measured: "modified by an inplace operation"): only a vmapped group records its steps."""
    configs = [trial_config_from_dict(config({**MASKING, "name": "smcl"}, EPOCHS, 8)) for _ in range(2)]
    group = build_group(configs, coded_data(), torch.device("cpu"), strategy="loop")
    with pytest.raises(ValueError, match="a recorded group step needs a vmapped group, not 'loop'"):
        GroupGraphs(group, capture=None)


def test_a_group_off_cuda_asked_for_graphs_says_once_that_it_steps_eagerly(caplog):
    configs = []
    for seed in range(3):
        settings = config({**MASKING, "name": "smcl"}, EPOCHS, 8)
        settings["training"].update(cuda_graph=True, device="auto", seed=seed)
        configs.append(trial_config_from_dict(settings))
    with caplog.at_level(logging.WARNING):
        group = build_group(configs, coded_data(), torch.device("cpu"))
    said = [record.getMessage() for record in caplog.records if "cuda_graph" in record.getMessage()]
    assert said == [
        "training.cuda_graph: the steps run eagerly (CUDA graphs need a CUDA device, and this trial runs on cpu)"
    ]
    assert group.graphs is None
    assert all(member.parts.graphs is None for member in group.members)


REFILLED_SHAPES = (
    {"name": "smcl", "mask_mode": "box", "fill": "noise", "mask_probability": 1.0},
    {
        "name": "smcl",
        "compose": "paste",
        "mask_mode": "threshold",
        "mask_probability": 1.0,
        "classifier_loss": "balanced_softmax",
    },
)


def _recorded_and_replayed(configs: list, data):
    """A group of `configs` whose one plan of step is recorded, then replayed twice."""
    group = build_group(configs, data, torch.device("cpu"), strategy="vmap")
    _with_graphs([])(group)
    for _ in range(WARMUP_STEPS + 2):
        _next_epoch(group)
    assert group.graphs.captures == 1 and len(group.graphs.graphs) == 1 and group.graphs.replays == 2
    return group


def _refilled_in_lockstep(tiny_config, corrupt=None) -> GroupGraphs:
    """Two SMCL members (box and threshold masks, every step masking: one plan) until their step
    is recorded and replayed; then both leave, and members of the same recorded shapes with their
    own temperatures, loss weights, box size, threshold, seeds and optimizer hyperparameters take
    their slots. Each newcomer is compared with its own trial at every step. `corrupt(group,
    newcomers)` runs after the refill."""
    from smcl_tune.trial.fused.group_run import new_member

    first = [_config(tiny_config, epochs=12, seed=seed, **shape) for seed, shape in enumerate(REFILLED_SHAPES)]
    then = [
        _config(tiny_config, epochs=5, seed=7, temperature=0.4, loss_weight=0.3, box_alpha=3.0, **REFILLED_SHAPES[0]),
        _config(tiny_config, epochs=5, seed=8, temperature=0.05, loss_weight=2, **REFILLED_SHAPES[1]),
    ]
    then[0]["training"].update(lr=0.02, momentum=0.5, weight_decay=0.01, nesterov=True)
    then[1]["method"]["saliency_threshold"] = 0.3
    then[1]["training"].update(lr=0.2, momentum=0.0)
    data = coded_data()
    group = _recorded_and_replayed([trial_config_from_dict(config) for config in first], data)
    for member in list(group.members):
        group.release(member)
    configs = [trial_config_from_dict(config) for config in then]
    newcomers = [new_member(0, config, data, torch.device("cpu")) for config in configs]
    for member in newcomers:
        group.admit(member)
    if corrupt is not None:
        corrupt(group, newcomers)
    trials = [SteppedTrial.build(config, data, torch.device("cpu")) for config in configs]
    for _ in range(5):
        fused = group.train_epoch(newcomers)
        for member, trial in zip(newcomers, trials):
            before = {key: param.detach().clone() for key, param in trial.parts.network.named_parameters()}
            theirs = trial.train_epoch()
            _compare_step(group, member, trial, fused[member.index], theirs, f"newcomer {member.index}", before)
            member.epoch += 1
            group.network.load_member_state(member.index, trial.parts.network.state_dict())
            group.optimizer.load_member_state(member.index, trial.parts.optimizer.state_dict())
    return group.graphs


@pytest.mark.usefixtures("nchw_layout")  # compared with their trials: tests/trial/conftest.py
def test_members_refilling_slots_replay_their_predecessors_graph_as_their_own_trials(tiny_config):
    """FUSION.md: a refill never recaptures. A newcomer's values, step generator and optimizer
    hyperparameters are read from its slot's memory, so the graph recorded for its predecessor
    steps it as its own trial steps, from its first step."""
    graphs = _refilled_in_lockstep(tiny_config)
    assert graphs.captures == 1 and graphs.replays == 2 + 5
    assert graphs.failed is None


@pytest.mark.usefixtures("nchw_layout")  # compared with their trials: tests/trial/conftest.py
def test_a_refill_whose_values_or_draws_stayed_its_predecessors_would_be_seen(tiny_config):
    """The refill lockstep catches a slot that kept its predecessor's values (the recorded step
    would compute with them), or a newcomer drawing from a generator of its own while the recorded
    draws call the slot's."""
    from dataclasses import replace

    def predecessors_values(group, newcomers) -> None:
        for member, shape in zip(newcomers, REFILLED_SHAPES):
            group.values.set_slot(member.index, trial_config_from_dict(_config(tiny_config, **shape)).method)

    def own_generator(group, newcomers) -> None:
        member = newcomers[0]
        own = torch.Generator().manual_seed(0)
        own.set_state(member.parts.generators.steps.get_state())
        member.parts = replace(member.parts, generators=replace(member.parts.generators, steps=own))

    for corrupt in (predecessors_values, own_generator):
        with pytest.raises(AssertionError):
            _refilled_in_lockstep(tiny_config, corrupt)


def test_a_slot_refilled_by_a_member_of_another_shape_is_recorded_anew(tiny_config):
    """A member's method choices are its recorded kernels (slot_values.recorded_shape): the graph
    of a slot refilled by another shape is dropped, and the newcomer's steps are recorded for it."""
    from smcl_tune.trial.fused.group_run import new_member

    configs = [
        trial_config_from_dict(_config(tiny_config, epochs=12, name="ce", mask_end_epoch=None, seed=seed))
        for seed in range(2)
    ]
    data = coded_data()
    group = _recorded_and_replayed(configs, data)
    group.release(group.members[1])
    other_shape = _config(tiny_config, epochs=12, name="ce", mask_end_epoch=None, classifier_loss="balanced_softmax")
    group.admit(new_member(1, trial_config_from_dict(other_shape), data, torch.device("cpu")))
    group.train_epoch(group.members)
    assert group.graphs.graphs == {}, "the graph of the slots' former shapes is dropped"
    for _ in range(WARMUP_STEPS):
        _next_epoch(group)
    assert group.graphs.captures == 2 and group.graphs.replays == 3


@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA's bf16 autocast runs on a CUDA device only")
def test_fused_members_on_cuda_step_as_their_trials_within_bf16_rounding():
    """On CUDA every pass runs under bf16 autocast, the members' vmapped passes too (their
    BatchNorm one kernel over their folded channels: folded_norm.py): stepped eagerly or
    recorded, each member's loss is its trial's, step by step from equal states, within bf16's
    rounding."""
    from tests.conftest import _tiny_config  # a plain import: the GPU run's pytest loads no conftest
    from tests.trial.test_folded_norm import members_step_as_their_trials_within_bf16_rounding

    for recorded in (False, True):
        members_step_as_their_trials_within_bf16_rounding(_tiny_config, recorded, torch.device("cuda"))


def _cuda_members(seeds, **method) -> list:
    configs = []
    for seed in seeds:
        settings = config({**MASKING, "name": "smcl", "fill": "noise", **method}, EPOCHS, 8)
        settings["method"]["temperature"] = 0.1 + 0.1 * (seed % 4)
        settings["training"].update(cuda_graph=True, device="cuda", seed=seed, lr=0.02 + 0.01 * (seed % 3))
        configs.append(trial_config_from_dict(settings))
    return configs


def _epochs_alike(graphed, eager) -> None:
    """EPOCHS epochs of a graphed group and the same group stepped eagerly: each member's losses
    alike within float noise, its masked steps the same."""
    for _ in range(EPOCHS):
        mine, theirs = _next_epoch(graphed), _next_epoch(eager)
        for member, other in zip(graphed.members, eager.members):
            for name in ("loss", "loss_mce", "loss_msc", "masked_area"):
                assert mine[member.index][name] == pytest.approx(theirs[other.index][name], rel=1e-3, nan_ok=True)
            assert mine[member.index]["masked_step_fraction"] == theirs[other.index]["masked_step_fraction"]


def _states_alike(graphed, eager) -> None:
    """The same draws and decisions (generators to the bit); weights, statistics and momentum
    within float noise; BatchNorm's step counts and which members' momentum started, equal."""
    for member, other in zip(graphed.members, eager.members):
        assert torch.equal(member.parts.generators.steps.get_state(), other.parts.generators.steps.get_state())
    for mine, theirs in zip(_group_state(graphed), _group_state(eager)):
        if mine.is_floating_point():
            torch.testing.assert_close(mine, theirs, rtol=1e-2, atol=1e-3)
        else:
            assert torch.equal(mine, theirs)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA graphs are captured on a CUDA device only")
def test_a_graphed_group_on_cuda_trains_as_the_same_group_stepped_eagerly():
    """Captured for real: four SMCL members masking half the time (a graph for the steps where
    some mask, one for those where none does, and for the last batch: graphs of one memory pool,
    replayed in whatever order the steps come), against the same group whose recorded step runs
    eagerly at every step (the same kernels, launched one by one): the same draws and decisions
    (generators to the bit), the same epochs' losses, and weights, statistics and momentum within
    float noise."""
    device = torch.device("cuda")
    data = coded_data().to(device)
    graphed = build_group(_cuda_members(range(4)), data, device)
    eager = build_group(_cuda_members(range(4)), data, device)
    eager.graphs = GroupGraphs(eager, capture=None, warmup_steps=10**9)
    _epochs_alike(graphed, eager)
    assert graphed.graphs.failed is None and graphed.graphs.replays > 20
    _states_alike(graphed, eager)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA graphs are captured on a CUDA device only")
def test_a_graphed_group_on_cuda_refilled_by_members_of_its_shapes_replays_without_a_capture():
    """Captured for real: four SMCL members train until their steps are recorded, then leave, and
    four of the same shapes with their own seeds, temperatures, loss weights, box sizes and rates
    take their slots. The graphs recorded for the leavers step the newcomers (a capture after the
    refill is of a plan not recorded before), as the same group refilled and stepped eagerly steps
    them."""
    from smcl_tune.trial.fused.group_run import new_member

    device = torch.device("cuda")
    data = coded_data().to(device)
    graphed = build_group(_cuda_members(range(4)), data, device)
    eager = build_group(_cuda_members(range(4)), data, device)
    eager.graphs = GroupGraphs(eager, capture=None, warmup_steps=10**9)
    for _ in range(EPOCHS):
        _next_epoch(graphed)
        _next_epoch(eager)
    captures, replays, recorded = graphed.graphs.captures, graphed.graphs.replays, dict(graphed.graphs.graphs)
    assert graphed.graphs.failed is None and captures >= 1
    newcomers = _cuda_members(range(10, 14), loss_weight=0.4, box_alpha=3.0)
    for group in (graphed, eager):
        for member in list(group.members):
            group.release(member)
        for settings in newcomers:
            group.admit(new_member(0, settings, data, device))
    _epochs_alike(graphed, eager)
    graphs = graphed.graphs.graphs
    assert all(graphs[key] is graph for key, graph in recorded.items()), "the leavers' graphs are kept"
    assert graphed.graphs.captures - captures == len(graphs) - len(recorded), "captures of plans not recorded before"
    assert graphed.graphs.replays > replays + 20
    _states_alike(graphed, eager)


def test_the_recorded_group_step_makes_no_tensor_from_host_data_and_reads_nothing_back(tiny_config):
    """What a CUDA graph of a group's step can replay: every recorded step (each plan seen) makes
    no tensor from host data and no host read, but for the members' own host draws (the tape's).
    Three masking kinds always present (their members always mask) and a supcon member of the
    first kind that masks half the time; class weights from epochs 4 and 6."""
    configs = [
        _config(tiny_config, epochs=16, name="smcl", fill="noise", mask_mode="box", mask_probability=1.0),
        _config(
            tiny_config, epochs=16, seed=1, name="smcl", saliency="random", minor_images=True, mask_probability=1.0
        ),
        _config(
            tiny_config, epochs=16, seed=2, name="cmo", classifier_loss="drw", drw_start_epoch=4, mask_probability=1.0
        ),
        _config(tiny_config, epochs=16, seed=3, name="supcon", classifier_loss="balanced_softmax"),
        _config(
            tiny_config, epochs=16, seed=4, name="ce", mask_end_epoch=None, classifier_loss="drw", drw_start_epoch=6
        ),
    ]
    typed = [trial_config_from_dict(member) for member in configs]
    group = build_group(typed, coded_data(), torch.device("cpu"), strategy="vmap")
    counts: list[tuple] = []
    rerun = group_rerun_capture(group, [])

    def counting(step, draws):
        generators = [member.parts.generators.steps for member in group.members]
        with CountHostTraffic(generators) as counter:
            recorded = rerun(step, draws)
        counts.append((counter.count, step))
        return recorded

    group.graphs = GroupGraphs(group, counting)
    for _ in range(16):
        _next_epoch(group)
    plans = [key[0] for key in group.graphs.graphs]
    assert len(plans) >= 2 and all(len(plan.kinds) == 3 for plan in plans), plans
    assert [count for count, _ in counts] == [0] * len(counts)
