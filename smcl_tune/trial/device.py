"""Where a trial computes: the device, its mixed precision, compilation, and peak memory."""

from __future__ import annotations

import logging

import torch
from torch import nn

from smcl_tune.config import TrainingConfig

log = logging.getLogger(__name__)


# Images per forward pass when a trial evaluates. A GPU wants large chunks. On a CPU a small chunk
# keeps each layer's activations in the allocator's and the CPU's caches: at one thread ResNet-32
# took 42.9 s per 10,000 test images in chunks of 32 and 139.6 s in chunks of 512, with 0 and 1,135
# minor page faults per image (benchmarks/evaluation_speed.py, RESULTS.md).
CPU_EVALUATION_BATCH = 32
GPU_EVALUATION_BATCH = 512


def evaluation_batch_size(device: torch.device) -> int:
    return GPU_EVALUATION_BATCH if device.type == "cuda" else CPU_EVALUATION_BATCH


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def missing_device(name: str) -> str | None:
    """Why `name` (a training.device) is a CUDA or MPS device this machine lacks, or None."""
    if name == "mps":
        return None if torch.backends.mps.is_available() else "this machine has no MPS device (Apple's GPU)"
    if name.split(":")[0] != "cuda":
        return None
    if not torch.cuda.is_available():
        return "this machine has no CUDA device (torch.cuda.is_available() is False)"
    index, count = int(name.partition(":")[2] or 0), torch.cuda.device_count()
    if index >= count:
        return f"this machine has {count} CUDA device{'' if count == 1 else 's'} (cuda:0 to cuda:{count - 1})"
    return None


def autocast(device: torch.device):
    # bf16 for convolutions and matrix products; BatchNorm keeps float32 weights and running
    # statistics and accumulates in float32 (cuDNN's mixed-precision batch norm).
    return (
        torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else torch.autocast("cpu", enabled=False)
    )


def training_network(network: nn.Module, training: TrainingConfig, device: torch.device) -> nn.Module:
    """The network the training steps call: compiled when asked for on CUDA, else `network` itself."""
    if not training.compile:
        return network
    if device.type != "cuda":
        log.warning("training.compile: ignored on %s (torch.compile is used on CUDA devices only)", device)
        return network
    return torch.compile(network, mode=training.compile_mode)


def start_gpu_memory_peak(device: torch.device) -> None:
    """gpu_memory_metrics' peaks count from now: a trial's start, or a fused group's (whose members
    share the process: a member that joins later does not start them again)."""
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def gpu_memory_metrics(device: torch.device) -> dict[str, float]:
    """Peak GPU memory of this process since the trial or its fused group started, MiB (empty off CUDA)."""
    if device.type != "cuda":
        return {}
    return {
        "gpu_memory_peak_mib": torch.cuda.max_memory_allocated(device) / 2**20,
        "gpu_memory_reserved_mib": torch.cuda.max_memory_reserved(device) / 2**20,
    }
