"""A fused group's vmapped pass and its batch norm (trial/fused/folded_norm.py), under CUDA's bf16 autocast too.

On CUDA every convolution runs in bf16 under autocast, vmapped or not (aten::convolution is on
CUDA's autocast list); the CPU's list leaves a vmapped convolution in float32, so the CPU's own
groups never hand BatchNorm a bf16 activation. These tests give the vmapped pass what CUDA gives
it: bf16 activations, directly, or from convolutions cast as CUDA's autocast casts them."""

from __future__ import annotations

import collections
import functools

import pytest
import torch
from torch import nn
from torch.func import functional_call, stack_module_state, vmap

import smcl_tune.trial.epoch
import smcl_tune.trial.fused.group_run
import smcl_tune.trial.fused.kinds_step
from smcl_tune.trial.fused.folded_norm import folded_norms
from smcl_tune.trial.fused.kept_rows_norm import kept_rows
from tests.trial.test_fused_group import _config, _in_lockstep
from tests.trial.test_group_graphs import _with_graphs

MEMBERS, ROWS, CHANNELS, HEAD_ROWS = 3, 8, 4, 4


def _norms() -> list[nn.Module]:
    """One BatchNorm2d a member, each with its own affine weights and running statistics."""
    generator = torch.Generator().manual_seed(0)
    norms = []
    for _ in range(MEMBERS):
        norm = nn.BatchNorm2d(CHANNELS)
        with torch.no_grad():
            for tensor in (norm.weight, norm.bias, norm.running_mean):
                tensor.copy_(torch.randn(CHANNELS, generator=generator))
            norm.running_var.copy_(torch.rand(CHANNELS, generator=generator) + 0.5)
        norms.append(nn.Sequential(norm))
    return norms


def _vmapped(structure: nn.Module, norms: list[nn.Module], images: torch.Tensor, **bound):
    """The members' outputs through `structure`, vmapped over their stacked states, and the states
    (moved in place, as a group's are)."""
    params, buffers = stack_module_state(norms)
    structure.train()
    out = vmap(lambda p, b, x: functional_call(structure, (p, b), (x,)))(params, {**buffers, **bound}, images)
    return out, params, buffers


def _images(dtype: torch.dtype) -> torch.Tensor:
    return torch.randn(MEMBERS, ROWS, CHANNELS, 5, 5, generator=torch.Generator().manual_seed(1)).to(dtype)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_a_vmapped_pass_normalises_each_member_as_its_own_batch_norm(dtype):
    """Each member's output, gradients and running statistics are those of its own BatchNorm2d on
    its own images (in bf16, torch's mixed-precision batch norm, as an unfused trial runs it)."""
    norms, images = _norms(), _images(dtype).requires_grad_(True)
    out, params, buffers = _vmapped(folded_norms(norms[0]), norms, images)
    assert out.dtype == dtype
    weights = torch.linspace(-1, 1, out.numel()).reshape(out.shape)
    (out.float() * weights).sum().backward()
    step = {"rtol": 8e-3, "atol": 8e-3} if dtype == torch.bfloat16 else {"rtol": 1e-5, "atol": 1e-6}  # one bf16 step
    for member, norm in enumerate(_norms()):
        own_images = images[member].detach().clone().requires_grad_(True)
        own = norm(own_images)
        assert own.dtype == dtype
        (own.float() * weights[member]).sum().backward()
        torch.testing.assert_close(out[member].float(), own.float(), **step)
        torch.testing.assert_close(images.grad[member].float(), own_images.grad.float(), **step)
        for name, value in norm.named_parameters():
            torch.testing.assert_close(params[name].grad[member], value.grad, rtol=1e-4, atol=1e-4, msg=name)
        for name, value in norm.named_buffers():
            torch.testing.assert_close(buffers[name][member], value, rtol=1e-6, atol=1e-6, msg=name)


def saved_bytes(run) -> collections.Counter[str]:
    """Bytes of the distinct storages `run()` keeps for its backward, by dtype."""
    storages = {}

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        storage = tensor.untyped_storage()
        storages[storage.data_ptr()] = (storage.nbytes(), str(tensor.dtype).removeprefix("torch."))
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        run()
    by_dtype = collections.Counter()
    for size, dtype in storages.values():
        by_dtype[dtype] += size
    return by_dtype


def _saved_bytes(run) -> int:
    return sum(saved_bytes(run).values())


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_a_vmapped_batch_norm_keeps_for_its_backward_what_its_members_own_keep(dtype):
    """One copy of the activation, in its own dtype, as each member's own batch norm keeps its input
    (torch.func's own rule kept two, in float32: benchmarks/fused_saved_memory.py)."""
    images = torch.randn(MEMBERS, 32, CHANNELS, 16, 16).to(dtype).requires_grad_(True)
    fused = _saved_bytes(lambda: _vmapped(folded_norms(_norms()[0]), _norms(), images))
    own_images = [member_images.detach().clone().requires_grad_(True) for member_images in images]
    trials = sum(_saved_bytes(functools.partial(norm, mine)) for norm, mine in zip(_norms(), own_images))
    activation = images.numel() * images.element_size()
    assert activation <= fused <= 1.05 * trials, (fused, trials, activation)


def test_a_kept_rows_pass_normalises_bf16_activations_as_its_float32_pass():
    """The masking pass's BatchNorm (kept_rows_norm.py) on bf16 activations: its float32 pass on the
    same values within one bf16 step, and the same running statistics."""
    structure, names = kept_rows(_norms()[0])
    keeps_all = torch.tensor([True, False, True])
    for name in names:
        structure.get_submodule(name).head_count = HEAD_ROWS
    bound = {f"{name}.keeps_all": keeps_all for name in names}
    images = _images(torch.bfloat16)
    out, _, buffers = _vmapped(structure, _norms(), images, **bound)
    in_float32, _, buffers_float32 = _vmapped(structure, _norms(), images.float(), **bound)
    assert out.dtype == torch.bfloat16
    torch.testing.assert_close(out.float(), in_float32, rtol=8e-3, atol=8e-3)
    for name, value in buffers_float32.items():
        torch.testing.assert_close(buffers[name], value, rtol=1e-6, atol=1e-6, msg=name)


def _cuda_like_autocast(monkeypatch) -> None:
    """The CPU's autocast in bf16 where the product enters CUDA's, with every convolution cast to
    bf16 as CUDA's autocast casts it (the CPU's leaves a vmapped one in float32)."""
    for module in (smcl_tune.trial.epoch, smcl_tune.trial.fused.group_run, smcl_tune.trial.fused.kinds_step):
        monkeypatch.setattr(module, "autocast", lambda device: torch.autocast("cpu", dtype=torch.bfloat16))
    convolve = nn.Conv2d._conv_forward

    def in_bf16(self, images, weight, bias):
        if not torch.is_autocast_enabled("cpu"):
            return convolve(self, images, weight, bias)
        with torch.autocast("cpu", enabled=False):
            bf16 = [None if tensor is None else tensor.to(torch.bfloat16) for tensor in (images, weight, bias)]
            return convolve(self, *bf16)

    monkeypatch.setattr(nn.Conv2d, "_conv_forward", in_bf16)


def members_step_as_their_trials_within_bf16_rounding(tiny_config, recorded: bool, device: torch.device) -> None:
    """SMCL (a masking pass, kept rows when a member does not mask), SupCon and CE members, eagerly
    or through the recorded group step that CUDA captures, one step at a time from their trials'
    states: every step runs, and each member's loss is its trial's within bf16's rounding."""
    configs = [
        _config(tiny_config, epochs=6, name="smcl", temperature=0.1),
        _config(tiny_config, epochs=6, seed=1, name="supcon", temperature=0.2),
        _config(tiny_config, epochs=6, seed=2, name="ce", mask_end_epoch=None),
    ]
    for settings in configs:
        settings["training"]["device"] = str(device)
    losses = []

    def compare(group, member, trial, metrics, theirs, name, before):
        losses.append((name, metrics["loss"], theirs["loss"]))

    _in_lockstep(configs, compare=compare, corrupt=_with_graphs([]) if recorded else None, device=device)
    assert len(losses) == 18
    for name, mine, theirs in losses:
        assert mine == pytest.approx(theirs, rel=1e-2), name


@pytest.mark.parametrize("recorded", [False, True], ids=["eager step", "recorded step"])
@pytest.mark.usefixtures("nchw_layout")
def test_members_under_cudas_autocast_emulated_step_as_their_trials_within_bf16_rounding(
    tiny_config, monkeypatch, recorded
):
    """Under CUDA-like bf16 autocast on the CPU (measured: 2.4e-3 of the loss at most, 10 members of
    every method over 12 steps)."""
    _cuda_like_autocast(monkeypatch)
    members_step_as_their_trials_within_bf16_rounding(tiny_config, recorded, torch.device("cpu"))
