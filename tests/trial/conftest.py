"""Fixtures of the trial tests."""

import pytest
import torch

from smcl_tune.data import batches


@pytest.fixture
def nchw_layout(monkeypatch):
    """Trials built in this test keep NCHW, not the trials' channels_last (data/batches.MEMORY_FORMAT).

    For the tests that compare two ways of running one trial's arithmetic (a fused member against its
    trial, a replayed graph against today's eager step) at float32 rounding. The tiny trials' images
    are flat colours and their crops' padding is flat, so many max-pool windows hold values equal
    but for rounding. In channels_last oneDNN rounds a position otherwise by the batch's shape and
    by the machine's vector width, and such a tie then breaks another way in one run than in the
    other, sending the window's gradient elsewhere. The every-method lockstep cases
    (test_fused_group.py, test_group_graphs.py) bound each gradient's, update's and momentum's error,
    beyond 0.1% of the whole model's norm, by a share of its own norm; the worst share at one thread
    (benchmarks/lockstep_error.py): at 7b6a2f1, 2.1e-2 in channels_last and 1.2e-3 in NCHW; on an
    AVX-512 machine (2026-12-06), 0.25 in channels_last, 2.2e-3 in NCHW, and 3.1e-3 in channels_last
    with grainy images and no crops. The layout is the same on both sides of
    each comparison, so NCHW tests the same thing; test_fused_group.py keeps one case in
    channels_last, on grainy images without crops."""
    monkeypatch.setattr(batches, "MEMORY_FORMAT", torch.contiguous_format)
