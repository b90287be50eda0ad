"""How far a fused member's steps are from its trial's, by layout and test images: the every-method
lockstep cases of the tests (tests/trial/test_fused_group.py, 20 steps; tests/trial/test_group_graphs.py,
30 graphed steps), each gradient, update and momentum compared with its trial's at every step from
equal states, as the tests compare them; the bound is recorded instead of asserted.

The quantity is the one the tests bound by GRADIENT_RTOL: a tensor's error beyond SUMS_ATOL of the
norm of all the model's, over its own norm. One thread, as each worker of the suite runs.

    .venv/bin/python -m benchmarks.lockstep_error [--out docs/results/lockstep_error.jsonl]
"""

from __future__ import annotations

import argparse
import json
import platform
from pathlib import Path

import torch

import tests.trial.test_fused_group as fused_group
import tests.trial.test_group_graphs as group_graphs
from smcl_tune.data import batches
from tests.conftest import _tiny_config

LAYOUTS = {"channels_last": torch.channels_last, "NCHW": torch.contiguous_format}
IMAGES = {"flat colours, crops": (0.0, True), "grain 8, crops": (8.0, True), "grain 8, no crops": (8.0, False)}


def _recording_shares(shares: list[float]):
    """In place of the tests' bound: each tensor's share, recorded."""

    def record(pairs) -> None:
        for error, size, whole, _ in fused_group.sum_errors(pairs):
            shares.append(max(0.0, error - fused_group.SUMS_ATOL * whole) / (size or 1.0))

    return record


def _configs(noise: float, augment: bool, graphed: bool) -> list[dict]:
    # the tests' steps: 20 for the fused case, 30 for the graphed one
    configs = fused_group._every_method(_tiny_config, epochs=30 if graphed else 20)
    for config in configs:
        config["data"]["synthetic"]["noise"] = noise
        config["training"]["augment"] = augment
    return configs


def measure(layout: str, images: str, case: str) -> dict:
    shares: list[float] = []
    fused_group._close_sums = _recording_shares(shares)
    fused_group._close = lambda *_: None  # the per-step losses and BatchNorm statistics: not measured here
    batches.MEMORY_FORMAT = LAYOUTS[layout]
    noise, augment = IMAGES[images]
    configs = _configs(noise, augment, graphed=case == "graphed")
    if case == "graphed":
        group_graphs._graphed_in_lockstep(configs, names=list(fused_group.METHODS))
    else:
        fused_group._in_lockstep(configs, names=list(fused_group.METHODS))
    return {
        "layout": layout,
        "images": images,
        "case": case,
        "comparisons": len(shares),
        "above_5e-3": sum(share > fused_group.GRADIENT_RTOL for share in shares),
        "worst": max(shares),
        "machine": platform.machine(),
        "avx512": _has_avx512(),
    }


def _has_avx512() -> bool | None:
    """Whether the CPU has AVX-512 (oneDNN picks its kernels' vector width by it), where /proc says."""
    cpuinfo = Path("/proc/cpuinfo")
    return " avx512f" in cpuinfo.read_text() if cpuinfo.is_file() else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="append each row as a JSON line to this file")
    arguments = parser.parse_args()
    torch.set_num_threads(1)
    print(f"{'layout':<15}{'images':<22}{'case':<9}{'comparisons':>12}{'>5e-3':>7}{'worst':>10}")
    for layout in LAYOUTS:
        for images in IMAGES:
            for case in ("fused", "graphed"):
                row = measure(layout, images, case)
                print(
                    f"{layout:<15}{images:<22}{case:<9}{row['comparisons']:>12}"
                    f"{row['above_5e-3']:>7}{row['worst']:>10.3g}",
                    flush=True,
                )
                if arguments.out:
                    with arguments.out.open("a") as out:
                        out.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
