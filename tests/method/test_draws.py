"""The step's host draws on their way to a graph's buffers (method/draws.py)."""

import torch

from smcl_tune.method.draws import DrawTape, drawing_for, on_device, recording


def _taped(generators: list[torch.Generator]) -> DrawTape:
    tape = DrawTape()
    with recording(tape):
        for owner, generator in enumerate(generators):
            with drawing_for(owner):
                on_device(lambda generator=generator: torch.rand(3, generator=generator), torch.device("cpu"))
    tape.load_first()
    return tape


def test_a_redraw_draws_again_for_the_members_named_and_zeroes_the_others_buffers():
    """The members named draw their next values from their generators; the others' generators
    keep their states, and their buffers, whose values the step leaves out, are zeroed (a graph
    sharing the memory pool may have written anything there)."""
    generators = [torch.Generator().manual_seed(seed) for seed in (0, 1)]
    tape = _taped(generators)
    expected = torch.rand(3, generator=torch.Generator().manual_seed(0).set_state(generators[0].get_state()))
    unused_state = generators[1].get_state()
    tape.buffers[1].fill_(float("inf"))
    tape.redraw(owners={0})
    assert torch.equal(tape.buffers[0], expected)
    assert torch.equal(tape.buffers[1], torch.zeros(3))
    assert torch.equal(generators[1].get_state(), unused_state)


def test_a_redraw_without_owners_draws_every_draw_again():
    generators = [torch.Generator().manual_seed(seed) for seed in (0, 1)]
    tape = _taped(generators)
    states = [generator.get_state() for generator in generators]
    tape.redraw()
    for buffer, state in zip(tape.buffers, states):
        assert torch.equal(buffer, torch.rand(3, generator=torch.Generator().set_state(state)))
