"""Kept-rows BatchNorm (trial/fused/kept_rows_norm.py) against torch's BatchNorm2d run on the kept
rows alone: outputs, gradients and running statistics, alone and in a stacked pass."""

import pytest
import torch
from torch import nn

from smcl_tune.models import build_network
from smcl_tune.trial.fused.kept_rows_norm import KeptRowsBatchNorm2d, kept_heads, kept_rows
from smcl_tune.trial.fused.stacked_network import StackedNetwork

RTOL, ATOL = 1e-5, 1e-6


def _norm(seed: int, channels: int = 6) -> nn.BatchNorm2d:
    torch.manual_seed(seed)
    norm = nn.BatchNorm2d(channels)
    with torch.no_grad():
        norm.weight.uniform_(0.5, 1.5)
        norm.bias.uniform_(-0.5, 0.5)
        norm.running_mean.uniform_(-1, 1)
        norm.running_var.uniform_(0.5, 2)
    return norm


@pytest.mark.parametrize("copies", [1, 2, 3])
def test_the_kept_rows_are_batchnorm_over_them_alone(copies):
    """x_b's 4 rows kept of 4 x copies: the kept rows' outputs, every gradient and the running
    statistics are BatchNorm2d's over x_b alone; the left-out rows get no gradient, and their
    outputs stay finite."""
    reference, kept = _norm(0), KeptRowsBatchNorm2d(_norm(0))
    rows = 4 * copies
    kept.keeps_all, kept.head_count = torch.tensor(False), 4
    images = torch.randn(rows, 6, 5, 5) * 3 + 1
    upstream = torch.randn(4, 6, 5, 5)
    theirs_in, mine_in = images[:4].clone().requires_grad_(), images.clone().requires_grad_()
    theirs, mine = reference(theirs_in), kept(mine_in)
    torch.testing.assert_close(mine[:4], theirs, rtol=RTOL, atol=ATOL)
    assert torch.isfinite(mine).all()
    (theirs * upstream).sum().backward()
    (mine[:4] * upstream).sum().backward()
    torch.testing.assert_close(mine_in.grad[:4], theirs_in.grad, rtol=1e-4, atol=1e-5)
    assert torch.count_nonzero(mine_in.grad[4:]) == 0
    torch.testing.assert_close(kept.weight.grad, reference.weight.grad, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(kept.bias.grad, reference.bias.grad, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(kept.running_mean, reference.running_mean, rtol=RTOL, atol=ATOL)
    torch.testing.assert_close(kept.running_var, reference.running_var, rtol=RTOL, atol=ATOL)
    assert int(kept.num_batches_tracked) == int(reference.num_batches_tracked) == 1


def test_a_member_that_keeps_every_row_is_torchs_batchnorm_to_the_bit():
    reference, kept = _norm(1), KeptRowsBatchNorm2d(_norm(1))
    kept.keeps_all, kept.head_count = torch.tensor(True), 4
    images = torch.randn(8, 6, 5, 5)
    assert torch.equal(kept(images), reference(images))


def test_a_stacked_pass_takes_each_members_statistics_over_its_own_rows():
    """Two members of a small CNN in one vmapped pass of 8 rows, one keeping all 8, one its first
    4: each member's logits, moved statistics and gradients (of a loss of its kept rows' logits)
    are its own network's in train mode on its rows."""
    networks = []
    for seed in (1, 2):
        torch.manual_seed(seed)
        networks.append(build_network("small_cnn", num_classes=5))
    stacked = StackedNetwork(networks, strategy="vmap")
    images = torch.randn(2, 8, 3, 16, 16)
    logits, _ = stacked.forward([0, 1], images, kept=kept_heads(torch.tensor([True, False]), 4, 8))
    upstream = torch.randn(2, 8, 5)
    (logits[0] * upstream[0]).sum().add((logits[1, :4] * upstream[1, :4]).sum()).backward()
    for member, (network, rows) in enumerate(zip(networks, (8, 4))):
        network.train()
        theirs, _ = network(images[member, :rows])
        torch.testing.assert_close(logits[member, :rows], theirs, rtol=1e-4, atol=1e-5)
        (theirs * upstream[member, :rows]).sum().backward()
        for name, param in network.named_parameters():
            stacked_grad = stacked.params[name].grad
            assert (stacked_grad is None) == (param.grad is None), name  # the projection: no embeddings asked
            if param.grad is not None:
                torch.testing.assert_close(
                    stacked_grad[member], param.grad, rtol=1e-4, atol=1e-5, msg=lambda m, name=name: f"{name}: {m}"
                )
        for name, buffer in network.named_buffers():
            moved = stacked.buffers[name][member]
            if buffer.is_floating_point():
                torch.testing.assert_close(moved, buffer, rtol=1e-5, atol=1e-6, msg=lambda m, name=name: f"{name}: {m}")
            else:
                assert torch.equal(moved, buffer), name
    assert set(stacked.buffers) == set(dict(networks[0].named_buffers())), "no kept rows among the statistics"


def test_a_network_with_another_kind_of_batchnorm_is_refused():
    network = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Flatten(), nn.LazyLinear(8), nn.BatchNorm1d(8))
    with pytest.raises(ValueError, match="supported, not 4"):
        kept_rows(network)


def test_rows_that_are_not_whole_copies_of_the_head_are_refused():
    with pytest.raises(ValueError, match="10 rows"):
        kept_heads(torch.tensor([False]), 4, 10)
