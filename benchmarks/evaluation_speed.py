"""Speed of a trial's evaluation on this machine, by the number of images per forward pass.

Times the product's `smcl_tune.train.evaluate` (the test accuracy) and `background_head_share`
(the same images with their salient box erased first: spectral-residual saliency, then the
network) over random uint8 32x32 images, for small_cnn and ResNet-32, at several chunk sizes;
`*` marks the device's `evaluation_batch_size`. Seconds per 10,000 images, the best of
`--repeats` passes, and minor page faults per image, at `--threads` torch threads (a CPU trial of
a study uses 1).

    .venv/bin/python benchmarks/evaluation_speed.py [--images 2048] [--threads 1] [--device cpu]
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

if __package__ in (None, ""):  # run as a file: the package `benchmarks` is found from the repository root
    sys.path[0] = str(Path(__file__).resolve().parents[1])

import torch

from benchmarks.common import synchronize
from smcl_tune.data.longtail import shot_groups
from smcl_tune.data.splits import DeviceSplit, TrialData
from smcl_tune.metrics import head_share
from smcl_tune.models import build_network
from smcl_tune.trial.device import evaluation_batch_size
from smcl_tune.trial.evaluation import background_edit, evaluate

NUM_CLASSES = 10
CHUNKS = (16, 32, 64, 128, 512)


def test_images(count: int, device: torch.device) -> TrialData:
    """`count` random test images in 10 classes of equal size; no training or validation images."""
    labels = torch.arange(count) % NUM_CLASSES
    images = torch.randint(0, 256, (count, 3, 32, 32), dtype=torch.uint8, generator=torch.Generator())
    none = DeviceSplit(images[:0], labels[:0])
    counts = [100] * NUM_CLASSES
    names = [f"class {index}" for index in range(NUM_CLASSES)]
    mean, std = torch.full((3,), 0.5), torch.full((3,), 0.25)
    return TrialData(none, none, DeviceSplit(images, labels), counts, shot_groups(counts), names, mean, std).to(device)


def background_pass(network: torch.nn.Module, data: TrialData, chunk: int, erase) -> float:
    return head_share(evaluate(network, data.test, data, chunk, erase), data.groups["many"])


def timed(run: Callable[[], object], arguments: argparse.Namespace, device: torch.device) -> tuple[float, float]:
    """Seconds per 10,000 images (the best pass) and the process's minor page faults per image
    (the fewest in a pass: a chunk too large for the allocator's cache is mapped afresh each time)."""
    best, faults = float("inf"), float("inf")
    for _ in range(arguments.repeats):
        synchronize(device)
        faults_before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        started = time.perf_counter()
        run()
        synchronize(device)
        best = min(best, time.perf_counter() - started)
        faults = min(faults, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults_before)
    return best * 10_000 / arguments.images, faults / arguments.images


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=2048)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    arguments = parser.parse_args()
    device = torch.device(arguments.device)
    torch.set_num_threads(arguments.threads)
    data = test_images(arguments.images, device)
    erase = background_edit(data)
    default = evaluation_batch_size(device)
    print(
        f"device {device}, {torch.get_num_threads()} threads, {arguments.images} random 32x32 test images, "
        f"best of {arguments.repeats}; seconds per 10,000 images (default chunk on this device: {default})"
    )
    print(f"{'network':<11}{'chunk':>8}{'test s':>9}{'faults':>8}{'bg share s':>12}{'faults':>8}")
    for architecture in ("small_cnn", "resnet32"):
        network = build_network(architecture, NUM_CLASSES).to(device)
        evaluate(network, data.test, data, batch_size=64)  # warm-up
        for chunk in CHUNKS:
            test, test_faults = timed(partial(evaluate, network, data.test, data, chunk), arguments, device)
            background_only = partial(background_pass, network, data, chunk, erase)
            background, background_faults = timed(background_only, arguments, device)
            label = f"{chunk}{'*' if chunk == default else ''}"
            print(
                f"{architecture:<11}{label:>8}{test:>9.1f}{test_faults:>8.0f}{background:>12.1f}{background_faults:>8.0f}"
            )
    print(
        "(* the device's default chunk; bg share: background_head_share's pass, saliency included; "
        "faults: minor page faults per image, the fewest of the passes)"
    )


if __name__ == "__main__":
    main()
