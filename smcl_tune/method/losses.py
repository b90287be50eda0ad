"""Losses of SMCL: soft-label cross-entropy, supervised contrastive loss, long-tail corrections."""

import torch
from torch import Tensor


def soft_cross_entropy(logits: Tensor, targets: Tensor, class_weights: Tensor | None = None) -> Tensor:
    """Cross-entropy against soft targets, averaged over samples, computed in float32.

    Args:
        logits: [N, C] unnormalised scores (any float dtype).
        targets: [N, C] target distributions q (rows sum to 1).
        class_weights: optional [C] weights w. Sample i then weighs s_i = q_i . w and the
            loss is sum_i s_i l_i / sum_i s_i, which equals
            ``F.cross_entropy(logits, y, weight=w)`` for one-hot targets.

    Returns:
        Scalar loss (float32, or float64 for float64 inputs).
    """
    dtype = torch.promote_types(logits.dtype, torch.float32)
    log_probs = torch.log_softmax(logits.to(dtype), dim=1)
    targets = targets.to(dtype)
    per_sample = -(targets * log_probs).sum(dim=1)
    if class_weights is None:
        return per_sample.mean()
    sample_weights = targets @ class_weights.to(device=logits.device, dtype=dtype)
    return (sample_weights * per_sample).sum() / sample_weights.sum()


def supervised_contrastive_loss(z: Tensor, labels: Tensor, temperature: float | Tensor) -> Tensor:
    """Supervised contrastive loss, L_out form of Khosla et al. (NeurIPS 2020), eq. 2.

    For each anchor a with at least one positive P(a) (same label, not a itself):
    -1/|P(a)| sum_{p in P(a)} log( exp(z_a.z_p / tau) / sum_{k != a} exp(z_a.z_k / tau) ),
    averaged over those anchors; anchors without a positive are skipped.

    Args:
        z: [N, D] L2-normalised embeddings, any float dtype (computed in at least float32).
        labels: [N] integer class labels.
        temperature: tau > 0; a float, or a 0-dim tensor (not read back: checked where it was made).

    Returns:
        Scalar loss; 0 (still connected to ``z``'s graph) when no anchor has a positive.
    """
    if not isinstance(temperature, Tensor) and temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    z = z.to(torch.promote_types(z.dtype, torch.float32))
    n = z.shape[0]
    if n < 2:
        return (z * 0).sum()
    labels = labels.to(z.device)
    # z's dtype again after an autocast matmul (bf16): a 0-dim device tensor tau would otherwise be
    # rounded to bf16 before the division, a Python float would not
    similarity = (z @ z.T).to(z.dtype) / temperature
    self_mask = torch.eye(n, dtype=torch.bool, device=z.device)
    positives = (labels[:, None] == labels[None, :]) & ~self_mask
    # torch.logsumexp subtracts the row max; the diagonal is removed by -inf, which stays exact.
    log_denominator = torch.logsumexp(similarity.masked_fill(self_mask, float("-inf")), dim=1)
    log_prob = similarity - log_denominator[:, None]
    positive_count = positives.sum(dim=1)
    mean_log_prob_pos = torch.where(positives, log_prob, 0).sum(dim=1) / positive_count.clamp_min(1)
    has_positive = positive_count > 0
    return -mean_log_prob_pos.sum() / has_positive.sum().clamp_min(1)


def balanced_softmax_logits(logits: Tensor, class_counts: Tensor) -> Tensor:
    """Logits shifted by the log class prior (Balanced Softmax, Ren et al. NeurIPS 2020).

    Args:
        logits: [N, C] unnormalised scores.
        class_counts: [C] training images per class; counts of 0 are treated as 1.

    Returns:
        [N, C] logits + log(n_k / sum_j n_j), to be used in place of the logits in
        cross-entropy during training.
    """
    counts = class_counts.to(device=logits.device, dtype=torch.float32).clamp_min(1.0)
    return logits + torch.log(counts / counts.sum())


def drw_class_weights(class_counts: Tensor, beta: float = 0.9999) -> Tensor:
    """Effective-number class weights (Cui et al. CVPR 2019), as used by LDAM-DRW.

    Args:
        class_counts: [C] training images per class; counts of 0 are treated as 1 (such a
            class never appears as a target, so its weight does not matter).
        beta: effective-number hyperparameter in [0, 1).

    Returns:
        float32 [C]: w_k = (1 - beta) / (1 - beta^n_k), scaled so that sum_k w_k = C.
    """
    if not 0 <= beta < 1:
        raise ValueError(f"beta must be in [0, 1), got {beta}")
    counts = torch.as_tensor(class_counts, dtype=torch.float64).clamp_min(1.0)
    weights = (1.0 - beta) / (1.0 - torch.pow(beta, counts))
    weights = weights * (counts.numel() / weights.sum())
    return weights.to(device=torch.as_tensor(class_counts).device, dtype=torch.float32)


def ldam_margins(class_counts: Tensor, max_margin: float | Tensor = 0.5) -> Tensor:
    """Per-class margins of LDAM (Cao et al. NeurIPS 2019, eq. 13): m_k = C / n_k^(1/4).

    Args:
        class_counts: [C] training images per class; counts of 0 are treated as 1.
        max_margin: the largest margin (that of the rarest class); C is chosen to give it. A float,
            or a 0-dim tensor (not read back: checked where it was made).

    Returns:
        float32 [C] margins on the class_counts' device, in cosine units.
    """
    if not isinstance(max_margin, Tensor) and max_margin < 0:
        raise ValueError(f"max_margin must be >= 0, got {max_margin}")
    counts = torch.as_tensor(class_counts, dtype=torch.float32).clamp_min(1.0)
    inverse_fourth_root = counts.pow(-0.25)
    return inverse_fourth_root * (max_margin / inverse_fourth_root.max())


def ldam_logits(cosine_logits: Tensor, targets: Tensor, margins: Tensor, scale: float | Tensor) -> Tensor:
    """LDAM's logits s * (cos_k - m_k * q_k), to be used in place of the logits in cross-entropy.

    For a one-hot target y this is the paper's s * (cos_y - m_y) on the true class and s * cos_k
    elsewhere. For a soft target q each class's margin is weighted by its share of the target.

    Args:
        cosine_logits: [N, C] cosine similarities of a cosine classifier, in [-1, 1].
        targets: [N, C] target distributions q (rows sum to 1).
        margins: [C] per-class margins (`ldam_margins`).
        scale: s > 0.

    Returns:
        [N, C] in at least float32.
    """
    dtype = torch.promote_types(cosine_logits.dtype, torch.float32)
    margins = margins.to(device=cosine_logits.device, dtype=dtype)
    return scale * (cosine_logits.to(dtype) - targets.to(dtype) * margins[None, :])
