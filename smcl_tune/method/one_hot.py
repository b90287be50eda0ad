"""One-hot targets that read nothing back to the host.

`F.one_hot` checks its labels' range with two reads to the host on the CPU (none on CUDA), so a
step's count of host reads, which a CUDA graph of the step must keep at zero, could not be checked
on the CPU. Labels are in range by construction (class folders, CIFAR's files, the synthetic
source) or checked where they are read (file lists); one out of range would give a row of zeros.
"""

from __future__ import annotations

import torch
from torch import Tensor


def one_hot(labels: Tensor, num_classes: int) -> Tensor:
    """float32 [B, num_classes]: row i is 1 at labels[i], 0 elsewhere (as F.one_hot(...).float())."""
    return (labels.long()[:, None] == torch.arange(num_classes, device=labels.device)).float()
