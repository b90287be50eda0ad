"""What autograd keeps for the backward of one training pass: a fused member's share against its
unfused trial's, ResNet-32 on 32x32 images, on the CPU.

The bytes of every distinct storage the pass saves for its backward (saved_tensors_hooks), for one
vmapped pass of N members (the pass a fused group runs on CUDA) divided by N, against one member's
own pass (its trial's). In float32, and under CUDA's bf16 autocast emulated as in
tests/trial/test_folded_norm.py (every convolution cast to bf16). Activations, not weights: what
grows with the batch, and what the goal of a member within 1.2x of its trial's memory is about.

    .venv/bin/python benchmarks/fused_saved_memory.py [--members 4] [--batch 128]
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from pathlib import Path

import pytest
import torch

if __package__ in (None, ""):  # run as a file: the packages are found from the repository root
    sys.path[0] = str(Path(__file__).resolve().parents[1])

from smcl_tune.models import build_network
from smcl_tune.trial.fused.stacked_network import MemberView, StackedNetwork
from tests.trial.test_folded_norm import _cuda_like_autocast, saved_bytes


def saved_mib(run) -> dict[str, float]:
    """MiB of the distinct storages `run()` saves for its backward, by dtype."""
    return {dtype: size / 2**20 for dtype, size in saved_bytes(run).items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=4)
    parser.add_argument("--batch", type=int, default=128)
    arguments = parser.parse_args()
    torch.set_num_threads(1)
    count = arguments.members
    networks = [build_network("resnet32", 10).to(memory_format=torch.channels_last) for _ in range(count)]
    images = torch.stack(
        [torch.randn(arguments.batch, 3, 32, 32).contiguous(memory_format=torch.channels_last) for _ in range(count)]
    )
    stacked = StackedNetwork(networks, "vmap")
    print(f"ResNet-32, batch {arguments.batch}, {count} members vmapped; MiB autograd keeps for the backward")
    print(f"{'arithmetic':<28}{'member':>10}{'trial':>10}{'member/trial':>14}  member's by dtype")
    for label, emulated in (("float32", False), ("bf16 autocast (CUDA's)", True)):
        with pytest.MonkeyPatch.context() as patch:
            if emulated:
                _cuda_like_autocast(patch)
            autocast = torch.autocast("cpu", dtype=torch.bfloat16) if emulated else contextlib.nullcontext()
            with autocast:
                fused = saved_mib(lambda: stacked.forward(list(range(count)), images, False))
                trial = saved_mib(lambda: MemberView(stacked, 0)(images[0]))
        member, alone = sum(fused.values()) / count, sum(trial.values())
        kinds = ", ".join(f"{dtype} {size / count:.1f}" for dtype, size in sorted(fused.items()))
        print(f"{label:<28}{member:>10.1f}{alone:>10.1f}{member / alone:>14.2f}  {kinds}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
