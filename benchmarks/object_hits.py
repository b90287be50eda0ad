"""Does the saliency find the object? Masks against the synthetic source's known objects (issue 39).

On the test images of the hard synthetic setting (benchmarks/background_bias.py --difficulty hard;
every image's object mask is known), for each saliency (spectral_residual, gradient, cam, random)
and mask (the default box, lambda ~ Beta(1, 1), and threshold masks), over the images:
- `box is object`: the share of the masked pixels that are object (mean over non-empty masks);
- `object erased`: the share of the object's pixels that are masked;
- `misses`: the share of masks with no object pixel at all (empty masks count as misses);
- `area`: the masked share of the image.
A uniformly random mask of the same area has `box is object` equal to the object's share of the
image (printed). `gradient` and `cam` read a model: an untrained small CNN, and the same network
after --epochs of CE on the training subset (the product's own steps). The images are the test
images as a trial normalises them, whole (no crop): nothing here tunes anything.

    .venv/bin/python benchmarks/object_hits.py [--epochs 30] [--images 1000] [--output object_hits.jsonl]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

if __package__ in (None, ""):  # run as a file: the package `benchmarks` is found from the repository root
    sys.path[0] = str(Path(__file__).resolve().parents[1])

from benchmarks.background_bias import DIFFICULTIES
from benchmarks.common import synthetic_trial
from benchmarks.stepped_trial import SteppedTrial
from smcl_tune.config import trial_config_from_dict
from smcl_tune.data.augment import normalize
from smcl_tune.data.splits import build_trial_data
from smcl_tune.method.masking import box_mask, sample_beta, threshold_mask
from smcl_tune.method.saliency import cam_saliency, gradient_saliency, random_saliency, spectral_residual_saliency

SALIENCIES = ("spectral_residual", "gradient", "cam", "random")
MASKS = ("box", "threshold 0.3", "threshold 0.5")


def saliency_maps(kind: str, network, images: torch.Tensor, labels: torch.Tensor, seed: int) -> torch.Tensor:
    if kind == "spectral_residual":
        return spectral_residual_saliency(images, 1.5)
    if kind == "random":
        return random_saliency(images, torch.Generator().manual_seed(seed))
    if kind == "gradient":
        return gradient_saliency(lambda x: network(x)[0], images, labels)
    return cam_saliency(lambda x: network(x)[0], network.backbone.last_block, images, labels)


def hits(masks: torch.Tensor, objects: torch.Tensor) -> dict[str, float]:
    """masks, objects: bool [N, H, W]."""
    masked = masks.flatten(1).sum(1).float()
    overlap = (masks & objects).flatten(1).sum(1).float()
    object_size = objects.flatten(1).sum(1).float().clamp(min=1)
    nonempty = masked > 0
    return {
        "box_is_object": float((overlap[nonempty] / masked[nonempty]).mean()) if bool(nonempty.any()) else float("nan"),
        "object_erased": float((overlap / object_size).mean()),
        "misses": float((overlap == 0).float().mean()),
        "area": float(masks.float().flatten(1).mean(1).mean()),
    }


def measure(network, images, labels, objects, model: str, seed: int) -> list[dict]:
    rows = []
    lam = sample_beta(1.0, len(images), torch.Generator().manual_seed(seed))
    for kind in SALIENCIES:
        if model == "untrained" and kind in ("spectral_residual", "random"):
            continue  # no model: measured once, with the trained rows
        maps = saliency_maps(kind, network, images, labels, seed)
        for mask in MASKS:
            if kind == "random" and mask != "box":
                continue  # a threshold of a random map means nothing
            if mask == "box":
                masks = box_mask(maps, lam)[:, 0] > 0.5
            else:
                masks = threshold_mask(maps, float(mask.split()[1]))[:, 0] > 0.5
            model_label = model if kind in ("gradient", "cam") else "-"
            rows.append({"saliency": kind, "mask": mask, "model": model_label, **hits(masks, objects)})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=30, help="CE epochs of the trained model")
    parser.add_argument("--images", type=int, default=1000, help="test images measured (balanced over classes)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", type=Path, help="JSON lines, one per row")
    arguments = parser.parse_args()
    started = time.perf_counter()
    torch.set_num_threads(1)
    config = trial_config_from_dict(
        synthetic_trial({"name": "ce"}, arguments.seed, max(arguments.epochs, 1), DIFFICULTIES["hard"])
    )
    data = build_trial_data(config.data)
    trial = SteppedTrial.build(config, data, torch.device("cpu"))
    picked = torch.linspace(0, len(data.test) - 1, min(arguments.images, len(data.test))).long()
    images = normalize(data.test.images[picked], data.mean, data.std)
    labels, objects = data.test.labels[picked], data.test_object_masks[picked]
    network = trial.parts.network.eval()
    rows = measure(network, images, labels, objects, "untrained", arguments.seed)
    for _ in range(arguments.epochs):
        trial.parts.network.train()
        trial.train_epoch()
    network = trial.parts.network.eval()
    rows += measure(network, images, labels, objects, f"CE {arguments.epochs} epochs", arguments.seed)
    object_share = float(objects.float().flatten(1).mean(1).mean())
    print(
        f"masks against the known objects of {len(images)} hard-synthetic test images (32 px; the object covers "
        f"{100 * object_share:.1f}% of an image on average, what a mask placed at random has as `box is object`); "
        f"{time.perf_counter() - started:.0f} s"
    )
    print(
        f"{'saliency':<19}{'mask':<15}{'model':<16}{'box is object':>15}{'object erased':>15}{'misses':>9}{'area':>8}"
    )
    for row in rows:
        print(
            f"{row['saliency']:<19}{row['mask']:<15}{row['model']:<16}{100 * row['box_is_object']:14.1f}%"
            f"{100 * row['object_erased']:14.1f}%{100 * row['misses']:8.1f}%{100 * row['area']:7.1f}%"
        )
    if arguments.output:
        with arguments.output.open("a") as output:
            for row in rows:
                output.write(
                    json.dumps({**row, "epochs": arguments.epochs, "images": len(images), "seed": arguments.seed})
                    + "\n"
                )


if __name__ == "__main__":
    main()
