"""How long the synthetic benchmark takes to generate at its default sizes on one core.

The goal is under 5 s (10 classes, 500 training images per class, the default validation and
test pools), so that a quickstart trial spends its time training. Moved here from the fast tests:
a wall-clock figure depends on the machine's load, not on the code alone.

    .venv/bin/python benchmarks/synthetic_speed.py [--runs 3]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from smcl_tune.config import SyntheticConfig
from smcl_tune.data.sources.synthetic import synthetic_source, synthetic_split

GOAL_SECONDS = 5.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    arguments = parser.parse_args()
    torch.set_num_threads(1)
    times = []
    for run in range(arguments.runs):
        synthetic_split.cache_clear()  # generate again, not from the cache
        started = time.perf_counter()
        source = synthetic_source(10, SyntheticConfig(), pool_per_class=500, seed=12345 + run)
        times.append(time.perf_counter() - started)
    images = len(source.train.labels) + len(source.val.labels) + len(source.test.labels)
    print(f"synthetic source, 10 classes, {images} images, one thread, {arguments.runs} runs")
    print(f"median {statistics.median(times):.2f} s, fastest {min(times):.2f} s (goal: under {GOAL_SECONDS:.0f} s)")


if __name__ == "__main__":
    main()
