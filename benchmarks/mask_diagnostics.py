"""Where SMCL's masks land on real CIFAR-10-LT images: saliency kinds, areas, padding, soft labels.

Measured on the training batches exactly as a trial builds them (LDAM subset, IF 100, crop with
4 px zero padding and flip, normalised), on the images the masks are made from: for `erase` (the
default) the training image x_b itself, for `paste` the minor-class image x_m:
- the masked area (mean, 10th / 50th / 90th percentile; the share of masks that are empty or above 90%);
- the share of mask pixels on the crop's zero padding (the batch's content mask says where it is), against
  the padding's share of the image;
- the share of mask pixels in the central 16x16 (CIFAR objects are mostly centred: a proxy for
  "on the object", with no object masks to compare with), against the 25% a uniform mask has;
- paste only, for the soft label: the label gives the minor class weight a (the masked area);
  `minor visible` is the part of that area that shows the minor image's centre rather than its
  padding or border.
Saliencies: spectral residual (no network) and gradient saliency of a CE network trained for
--epochs epochs on the same data; masks: the box (peak of the saliency, lambda ~ Beta(1, 1)) and
thresholds. Saliency ignores the crop's padding (SMCL.md, step 1), so no mask pixel should lie on it.

    .venv/bin/python benchmarks/mask_diagnostics.py [--epochs 8] [--batches 20]
"""

from __future__ import annotations

import argparse
import copy
import time

import torch
from real_cifar10_lt import trial as benchmark_trial
from stepped_trial import SteppedTrial

from smcl_tune.config import MethodConfig, trial_config_from_dict
from smcl_tune.data.splits import build_trial_data
from smcl_tune.method.batch import Batch
from smcl_tune.method.step import StepSettings, mask_batch
from smcl_tune.trial.device import resolve_device


def _batches(trial: SteppedTrial, count: int) -> list[Batch]:
    plan = trial.plan()[:count]
    return [batch for batch in trial.parts.batches.epoch(plan) if batch.masks]


def _measure(settings: StepSettings, network, batches: list[Batch], generator) -> dict[str, float]:
    centre = torch.zeros(32, 32, dtype=torch.bool)
    centre[8:24, 8:24] = True
    sums = {"area": 0.0, "empty": 0.0, "full": 0.0, "on_padding": 0.0, "padding_share": 0.0, "in_centre": 0.0}
    areas = []
    for batch in batches:
        parts = mask_batch(settings, network, batch, generator)
        mask = parts.mask[:, 0] > 0.5
        of_head = settings.method.compose == "erase" or settings.method.mask_source == "head"
        padding = ~(batch.head_content if of_head else batch.minor_content)  # where the crop's zero padding is
        area = mask.float().flatten(1).mean(1)
        masked = mask.flatten(1).sum(1).clamp(min=1)
        sums["area"] += area.sum().item()
        sums["empty"] += (area == 0).sum().item()
        sums["full"] += (area > 0.9).sum().item()
        sums["on_padding"] += ((mask & padding).flatten(1).sum(1) / masked).sum().item()
        sums["padding_share"] += padding.float().flatten(1).mean(1).sum().item()
        sums["in_centre"] += ((mask & centre).flatten(1).sum(1) / masked).sum().item()
        areas.append(area)
    result = {key: value / sum(len(a) for a in areas) for key, value in sums.items()}
    quantiles = torch.quantile(torch.cat(areas), torch.tensor([0.1, 0.5, 0.9]))
    result.update(zip(("p10", "p50", "p90"), quantiles.tolist(), strict=True))
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=8, help="CE epochs before measuring gradient saliency")
    parser.add_argument("--batches", type=int, default=20, help="batches of 128 pairs measured")
    parser.add_argument("--n-max", type=int, default=1000)
    arguments = parser.parse_args()
    started = time.perf_counter()
    config = benchmark_trial({"name": "smcl", "mask_probability": 1.0}, 0, 30, arguments.n_max, "small_cnn")
    config["method"]["mask_start_epoch"] = 0
    smcl_config = trial_config_from_dict(config)
    data = build_trial_data(smcl_config.data)
    device = resolve_device("cpu")
    torch.set_num_threads(1)
    sampler = SteppedTrial.build(smcl_config, data, device)
    batches = _batches(sampler, arguments.batches)

    ce_config = copy.deepcopy(config)
    ce_config["method"] = {"name": "ce"}
    ce_config["training"]["epochs"] = max(arguments.epochs, 1)
    ce = SteppedTrial.build(trial_config_from_dict(ce_config), data, device)
    for _ in range(arguments.epochs):
        ce.train_epoch()
    ce.parts.network.eval()

    rows = []
    for saliency in ("spectral_residual", "gradient"):
        rows.append(("erase", saliency, "box, Beta(1, 1)", StepSettings(MethodConfig(saliency=saliency), 10)))
    for threshold in (0.3, 0.5):
        method = MethodConfig(saliency="spectral_residual", mask_mode="threshold", saliency_threshold=threshold)
        settings = StepSettings(method, 10)
        rows.append(("erase", "spectral_residual", f"threshold {threshold}", settings))
    for saliency in ("spectral_residual", "gradient"):
        settings = StepSettings(MethodConfig(compose="paste", mask_mode="threshold", saliency=saliency), 10)
        rows.append(("paste", saliency, "threshold 0.5", settings))
    print(
        f"masks on real CIFAR-10-LT training images (IF 100, LDAM subset n_max {arguments.n_max}, crop pad 4 + "
        f"flip), {arguments.batches} batches of 128 (erase: of x_b; paste: of the minor-class x_m); gradient "
        f"saliency of a small CNN after {arguments.epochs} CE epochs; {time.perf_counter() - started:.0f} s to set up"
    )
    print(
        f"{'compose':<8}{'saliency':<19}{'mask':<17}{'area':>7}{'p10':>6}{'p50':>6}{'p90':>6}{'empty':>7}{'>90%':>7}"
        f"{'on padding':>12}{'padding share':>15}{'in centre':>11}{'minor visible':>15}"
    )
    for compose, saliency, mask, settings in rows:
        generator = torch.Generator().manual_seed(0)
        result = _measure(settings, ce.parts.network, batches, generator)
        visible = f"{100 * result['area'] * result['in_centre']:14.1f}%" if compose == "paste" else f"{'-':>15}"
        print(
            f"{compose:<8}{saliency:<19}{mask:<17}{100 * result['area']:6.1f}%{100 * result['p10']:5.0f}%"
            f"{100 * result['p50']:5.0f}%{100 * result['p90']:5.0f}%{100 * result['empty']:6.1f}%"
            f"{100 * result['full']:6.1f}%{100 * result['on_padding']:11.1f}%{100 * result['padding_share']:14.1f}%"
            f"{100 * result['in_centre']:10.1f}%{visible}"
        )
    print(f"uniform mask: 25.0% in the centre; total {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
