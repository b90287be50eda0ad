"""A CPU training step in NCHW against channels_last (every trial's layout, data/batches.MEMORY_FORMAT):
the backbones' forward and backward, and a 2x2 max-pool alone, at one thread (as each trial of a CPU
study runs). channels_last is another kernel, so its float rounding differs from NCHW's; on the
tie-heavy synthetic test images it breaks max-pool ties differently by batch shape and machine, so
the fused lockstep tests compare in NCHW (tests/trial/conftest.py, docs/RESULTS.md).

    .venv/bin/python benchmarks/memory_format.py [--out docs/results/memory_format_cpu.jsonl]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils import benchmark

from smcl_tune.models import build_backbone

CASES = (("small_cnn", 16, 64), ("small_cnn", 24, 128), ("small_cnn", 32, 128), ("resnet32", 32, 128))
POOL_SHAPES = ((128, 64, 24, 24), (128, 64, 12, 12))
FORMATS = {"NCHW": torch.contiguous_format, "channels_last": torch.channels_last}


def step_ms(architecture: str, size: int, batch: int, layout: torch.memory_format) -> float:
    torch.manual_seed(0)
    network = build_backbone(architecture).to(memory_format=layout)
    images = torch.randn(batch, 3, size, size).contiguous(memory_format=layout)

    def step() -> None:
        network.zero_grad(set_to_none=True)
        network(images).sum().backward()

    return benchmark.Timer("step()", globals={"step": step}).blocked_autorange(min_run_time=2).median * 1e3


def pool_ms(shape: tuple[int, ...], layout: torch.memory_format, backward: bool) -> float:
    inputs = torch.randn(*shape).contiguous(memory_format=layout).requires_grad_(backward)
    gradient = torch.randn(shape[0], shape[1], shape[2] // 2, shape[3] // 2).contiguous(memory_format=layout)

    def pool() -> None:
        out = F.max_pool2d(inputs, 2)
        if backward:
            out.backward(gradient)

    return benchmark.Timer("pool()", globals={"pool": pool}).blocked_autorange(min_run_time=1).median * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="append each row as a JSON line to this file")
    arguments = parser.parse_args()
    torch.set_num_threads(1)
    rows = []
    for architecture, size, batch in CASES:
        times = {name: step_ms(architecture, size, batch, layout) for name, layout in FORMATS.items()}
        rows.append({"what": f"{architecture} step", "shape": f"{size}px, batch {batch}", **times})
    for shape in POOL_SHAPES:
        for backward in (False, True):
            times = {name: pool_ms(shape, layout, backward) for name, layout in FORMATS.items()}
            what = "max-pool 2x2" + (" + backward" if backward else "")
            rows.append({"what": what, "shape": "x".join(map(str, shape)), **times})
    print("one thread, CPU; median ms of torch.utils.benchmark's blocked_autorange")
    print(f"{'what':<26}{'shape':<18}{'NCHW ms':>10}{'channels_last ms':>18}{'speed-up':>10}")
    for row in rows:
        speed_up = row["NCHW"] / row["channels_last"]
        print(f"{row['what']:<26}{row['shape']:<18}{row['NCHW']:>10.1f}{row['channels_last']:>18.1f}{speed_up:>9.2f}x")
        if arguments.out:
            with arguments.out.open("a") as out:
                out.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
