"""Kept-rows BatchNorm's cost in a stacked pass: the memory autograd holds for the backward, and
the seconds of the forward and the backward, of one vmapped ResNet-32 pass of N members over n
rows, with torch's BatchNorm and with kept rows (trial/fused/kept_rows_norm.py; half the members
keeping x_b's n/2 rows, as in a step where half the members of a kind mask).

"saved MiB" sums the storages of the tensors saved for the backward (each storage once): the
activations a step holds at its peak, whatever the allocator does. Seconds are the median of
--repeats passes, after one warm-up pass of each.

    .venv/bin/python benchmarks/kept_rows_memory.py [--members 4] [--rows 256] [--repeats 3]
        [--output docs/results/kept_rows_memory_cpu.jsonl]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a file: the package `benchmarks` is found from the repository root
    sys.path[0] = str(Path(__file__).resolve().parents[1])


def one_pass(stacked, images, kept) -> tuple[float, float, float]:
    """Saved MiB, forward seconds and backward seconds of one pass with its embeddings."""
    import torch

    storages: dict[int, int] = {}

    def pack(tensor):
        storage = tensor.untyped_storage()
        storages[storage.data_ptr()] = storage.nbytes()
        return tensor

    members = list(range(images.shape[0]))
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        started = time.perf_counter()
        logits, embeddings = stacked.forward(members, images, True, kept=kept)
        forward = time.perf_counter() - started
    started = time.perf_counter()
    (logits.sum() + embeddings.sum()).backward()
    backward = time.perf_counter() - started
    for param in stacked.params.values():
        param.grad = None
    return sum(storages.values()) / 2**20, forward, backward


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=4)
    parser.add_argument("--rows", type=int, default=256, help="rows of the pass: 2B for an SMCL pass at batch B")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--output", type=Path)
    arguments = parser.parse_args()

    import torch

    from smcl_tune.models import build_network
    from smcl_tune.trial.fused.kept_rows_norm import kept_heads
    from smcl_tune.trial.fused.stacked_network import StackedNetwork

    torch.manual_seed(0)
    members, rows = arguments.members, arguments.rows
    networks = [build_network("resnet32", 100, 128) for _ in range(members)]
    stacked = StackedNetwork(networks, "vmap")
    images = torch.randn(members, rows, 3, 32, 32)
    halves = torch.arange(members) % 2 == 0  # every other member keeps all rows, the others x_b's
    cases = {"torch BatchNorm": None, "kept rows": kept_heads(halves, rows // 2, rows)}
    results = {name: [] for name in cases}
    for kept in cases.values():
        one_pass(stacked, images, kept)  # warm-up
    for _ in range(arguments.repeats):
        for name, kept in cases.items():
            results[name].append(one_pass(stacked, images, kept))
    print(
        f"one vmapped ResNet-32 pass, N = {members} members x {rows} rows of 32x32, {torch.get_num_threads()} "
        f"threads, median of {arguments.repeats}"
    )
    print(f"{'BatchNorm':<18}{'saved MiB':>11}{'forward s':>11}{'backward s':>12}")
    for name, passes in results.items():
        saved = passes[0][0]
        forward = statistics.median(p[1] for p in passes)
        backward = statistics.median(p[2] for p in passes)
        print(f"{name:<18}{saved:>11.1f}{forward:>11.2f}{backward:>12.2f}")
        if arguments.output:
            row = {"case": name, "members": members, "rows": rows, "saved_mib": saved, "forward_s": forward}
            row |= {"backward_s": backward, "threads": torch.get_num_threads()}
            with arguments.output.open("a") as file:
                file.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
