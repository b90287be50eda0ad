"""Write a copy of a study file at a smaller epoch budget, its step schedule rescaled as the GPU
check rescales the reference recipe (`short_recipe.py`), with its state in another storage folder.

`--seconds S --log gpu_check.log` picks the largest equal budget that fits S seconds of the
study: the packed trials' median s/epoch from the check's log, trials in waves of
`max_concurrent`, and a fixed allowance per wave for start-up and evaluation. A fused study
(`resources.fuse` above 1) takes `--fused-rows fused_speed.jsonl` instead: a member's s/step at
the group size (benchmarks/fused_speed.py, SMCL, the slowest method) times the steps of an epoch of
`--train-images`, in waves of `max_concurrent` groups. With `--graphs` (the CUDA tests of the graphed
steps passed), the study's steps are replayed as CUDA graphs (`training.cuda_graph`) when the
sweep's graphed rows of members that mask half the time beat its eager ones. A fused study whose
`--fused-rows` hold no fused GPU row (fusion failed on the GPU: the sweep measured only unfused
trials) runs unfused instead, as `--unfused` does, its budget taken from `--log`.

    python benchmarks/gpu/study_at_epochs.py studies/cifar10_lt_gpu.yaml --epochs 30 --out /tmp/s.yaml
"""

from __future__ import annotations

import argparse
import json
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

# --unfused: 4 trials at a quarter of the GPU each, as the first GPU run packed them (16 cores)
PACKED_TRIALS, PACKED = 4, {"cpus": 3, "gpus": 0.25, "fuse": 1}
# A fused study's share of its seconds that its steps may take: the sweep's bare steps leave out
# each epoch's checkpoints and reports of every member through Ray Tune, which a member's next
# epoch waits for, and its members end together, so a study cut before its end ranks no trial.
FUSED_STEP_SHARE = 0.8
WAVE_ALLOWANCE_S = 45  # a wave's Ray start, image decoding and final test evaluation (a guess: see the log)
PACKED_ROW = re.compile(r"^packed-\d+\s+\d+\s+([0-9.]+)\s")


def packed_seconds_per_epoch(log: Path) -> float | None:
    rates = [float(m.group(1)) for line in log.read_text().splitlines() if (m := PACKED_ROW.match(line))]
    return statistics.median(rates) if rates else None


CIFAR10_LT_TRAINING_IMAGES = 12406  # CIFAR-10-LT, IF 100, n_max 5000, no validation split


def _rows(rows_file: Path) -> list[dict]:
    return [json.loads(line) for line in rows_file.read_text().splitlines() if line.strip()]


def _sweep_rows(rows_file: Path, method: str, strategy: str) -> list[dict]:
    """The sweep's GPU rows of `method` by `strategy`; a graphed row only if its steps were replayed."""
    return [
        row
        for row in _rows(rows_file)
        if row["method"] == method
        and row.get("strategy") == strategy
        and row["device"].startswith("cuda")
        and (strategy != "graph" or (row.get("graph_replays") and not row.get("graph_failed")))
    ]


def has_fused_gpu_rows(rows_file: Path) -> bool:
    """Whether the sweep measured any fused group on the GPU (a row of one member or more, eager or
    graphed), whatever its method: if not, fusion failed there."""
    if not rows_file.exists():
        return False
    return any(
        row["device"].startswith("cuda") and row.get("strategy") in ("vmap", "graph") for row in _rows(rows_file)
    )


def fused_seconds_per_epoch(
    rows_file: Path, fuse: int, train_images: int, batch: int, strategy: str = "vmap"
) -> float | None:
    """A member's s/epoch in a group of `fuse`: its s/step at the smallest measured group of at
    least `fuse` members (else the largest, scaled up to `fuse` members in proportion: a step of
    more members is not assumed cheaper), on the GPU, by `strategy`, times the epoch's steps.
    The rows of SMCL members that mask half the time (`smcl_half`, a study's members' case: their
    decisions differ) if the sweep has them, else, eagerly, those of SMCL members that all mask.
    A graphed step's cost depends on that difference (it runs the passes of both kinds), so a
    graphed estimate takes `smcl_half` rows only."""
    methods = ("smcl_half",) if strategy == "graph" else ("smcl_half", "smcl")
    for method in methods:
        rows = _sweep_rows(rows_file, method, strategy)
        if rows:
            at_least = [row for row in rows if row["members"] >= fuse]
            row = min(at_least, key=lambda r: r["members"]) if at_least else max(rows, key=lambda r: r["members"])
            scale = max(1.0, fuse / row["members"])
            return row["member_seconds_per_step"] * scale * math.ceil(train_images / batch)
    return None


def epochs_for(seconds: float, seconds_per_epoch: float, trials: int, concurrent: int) -> int:
    waves = math.ceil(trials / concurrent)
    return max(1, int((seconds / waves - WAVE_ALLOWANCE_S) / seconds_per_epoch))


def rescaled(study: dict, epochs: int, storage: str, cpu: bool = False) -> dict:
    training = study["trial"]["training"]
    if cpu:  # a dry run of the same study here: two steps an epoch, no GPU
        training.update(device="cpu", num_threads=1, max_steps_per_epoch=2)
        fuse = min(3, study.get("resources", {}).get("fuse", 1))  # fused still, in small groups
        study.update(resources={"cpus": 1, "gpus": 0, "fuse": fuse}, max_concurrent=2)
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
    parser.add_argument("--fused-rows", type=Path, help="fused_speed.py's JSON lines, for a fused study")
    parser.add_argument("--train-images", type=int, default=CIFAR10_LT_TRAINING_IMAGES)
    parser.add_argument("--max-epochs", type=int, default=200)
    parser.add_argument("--cpu", action="store_true", help="a dry run on the CPU: 2 steps an epoch, no GPU")
    parser.add_argument(
        "--graphs", action="store_true", help="the graphed steps passed their CUDA tests: use them if faster"
    )
    parser.add_argument(
        "--unfused",
        action="store_true",
        help="the trials packed 4 to a GPU, unfused: for a GPU on which the fusion sweep measured no group",
    )
    arguments = parser.parse_args()
    study = yaml.safe_load(arguments.study.read_text())
    fused = study.get("resources", {}).get("fuse", 1) > 1
    if fused and not arguments.cpu and arguments.fused_rows and not has_fused_gpu_rows(arguments.fused_rows):
        print(f"no fused GPU row in {arguments.fused_rows}: the trials unfused, packed {PACKED_TRIALS} to the GPU")
        arguments.unfused = True
    if arguments.unfused:
        study.update(resources=PACKED, max_concurrent=PACKED_TRIALS)
        study["trial"]["training"]["num_threads"] = PACKED["cpus"]
    epochs = arguments.epochs
    if epochs is None:
        planned = load_study(arguments.study)
        fuse = 1 if arguments.unfused else planned.config.resources.fuse
        concurrent = PACKED_TRIALS if arguments.unfused else planned.config.max_concurrent * fuse
        trials = planned.planned_trials
        if fuse > 1:
            rows = arguments.fused_rows
            batch = planned.base_trial.training.batch_size
            per_epoch = graphed = None
            if rows and rows.exists():
                per_epoch = fused_seconds_per_epoch(rows, fuse, arguments.train_images, batch)
                if arguments.graphs:
                    graphed = fused_seconds_per_epoch(rows, fuse, arguments.train_images, batch, "graph")
            how, source = f"a member fused at {fuse}", "--fused-rows with the fusion sweep's GPU rows"
            if graphed is not None and (per_epoch is None or graphed < per_epoch):
                eager = "no eager row" if per_epoch is None else f"eager {per_epoch:.2f} s/epoch"
                print(f"graphed steps: {graphed:.2f} s/epoch against {eager}")
                per_epoch, how = graphed, f"{how}, its steps graphed"
                study["trial"]["training"]["cuda_graph"] = True
        else:
            per_epoch = packed_seconds_per_epoch(arguments.log) if arguments.log and arguments.log.exists() else None
            how, source = "packed", "a --log that has the packed trials' table"
        if per_epoch is None or arguments.seconds is None:
            print(f"give --epochs, or --seconds with {source}", file=sys.stderr)
            return 2
        share = FUSED_STEP_SHARE if fuse > 1 else 1.0
        epochs = min(arguments.max_epochs, epochs_for(arguments.seconds * share, per_epoch, trials, concurrent))
        of_it = f" ({share:.0%} of it for steps)" if share < 1 else ""
        print(f"{per_epoch:.2f} s/epoch {how}, {trials} trials, {arguments.seconds:.0f} s{of_it}: {epochs} epochs")
    arguments.out.write_text(yaml.safe_dump(rescaled(study, epochs, arguments.storage, arguments.cpu), sort_keys=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
