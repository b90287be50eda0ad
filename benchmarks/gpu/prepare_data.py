"""Copy the images of CIFAR-10-LT (imbalance factor 100) out of the JPEG copy of CIFAR-10.

Writes `OUT/train.zip`, the published subset itself: the images Cao et al.'s LDAM-DRW code keeps
(`data.subset_protocol: ldam` over the whole copy, whose images are in CIFAR's order within each
class), 12,406 of them, and `OUT/test.zip` (the 10,000 test images), in the image-folder layout
`data.source: image_folder` reads. A study over it with `subset_protocol: ldam`, n_max 5000 and
imbalance factor 100 keeps every image (each class's pool is its count), so it trains on the
subset the published CIFAR-10-LT rows trained on. About 23 MB: small enough to travel with the
repository to a machine without network (`benchmarks/gpu/gpu_check.sh`).

    .venv/bin/python benchmarks/gpu/prepare_data.py [--source ../shared/data/cifar10-jpeg]
                                                    [--out .gpu-data/cifar10-lt-jpeg]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import zipfile
from pathlib import Path

from smcl_tune.data.longtail import class_counts, split_long_tailed
from smcl_tune.data.sources.image_folder import image_folder_source
from smcl_tune.errors import DataSourceError

N_MAX = 5000
IMBALANCE_FACTOR = 100


def prepare(source: Path, out: Path) -> int:
    pools = image_folder_source(source)
    train = pools.train
    targets = class_counts(N_MAX, len(pools.class_names), IMBALANCE_FACTOR, "exp")
    split = split_long_tailed(train.labels, targets, 0, seed=0, protocol="ldam")  # the published subset
    chosen = sorted(split.train_indices.tolist())
    out.mkdir(parents=True, exist_ok=True)
    partial = out / "train.zip.tmp"
    with zipfile.ZipFile(train.files.root) as full, zipfile.ZipFile(partial, "w", zipfile.ZIP_STORED) as subset:
        for index in chosen:
            subset.writestr(full.getinfo(train.files.names[index]), full.read(train.files.names[index]))
    partial.replace(out / "train.zip")
    shutil.copyfile(source / "test.zip", out / "test.zip")
    return len(chosen)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=Path("../shared/data/cifar10-jpeg"))
    parser.add_argument("--out", type=Path, default=Path(".gpu-data/cifar10-lt-jpeg"))
    arguments = parser.parse_args()
    if not (arguments.source / "train.zip").is_file():
        print(f"{arguments.source}: no train.zip (the JPEG copy of CIFAR-10)", file=sys.stderr)
        return 2
    try:
        count = prepare(arguments.source, arguments.out)
    except DataSourceError as error:
        print(error, file=sys.stderr)
        return 2
    size = sum(path.stat().st_size for path in arguments.out.glob("*.zip")) / 2**20
    print(f"{arguments.out}: {count} training images (the published subset), 10,000 test images, {size:.1f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
