"""Every trial's optimizer (trial/capturable_sgd.py) is torch.optim.SGD's update, also at a rate tensor,
and its checkpoints are torch's."""

import pytest
import torch
from torch import nn

from smcl_tune.trial.capturable_sgd import CapturableSGD

STEPS = 25
RECIPES = {
    "momentum": {"momentum": 0.9, "weight_decay": 2e-4},
    "nesterov": {"momentum": 0.9, "weight_decay": 5e-4, "nesterov": True},
    "plain": {"momentum": 0.0, "weight_decay": 0.0},
}


def _model() -> nn.Module:
    torch.manual_seed(0)
    return nn.ModuleDict({"body": nn.Linear(6, 4), "head": nn.Linear(4, 3)})


def _train(update, recipe: dict, rate_tensor: bool) -> tuple[nn.Module, torch.optim.Optimizer]:
    """STEPS steps at a changing rate; the head is used on every third step only (like the projection
    head, which only a pass with embeddings trains), so its momentum starts later than the body's."""
    model = _model()
    optimizer = update(model.parameters(), lr=0.1, **recipe)
    rate = torch.zeros(())
    generator = torch.Generator().manual_seed(1)
    for step in range(STEPS):
        value = 0.1 * (1 + step) / STEPS
        for group in optimizer.param_groups:
            if rate_tensor:
                rate.fill_(value)
                group["lr"] = rate
            else:
                group["lr"] = value
        inputs = torch.randn(8, 6, generator=generator)
        features = model["body"](inputs)
        loss = features.square().mean() + (model["head"](features).square().mean() if step % 3 == 2 else 0)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return model, optimizer


@pytest.mark.parametrize("recipe", RECIPES.values(), ids=RECIPES.keys())
def test_at_a_float_rate_it_is_torchs_sgd_to_the_bit(recipe):
    expected, torch_optimizer = _train(torch.optim.SGD, recipe, rate_tensor=False)
    got, optimizer = _train(CapturableSGD, recipe, rate_tensor=False)
    for (name, value), mine in zip(expected.state_dict().items(), got.state_dict().values()):
        torch.testing.assert_close(mine, value, rtol=0, atol=0, msg=name)
    for theirs, mine in zip(torch_optimizer.state.values(), optimizer.state.values()):
        torch.testing.assert_close(mine["momentum_buffer"], theirs["momentum_buffer"], rtol=0, atol=0)


@pytest.mark.parametrize("recipe", RECIPES.values(), ids=RECIPES.keys())
def test_at_a_rate_tensor_it_is_torchs_sgd_within_float_rounding(recipe):
    expected, _ = _train(torch.optim.SGD, recipe, rate_tensor=False)
    got, optimizer = _train(CapturableSGD, recipe, rate_tensor=True)
    for (name, value), mine in zip(expected.state_dict().items(), got.state_dict().values()):
        torch.testing.assert_close(mine, value, rtol=1e-4, atol=1e-5, msg=name)
    # its state is torch's: a checkpoint of it loads into torch's SGD and steps on alike
    state = optimizer.state_dict()
    state["param_groups"][0]["lr"] = 0.1
    torch_optimizer = torch.optim.SGD(got.parameters(), lr=0.1, **recipe)
    torch_optimizer.load_state_dict(state)
    assert len(torch_optimizer.state) == len(optimizer.state) == (4 if recipe["momentum"] else 0)


@pytest.mark.parametrize("recipe", RECIPES.values(), ids=RECIPES.keys())
def test_a_checkpoint_of_torchs_sgd_loads_and_steps_on_to_the_bit(recipe):
    """A checkpoint written before trials stepped with this class (by torch.optim.SGD) resumes."""
    trained, torch_optimizer = _train(torch.optim.SGD, recipe, rate_tensor=False)
    saved = torch_optimizer.state_dict()
    saved["state"] = dict(reversed(saved["state"].items()))  # buffers are found by number, not by position
    twin = _model()
    twin.load_state_dict(trained.state_dict())
    optimizer = CapturableSGD(twin.parameters(), lr=0.5)
    optimizer.load_state_dict(saved)
    assert optimizer.state_dict()["param_groups"] == saved["param_groups"]
    buffers = zip(optimizer.state.values(), torch_optimizer.state.values())
    assert all(mine["momentum_buffer"] is not theirs["momentum_buffer"] for mine, theirs in buffers)  # copies
    inputs = torch.randn(8, 6, generator=torch.Generator().manual_seed(2))
    for model, update in ((trained, torch_optimizer), (twin, optimizer)):
        update.zero_grad()
        model["head"](model["body"](inputs)).square().mean().backward()
        update.step()
    for (name, value), mine in zip(trained.state_dict().items(), twin.state_dict().values()):
        torch.testing.assert_close(mine, value, rtol=0, atol=0, msg=name)


def test_impossible_settings_are_refused_as_torch_refuses_them():
    parameters = list(_model().parameters())
    with pytest.raises(ValueError, match="Nesterov"):
        CapturableSGD(parameters, lr=0.1, nesterov=True)
    with pytest.raises(ValueError, match=">= 0"):
        CapturableSGD(parameters, lr=-0.1)
    with pytest.raises(ValueError, match="empty"):
        CapturableSGD([], lr=0.1)


def test_a_checkpoint_it_cannot_honour_is_refused_and_changes_nothing():
    model = _model()
    optimizer = CapturableSGD(model.parameters(), lr=0.1, momentum=0.9)
    model["body"](torch.ones(2, 6)).sum().backward()
    optimizer.step()
    before = optimizer.state_dict()
    for change in ({"dampening": 0.1}, {"maximize": True}):
        saved = optimizer.state_dict()
        saved["param_groups"] = [{**saved["param_groups"][0], **change}]
        with pytest.raises(ValueError, match=next(iter(change))):
            optimizer.load_state_dict(saved)
    stray = {**optimizer.state_dict(), "state": {**optimizer.state_dict()["state"], 9: {}}}
    with pytest.raises(ValueError, match=r"\[9\]"):
        optimizer.load_state_dict(stray)
    assert optimizer.state_dict() == before


def test_zero_grad_keeps_zeroed_gradients_as_torchs_does():
    """Also a gradient that is a view (which cannot be detached in place)."""
    grads = []
    for update in (torch.optim.SGD, CapturableSGD):
        model = _model()
        optimizer = update(model.parameters(), lr=0.1)
        model["head"](model["body"](torch.ones(2, 6))).sum().backward()
        model["body"].bias.grad = torch.ones(8)[::2]  # a view
        optimizer.zero_grad(set_to_none=False)
        grads.append([param.grad for param in model.parameters()])
    for theirs, mine in zip(*grads):
        assert torch.equal(mine, theirs) and not mine.requires_grad
