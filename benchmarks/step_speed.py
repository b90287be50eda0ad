"""Speed of one training step on this machine: CE vs SMCL (ResNet-32, batch 128, 32x32).

Prints a table: ms per step and images/s for a CE step, a step that forwards 2B images with CE
only (the cost of the doubled batch), SMCL masking steps (erase with box masks, the default; erase
with the real minor images too, 3B images; paste with threshold masks, the first reconstruction)
and their ratio to CE; and the
throughput of the batched spectral-residual saliency. Then the device batches (uint8 tensors,
whole-batch crop / flip / normalise) in images/s, for the batches alone and for whole training
steps, CE and SMCL (every step masking). (The per-sample PIL pipeline they replaced was measured
once against them; docs/RESULTS.md records the figures.)

    .venv/bin/python benchmarks/step_speed.py [--steps 8] [--batch 128] [--device cpu]
"""

from __future__ import annotations

import argparse
import time

import torch

from smcl_tune.data.augment import normalize, random_crop_flip
from smcl_tune.data.batches import Batch, Plan, TrainingBatches
from smcl_tune.data.splits import DeviceSplit
from smcl_tune.method.saliency import spectral_residual_saliency
from smcl_tune.method.step import StepSettings, step_loss
from smcl_tune.models import build_network

NUM_CLASSES = 100


def _time_steps(
    settings: StepSettings,
    device: torch.device,
    batch: int,
    steps: int,
    warmup: int = 2,
    batches: TrainingBatches | None = None,
    plan: Plan | None = None,
) -> float:
    """Seconds per training step; batches come from `batches` over `plan` (warm-up steps first) if given."""
    torch.manual_seed(0)
    network = build_network("resnet32", NUM_CLASSES).to(device).train()
    optimizer = torch.optim.SGD(network.parameters(), lr=0.01, momentum=0.9)
    generator = torch.Generator(device=device).manual_seed(0)
    step_generator = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (4 * batch, 3, 32, 32), dtype=torch.uint8, device=device)
    labels = torch.randint(0, NUM_CLASSES, (4 * batch,), device=device)
    mean, std = torch.full((3,), 0.5, device=device), torch.full((3,), 0.25, device=device)

    def batch_of(offset: int) -> Batch:
        chosen = slice(offset, offset + batch)
        head, head_content = random_crop_flip(images[chosen], generator)
        if settings.method == "ce":
            return Batch(normalize(head, mean, std), labels[chosen], None, None, head_content)
        minor_chosen = slice(offset + batch, offset + 2 * batch)
        minor, minor_content = random_crop_flip(images[minor_chosen], generator)
        return Batch(
            normalize(head, mean, std),
            labels[chosen],
            normalize(minor, mean, std),
            labels[minor_chosen],
            head_content,
            minor_content,
        )

    supplied = iter(batches.epoch(plan)) if batches is not None else None

    def one_step() -> None:
        step = next(supplied) if supplied is not None else batch_of(0)
        output = step_loss(
            settings,
            network,
            *step[:4],
            step_generator,
            head_content=step.head_content,
            minor_content=step.minor_content,
        )
        optimizer.zero_grad(set_to_none=True)
        output.loss.backward()
        optimizer.step()

    for _ in range(warmup):
        one_step()
    _synchronize(device)
    started = time.perf_counter()
    for _ in range(steps):
        one_step()
    _synchronize(device)
    return (time.perf_counter() - started) / steps


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def _saliency_rate(device: torch.device, batch: int, repeats: int = 10) -> float:
    images = torch.randn(batch, 3, 32, 32, device=device)
    spectral_residual_saliency(images)
    _synchronize(device)
    started = time.perf_counter()
    for _ in range(repeats):
        spectral_residual_saliency(images)
    _synchronize(device)
    return batch * repeats / (time.perf_counter() - started)


DATA_IMAGES = 12_000  # about the size of CIFAR-100-LT's training subset


def _plan(method: str, steps: int, batch: int, generator: torch.Generator) -> Plan:
    """`steps` random head batches, each with a minor batch for SMCL."""

    def draw() -> torch.Tensor:
        return torch.randint(0, DATA_IMAGES, (batch,), generator=generator)

    return [(draw(), draw() if method == "smcl" else None) for _ in range(steps)]


def _data_path_rates(
    method: str, settings: StepSettings, device: torch.device, batch: int, steps: int
) -> tuple[float, float]:
    """images/s of the device batches: (batches alone, whole training steps)."""
    generator = torch.Generator().manual_seed(0)
    split = DeviceSplit(
        torch.randint(0, 256, (DATA_IMAGES, 3, 32, 32), dtype=torch.uint8, generator=generator),
        torch.randint(0, NUM_CLASSES, (DATA_IMAGES,), generator=generator),
    )
    mean, std = torch.full((3,), 0.5), torch.full((3,), 0.25)
    batches = TrainingBatches(
        split.to(device), mean.to(device), std.to(device), True, torch.Generator(device=device).manual_seed(1), device
    )

    def plan(count: int) -> Plan:
        return [
            (head.to(device), None if minor is None else minor.to(device))
            for head, minor in _plan(method, count, batch, generator)
        ]

    for _ in batches.epoch(plan(2)):  # warm caches
        pass
    data_steps = 5 * steps
    timed = plan(data_steps)
    _synchronize(device)
    started = time.perf_counter()
    for _ in batches.epoch(timed):
        pass
    _synchronize(device)
    data_rate = batch * data_steps / (time.perf_counter() - started)
    return data_rate, batch / _time_steps(settings, device, batch, steps, batches=batches, plan=plan(steps + 2))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--device", default="cpu")
    arguments = parser.parse_args()
    device = torch.device(arguments.device)
    batch = arguments.batch
    rows = [
        ("ce (B images)", StepSettings(method="ce", num_classes=NUM_CLASSES)),
        ("2B forward, CE only", StepSettings(method="supcon", num_classes=NUM_CLASSES, loss_weight=0.0)),
        ("smcl masking step", StepSettings(method="smcl", num_classes=NUM_CLASSES)),
        ("smcl + minor_images", StepSettings(method="smcl", num_classes=NUM_CLASSES, minor_images=True)),
        ("smcl paste threshold", StepSettings("smcl", NUM_CLASSES, compose="paste", mask_mode="threshold")),
    ]
    seconds = {name: _time_steps(settings, device, batch, arguments.steps) for name, settings in rows}
    ce = seconds["ce (B images)"]
    print(
        f"device {device}, ResNet-32, batch {batch}, 32x32, {arguments.steps} timed steps, "
        f"{torch.get_num_threads()} threads"
    )
    print(f"{'step':<22}{'ms/step':>10}{'images/s':>10}{'x CE':>8}")
    for name, _ in rows:
        print(f"{name:<22}{1000 * seconds[name]:>10.1f}{batch / seconds[name]:>10.1f}{seconds[name] / ce:>8.2f}")
    print("(images/s: head images x_b per second, as a trial counts them)")
    overhead = seconds["smcl masking step"] / seconds["2B forward, CE only"] - 1
    print(f"saliency + masking + contrastive on top of the 2B forward: {100 * overhead:+.1f}%")
    print(f"spectral-residual saliency: {_saliency_rate(device, batch):.0f} maps/s")
    print(
        f"\ndevice batches, {DATA_IMAGES} uint8 images 32x32, crop pad 4 + flip + normalise; images/s "
        f"(SMCL: head images, every step also loading a minor batch)"
    )
    print(f"{'method':<7}{'batches only':>14}{'training':>10}")
    for method, settings in (("ce", rows[0][1]), ("smcl", rows[2][1])):  # smcl: erase, the default
        data_rate, training_rate = _data_path_rates(method, settings, device, batch, arguments.steps)
        print(f"{method:<7}{data_rate:>14.0f}{training_rate:>10.1f}")


if __name__ == "__main__":
    main()
