"""A process's share of a GPU, made real: Ray shares a GPU by bookkeeping only."""

from __future__ import annotations

import logging

log = logging.getLogger(__name__)

CUDA_CONTEXT_ALLOWANCE = 0.9  # of a GPU share: each process's CUDA context lies outside the allocator's cap


def cap_gpu_memory(share: float) -> None:
    """Cap this process's CUDA allocations when it holds `share` (0 < share < 1) of a GPU.

    Ray shares a GPU by bookkeeping only; without a cap one trial's caching allocator can take
    the memory its neighbours need.
    """
    import torch  # here, not at the top: the study's driver imports this module and never trains

    if not 0 < share < 1 or not torch.cuda.is_available():
        return
    fraction = share * CUDA_CONTEXT_ALLOWANCE
    torch.cuda.set_per_process_memory_fraction(fraction)
    log.info("CUDA allocations capped at %.3f of the GPU's memory (a %.2f GPU share)", fraction, share)
