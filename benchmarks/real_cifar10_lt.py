"""Real CIFAR-10-LT on the CPU: does SMCL help on real images?

The JPEG copy of CIFAR-10 (../shared/data/cifar10-jpeg, read from its zip archives), LDAM-DRW's
long-tailed subset at imbalance factor 100, no validation hold-out (the last epoch's test metrics,
as published results are reported), the same data, model, schedule and seeds for every method.
Methods: CE, Balanced Softmax, SupCon, SMCL (the paper's reading: erase the salient box), SMCL
with the real minor images in the pass, SMCL with Balanced Softmax. Prints test top-1 and many /
medium / few-shot accuracy as mean ± std over seeds, the background head share (bg→many: the share
of test images with their salient box erased that the model puts in a many-shot class), and the
masks' statistics over the masking epochs (mean masked area; the fraction of masks that are empty
or cover over 90% of the image). Every run's result goes to --output as a JSON line; a rerun with
the same --output runs only what is missing. Each SMCL run's mask gallery (its first masking
epoch) goes to OUTPUT_galleries/. Follow-ups run only when named in --methods (see follow_ups).

Sized for this 2-core machine: the defaults (n_max 1000, small CNN, 30 epochs, 3 seeds, 6
methods) take about 2 hours with one worker beside another job.

    .venv/bin/python benchmarks/real_cifar10_lt.py [--n-max 1000] [--epochs 30] [--model small_cnn] [--workers 1]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a file: the package `benchmarks` is found from the repository root
    sys.path[0] = str(Path(__file__).resolve().parents[1])

from benchmarks.common import mean_spread_cell, run_jobs, with_recorded_saliency

DATA = Path(os.environ.get("SMCL_CIFAR10_JPEG", Path(__file__).resolve().parents[2] / "shared/data/cifar10-jpeg"))


def methods(epochs: int) -> dict[str, dict]:
    return {
        "ce": {"name": "ce"},
        "balanced softmax": {"name": "ce", "classifier_loss": "balanced_softmax"},
        "supcon": {"name": "supcon"},
        "smcl": {"name": "smcl"},
        "smcl minor_images": {"name": "smcl", "minor_images": True},
        "smcl + BS": {"name": "smcl", "classifier_loss": "balanced_softmax"},
    }


def follow_ups(epochs: int) -> dict[str, dict]:
    """Run only when named in --methods: DRW, and the first reconstruction (paste, threshold masks)
    with the remedies its mask measurements pointed to (docs/RESULTS.md, "Where the masks land")."""
    drw_start = int(0.8 * epochs)
    paste = {"name": "smcl", "compose": "paste", "mask_mode": "threshold"}
    return {
        "ce + DRW": {"name": "ce", "classifier_loss": "drw", "drw_start_epoch": drw_start},
        "smcl + DRW": {"name": "smcl", "classifier_loss": "drw", "drw_start_epoch": drw_start},
        "smcl paste": paste,
        "smcl paste gradient": {**paste, "saliency": "gradient"},
        "smcl paste threshold 0.3": {**paste, "saliency_threshold": 0.3},
        # does the saliency matter (issue 39): the paper's reading with Grad-CAM, and with a random box
        "smcl cam": {"name": "smcl", "saliency": "cam"},
        "smcl random": {"name": "smcl", "saliency": "random"},
    }


def trial(method: dict, seed: int, epochs: int, n_max: int, model: str) -> dict:
    """The protocol's schedule scaled to `epochs`: warm-up for 5/200 of them, lr / 100 at 80% and
    / 10^4 at 90% (Cao et al., 200 epochs: warm-up 5, steps at 160 and 180)."""
    return {
        "data": {
            "source": "image_folder",
            "root": str(DATA),
            "num_classes": 10,
            "imbalance_factor": 100,
            "n_max": n_max,
            "val_per_class": 0,
            "subset_protocol": "ldam",
        },
        "model": {"architecture": model},
        "method": {**method, "mask_start_epoch": max(1, epochs // 10), "mask_end_epoch": int(0.9 * epochs)}
        if method["name"] != "ce"
        else method,
        "training": {
            "epochs": epochs,
            "batch_size": 128,
            "lr": 0.1,
            "warmup_epochs": max(1.0, epochs * 5 / 200),
            "milestones": [int(0.8 * epochs), int(0.9 * epochs)],
            "milestone_factors": [0.01, 0.0001],
            "seed": seed,
            "device": "cpu",
            "num_threads": 1,
        },
    }


def run_one(job: tuple) -> dict:
    from smcl_tune.config import trial_config_from_dict
    from smcl_tune.results import GALLERY_FILE
    from smcl_tune.trial.run import run_trial

    label, method, seed, epochs, n_max, model, galleries = job
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="smcl-benchmark-") as folder:
        config = trial_config_from_dict(trial(with_recorded_saliency(method), seed, epochs, n_max, model))
        result = run_trial(config, checkpoint_dir=Path(folder))
        gallery = Path(folder, GALLERY_FILE)  # the trial's own picture of its first masking epoch
        if gallery.is_file():
            name = f"{label.replace(' ', '').replace('+', '_')}_seed{seed}.png"
            Path(galleries, name).write_bytes(gallery.read_bytes())
    masking = [epoch for epoch in result.history if epoch.get("masked_step_fraction", 0) > 0]

    def mean_over_masking(key: str) -> float | None:
        values = [epoch[key] for epoch in masking if epoch.get(key) == epoch.get(key)]  # NaN: no mask that epoch
        return sum(values) / len(values) if values else None

    return {
        "variant": label,
        "seed": seed,
        "status": result.status,
        "reason": result.reason,
        "test": result.test,
        "train_counts": result.train_counts,
        "masked_area": mean_over_masking("masked_area"),
        "masked_empty_fraction": mean_over_masking("masked_empty_fraction"),
        "masked_full_fraction": mean_over_masking("masked_full_fraction"),
        "seconds": time.perf_counter() - started,
    }


def _percent(value: float | None) -> str:
    return f"{100 * value:.1f}%" if value is not None else "-"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--n-max", type=int, default=1000, help="training images of the largest class")
    parser.add_argument("--model", default="small_cnn", choices=("small_cnn", "resnet32"))
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument(
        "--methods", nargs="*", default=None, help=f"methods by label; also {', '.join(map(repr, follow_ups(30)))}"
    )
    parser.add_argument("--output", default="real_cifar10_lt.jsonl")
    parser.add_argument("--table-only", action="store_true", help="print the runs already in --output; run none")
    arguments = parser.parse_args()
    if not (DATA / "train.zip").is_file():
        parser.error(f"{DATA / 'train.zip'}: not found; set SMCL_CIFAR10_JPEG to the CIFAR-10 JPEG folder")
    default_methods = methods(arguments.epochs)
    table = default_methods | follow_ups(arguments.epochs)
    labels = arguments.methods or list(default_methods)
    if unknown := [label for label in labels if label not in table]:
        parser.error(f"--methods: unknown {', '.join(map(repr, unknown))}; known: {', '.join(map(repr, table))}")
    galleries = Path(arguments.output).with_suffix("").as_posix() + "_galleries"
    Path(galleries).mkdir(parents=True, exist_ok=True)
    jobs = [
        (label, table[label], seed, arguments.epochs, arguments.n_max, arguments.model, galleries)
        for seed in range(arguments.seeds)
        for label in labels
    ]
    started = time.perf_counter()
    results = run_jobs(run_one, jobs, arguments.workers, arguments.output, not arguments.table_only)
    counts = next((r["train_counts"] for r in results if r.get("train_counts")), None)
    print(
        f"real CIFAR-10-LT (JPEG copy), IF 100, LDAM subset with n_max {arguments.n_max} "
        f"({sum(counts) if counts else '?'} training images), {arguments.model}, {arguments.epochs} epochs, "
        f"batch 128, lr 0.1 step schedule, CPU 1 thread per run, seeds 0..{arguments.seeds - 1}; "
        f"last-epoch test accuracy %, mean ± std over seeds; {time.perf_counter() - started:.0f} s"
    )
    many = sum(count > 100 for count in counts) if counts else None  # many-shot: over 100 training images
    uniform = f"uniform guessing: {100 * many / len(counts):.1f}%, {many} of {len(counts)} classes" if many else "?"
    print(f"bg→many: the share of test images with their salient box erased predicted as a many-shot class ({uniform})")
    header = f"{'method':<18}{'top-1':>14}{'many':>14}{'medium':>14}{'few':>14}{'bg→many':>14}"
    print(header + f"{'mask area':>11}{'empty':>8}{'>90%':>8}{'s/run':>7}{'seeds':>7}")
    for label in labels:
        runs = [r for r in results if r["variant"] == label]
        done = [r for r in runs if r["status"] == "completed"]
        if not done:
            print(f"{label:<18}{'failed' if runs else 'not run yet':>14}")
            continue
        keys = ("top1", "many", "medium", "few", "background_head_share")
        cells = [
            mean_spread_cell([r["test"][key] for r in done]) if all(key in r["test"] for r in done) else "-"
            for key in keys
        ]
        masks = []
        for key in ("masked_area", "masked_empty_fraction", "masked_full_fraction"):
            values = [r[key] for r in done if r[key] is not None]
            masks.append(_percent(sum(values) / len(values)) if values else "-")
        seconds = sum(r["seconds"] for r in done) / len(done)
        print(
            f"{label:<18}"
            + "".join(f"{cell:>14}" for cell in cells)
            + f"{masks[0]:>11}{masks[1]:>8}{masks[2]:>8}{seconds:>7.0f}{len(done):>7}"
        )


if __name__ == "__main__":
    main()
