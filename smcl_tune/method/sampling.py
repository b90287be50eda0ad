"""Minor-class biased sampling probabilities."""

import torch
from torch import Tensor


def effective_number_probabilities(class_counts: Tensor | list[int], beta: float = 0.9999) -> Tensor:
    """Class probabilities inverse to the effective number of samples (Cui et al. CVPR 2019).

    E_k = (1 - beta^n_k) / (1 - beta) and p_k = (1 / E_k) / sum_j (1 / E_j), so rarer classes
    are drawn more often. A class with no training image gets probability 0.

    Args:
        class_counts: [C] training images per class n_k (non-negative integers).
        beta: effective-number hyperparameter in [0, 1); 0 gives equal probabilities.

    Returns:
        float64 [C] probabilities summing to 1.
    """
    if not 0 <= beta < 1:
        raise ValueError(f"beta must be in [0, 1), got {beta}")
    counts = torch.as_tensor(class_counts, dtype=torch.float64)
    if counts.dim() != 1 or counts.numel() == 0:
        raise ValueError(f"class_counts must be a non-empty 1-D list of counts, got {class_counts!r}")
    if (counts < 0).any():
        raise ValueError(f"class_counts must be >= 0, got {class_counts!r}")
    if not (counts > 0).any():
        raise ValueError("class_counts are all 0: there is no class to sample from")
    effective_number = (1.0 - torch.pow(beta, counts)) / (1.0 - beta)
    present = counts > 0
    inverse = torch.where(present, 1.0 / effective_number.clamp_min(1e-300), 0.0)
    return inverse / inverse.sum()
