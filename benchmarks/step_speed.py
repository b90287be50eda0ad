"""Speed of one training step on this machine: CE vs SMCL (ResNet-32, batch 128, 32x32).

Every row times the product's own step: `smcl_tune.trial.epoch.train_one_epoch` on a trial built
from the product's pieces (benchmarks/stepped_trial.py: its autocast, channels_last, lr
schedule, samplers and device batches), over random uint8 images in CIFAR-100-LT's class counts (IF
100, 10,847 images), after warm-up steps. The table: ms per step and images/s for a CE step, a step
that forwards 2B images with CE only (the cost of the doubled batch), SMCL masking steps (erase with
box masks, the default; erase with the real minor images too, 3B images; paste with threshold masks,
the first reconstruction), their ratio to CE and the share of steps that masked; then the throughput
of the batched spectral-residual saliency. Then the device batches (whole-batch crop / flip /
normalise) in images/s, alone and within whole training steps, CE and SMCL. (The per-sample PIL
pipeline they replaced was measured once against them; docs/RESULTS.md records the figures.)

    .venv/bin/python benchmarks/step_speed.py [--steps 8] [--batch 128] [--device cpu]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a file: the package `benchmarks` is found from the repository root
    sys.path[0] = str(Path(__file__).resolve().parents[1])

import torch

from benchmarks.common import synchronize
from benchmarks.stepped_trial import SteppedTrial
from smcl_tune.config import TrialConfig, trial_config_from_dict
from smcl_tune.data.counts import class_counts
from smcl_tune.data.longtail import shot_groups
from smcl_tune.data.splits import DeviceSplit, TrialData
from smcl_tune.method.saliency import spectral_residual_saliency

NUM_CLASSES = 100
HEAD_IMAGES = 500  # CIFAR-100-LT: 500 images of the head class, imbalance factor 100
TRAINING_IMAGES = sum(class_counts(HEAD_IMAGES, NUM_CLASSES, 100))  # 10,847
WARMUP_STEPS = 2
EVERY_STEP_MASKS = {"mask_probability": 1.0, "mask_start_epoch": 0}
ROWS = {  # the table's row -> the trial's method section
    "ce (B images)": {"name": "ce"},
    "2B forward, CE only": {"name": "supcon", "loss_weight": 0.0, **EVERY_STEP_MASKS},
    "smcl masking step": {"name": "smcl", **EVERY_STEP_MASKS},
    "smcl + minor_images": {"name": "smcl", "minor_images": True, **EVERY_STEP_MASKS},
    "smcl paste threshold": {"name": "smcl", "compose": "paste", "mask_mode": "threshold", **EVERY_STEP_MASKS},
    "smcl saliency cam": {"name": "smcl", "saliency": "cam", **EVERY_STEP_MASKS},
    "smcl saliency gradient": {"name": "smcl", "saliency": "gradient", **EVERY_STEP_MASKS},
    "smcl saliency random": {"name": "smcl", "saliency": "random", **EVERY_STEP_MASKS},
}


def long_tailed_images(device: torch.device) -> TrialData:
    """Random uint8 32x32 images in CIFAR-100-LT's training class counts; no validation or test images."""
    counts = class_counts(HEAD_IMAGES, NUM_CLASSES, 100)
    labels = torch.repeat_interleave(torch.arange(NUM_CLASSES), torch.tensor(counts))
    images = torch.randint(0, 256, (len(labels), 3, 32, 32), dtype=torch.uint8, generator=torch.Generator())
    none = DeviceSplit(images[:0], labels[:0])
    names = [f"class {index}" for index in range(NUM_CLASSES)]
    mean, std = torch.full((3,), 0.5), torch.full((3,), 0.25)
    return TrialData(DeviceSplit(images, labels), none, none, counts, shot_groups(counts), names, mean, std).to(device)


def step_trial_config(method: dict, batch: int, device: torch.device) -> TrialConfig:
    """A ResNet-32 trial with the default recipe; its data section is not used (the images are given)."""
    return trial_config_from_dict(
        {
            "data": {"source": "synthetic", "num_classes": NUM_CLASSES},
            "model": {"architecture": "resnet32"},
            "method": method,
            "training": {"batch_size": batch, "device": str(device), "max_steps_per_epoch": WARMUP_STEPS},
        }
    )


def timed_steps(config: TrialConfig, data: TrialData, steps: int) -> tuple[SteppedTrial, dict[str, float]]:
    """A new trial and the metrics of an epoch of `steps` steps, run after an epoch of warm-up steps."""
    trial = SteppedTrial.build(config, data, data.mean.device)
    trial.train_epoch()  # ends with the epoch's host synchronisation: the timed epoch starts idle
    trial.config.training.max_steps_per_epoch = steps
    return trial, trial.train_epoch()


def batches_rate(trial: SteppedTrial, steps: int) -> float:
    """images/s of the trial's device batches alone, over an epoch's plan of `steps` steps."""
    trial.config.training.max_steps_per_epoch = steps
    plan = trial.plan()
    device = trial.parts.device
    for _ in trial.parts.batches.epoch(plan[:2]):  # warm caches
        pass
    synchronize(device)
    started = time.perf_counter()
    for _ in trial.parts.batches.epoch(plan):
        pass
    synchronize(device)
    return sum(len(head) for head, _ in plan) / (time.perf_counter() - started)


def saliency_rate(device: torch.device, batch: int, repeats: int = 10) -> float:
    images = torch.randn(batch, 3, 32, 32, device=device)
    spectral_residual_saliency(images)
    synchronize(device)
    started = time.perf_counter()
    for _ in range(repeats):
        spectral_residual_saliency(images)
    synchronize(device)
    return batch * repeats / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--device", default="cpu")
    arguments = parser.parse_args()
    device = torch.device(arguments.device)
    batch, steps = arguments.batch, arguments.steps
    if batch < 2:
        parser.error(f"--batch: at least 2, the smallest batch_size of a trial; got {batch}")
    full_batches = TRAINING_IMAGES // batch
    if not 1 <= steps <= full_batches:
        parser.error(f"--steps: between 1 and {full_batches}, the full batches of {batch} in {TRAINING_IMAGES} images")
    data = long_tailed_images(device)
    timed = {name: timed_steps(step_trial_config(method, batch, device), data, steps) for name, method in ROWS.items()}
    seconds = {name: metrics["epoch_seconds"] / steps for name, (_, metrics) in timed.items()}
    ce = seconds["ce (B images)"]
    print(
        f"device {device}, ResNet-32, batch {batch}, 32x32, {steps} timed steps of "
        "smcl_tune.trial.epoch.train_one_epoch, "
        f"{torch.get_num_threads()} threads"
    )
    print(f"{'step':<22}{'ms/step':>10}{'images/s':>10}{'x CE':>8}{'masked':>8}")
    for name, (_, metrics) in timed.items():
        rate, masked = metrics["images_per_second"], metrics["masked_step_fraction"]
        print(f"{name:<22}{1000 * seconds[name]:>10.1f}{rate:>10.1f}{seconds[name] / ce:>8.2f}{masked:>8.2f}")
    print("(images/s: head images x_b per second, as a trial counts them; masked: share of steps with a minor batch)")
    overhead = seconds["smcl masking step"] / seconds["2B forward, CE only"] - 1
    print(f"saliency + masking + contrastive on top of the 2B forward: {100 * overhead:+.1f}%")
    print(f"spectral-residual saliency: {saliency_rate(device, batch):.0f} maps/s")
    print(
        f"\ndevice batches, {len(data.train)} uint8 images 32x32, crop pad 4 + flip + normalise; images/s "
        f"(SMCL: head images, every step also loading a minor batch; training: the steps above)"
    )
    print(f"{'method':<7}{'batches only':>14}{'training':>10}")
    for method, row in (("ce", "ce (B images)"), ("smcl", "smcl masking step")):  # smcl: erase, the default
        trial, metrics = timed[row]
        rate = batches_rate(trial, min(5 * steps, full_batches))
        print(f"{method:<7}{rate:>14.0f}{metrics['images_per_second']:>10.1f}")


if __name__ == "__main__":
    main()
