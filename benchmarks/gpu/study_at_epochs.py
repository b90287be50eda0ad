"""Write a copy of a study file at a smaller epoch budget, its step schedule rescaled as the GPU
check rescales the reference recipe (`short_recipe.py`), with its state in another storage folder.

`--seconds S --log gpu_check.log` picks the largest equal budget that fits S seconds of the
study: the packed trials' median s/epoch from the check's log, trials in waves of
`max_concurrent`, and a fixed allowance per wave for start-up and evaluation.

    python benchmarks/gpu/study_at_epochs.py studies/cifar10_lt_gpu.yaml --epochs 30 --out /tmp/s.yaml
"""

from __future__ import annotations

import argparse
import math
import re
import statistics
import sys
from pathlib import Path

import yaml

if __package__ in (None, ""):  # run as a file: the package `benchmarks` is found from the repository root
    sys.path[0] = str(Path(__file__).resolve().parents[2])

from benchmarks.gpu.short_recipe import mask_window_at, schedule_at
from smcl_tune.studyfile.study import load_study

WAVE_ALLOWANCE_S = 45  # a wave's Ray start, image decoding and final test evaluation (a guess: see the log)
PACKED_ROW = re.compile(r"^packed-\d+\s+\d+\s+([0-9.]+)\s")


def packed_seconds_per_epoch(log: Path) -> float | None:
    rates = [float(m.group(1)) for line in log.read_text().splitlines() if (m := PACKED_ROW.match(line))]
    return statistics.median(rates) if rates else None


def epochs_for(seconds: float, seconds_per_epoch: float, trials: int, concurrent: int) -> int:
    waves = math.ceil(trials / concurrent)
    return max(1, int((seconds / waves - WAVE_ALLOWANCE_S) / seconds_per_epoch))


def rescaled(study: dict, epochs: int, storage: str, cpu: bool = False) -> dict:
    training = study["trial"]["training"]
    if cpu:  # a dry run of the same study here: two steps an epoch, no GPU
        training.update(device="cpu", num_threads=1, max_steps_per_epoch=2)
        study.update(resources={"cpus": 1, "gpus": 0}, max_concurrent=2)
    training.update(schedule_at(epochs))
    study["trial"]["method"].update(mask_window_at(epochs))
    study["storage"] = storage
    return study


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("study", type=Path)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--storage", default="smcl-runs")
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--seconds", type=float, help="time the study may take")
    parser.add_argument("--log", type=Path, help="gpu_check.sh's log, for the packed trials' s/epoch")
    parser.add_argument("--max-epochs", type=int, default=200)
    parser.add_argument("--cpu", action="store_true", help="a dry run on the CPU: 2 steps an epoch, no GPU")
    arguments = parser.parse_args()
    study = yaml.safe_load(arguments.study.read_text())
    epochs = arguments.epochs
    if epochs is None:
        per_epoch = packed_seconds_per_epoch(arguments.log) if arguments.log and arguments.log.exists() else None
        if per_epoch is None or arguments.seconds is None:
            print("give --epochs, or --seconds with a --log that has the packed trials' table", file=sys.stderr)
            return 2
        planned = load_study(arguments.study)
        trials, concurrent = planned.planned_trials, planned.config.max_concurrent
        epochs = min(arguments.max_epochs, epochs_for(arguments.seconds, per_epoch, trials, concurrent))
        print(f"{per_epoch:.2f} s/epoch packed, {trials} trials, {arguments.seconds:.0f} s: {epochs} epochs")
    arguments.out.write_text(yaml.safe_dump(rescaled(study, epochs, arguments.storage, arguments.cpu), sort_keys=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
