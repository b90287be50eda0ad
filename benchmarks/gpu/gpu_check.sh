#!/usr/bin/env bash
# The GPU check of issue 6: CIFAR-10-LT (IF 100) with ResNet-32 for 200 epochs, CE and SMCL, on one
# GPU, then four SMCL trials sharing it through Ray Tune. Needs no network: prepare on a machine
# that has the data and PyPI, copy the repository with .gpu-data/ to the GPU machine, run there.
#
#   prepare (here):   .venv/bin/python benchmarks/gpu/prepare_data.py && bash benchmarks/gpu/bundle.sh
#   run (GPU):        bash benchmarks/gpu/gpu_check.sh [check.py options, e.g. --epochs 200]
#
# Uses `python3` (or $PYTHON) with torch and torchvision; Ray and pydantic come from
# .gpu-data/wheels when that Python lacks them. The full log goes to $GPU_CHECK_LOG
# (default .gpu-data/gpu_check.log).
set -euo pipefail
cd "$(dirname "$0")/../.."
python=${PYTHON:-python3}
log=${GPU_CHECK_LOG:-.gpu-data/gpu_check.log}
mkdir -p "$(dirname "$log")"
if ! "$python" -c "import torch, torchvision, yaml, PIL, pandas" 2>/dev/null; then
    echo "$python: needs torch, torchvision, pyyaml, pillow and pandas; set PYTHON to an interpreter that has them" >&2
    exit 2
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
if ! "$python" -c "import ray, pydantic" 2>/dev/null; then
    site=${GPU_CHECK_SITE:-/tmp/smcl-gpu-site}
    if [[ ! -f .gpu-data/wheels/install.sh ]]; then
        echo "$python lacks ray or pydantic and .gpu-data/wheels is missing; run benchmarks/gpu/bundle.sh first" >&2
        exit 2
    fi
    bash .gpu-data/wheels/install.sh "$site" "$python"
    export PYTHONPATH="$PYTHONPATH:$site"
fi
data=.gpu-data/cifar10-lt-jpeg
if [[ ! -f $data/train.zip || ! -f $data/test.zip ]]; then
    if [[ ! -d ../shared/data/cifar10-jpeg ]]; then
        echo "$data: missing, and no ../shared/data/cifar10-jpeg to build it from; run benchmarks/gpu/prepare_data.py where the data is" >&2
        exit 2
    fi
    "$python" benchmarks/gpu/prepare_data.py --out "$data"
fi
export PYTHONUNBUFFERED=1 RAY_DEDUP_LOGS=0
{
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
    "$python" benchmarks/gpu/check.py --data "$data" "$@"
} 2>&1 | tee "$log"
