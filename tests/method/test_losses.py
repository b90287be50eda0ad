import math

import pytest
import torch
import torch.nn.functional as F

from smcl_tune.method.losses import (
    balanced_softmax_logits,
    drw_class_weights,
    ldam_logits,
    ldam_margins,
    soft_cross_entropy,
    supervised_contrastive_loss,
)


def reference_soft_cross_entropy(logits, targets, weights=None):
    logits, targets = logits.double(), targets.double()
    total, weight_total = 0.0, 0.0
    for i in range(logits.shape[0]):
        log_norm = math.log(sum(math.exp(v) for v in logits[i].tolist()))
        loss_i = -sum(q * (v - log_norm) for q, v in zip(targets[i].tolist(), logits[i].tolist()))
        q_i = targets[i].tolist()
        s_i = 1.0 if weights is None else sum(q * w for q, w in zip(q_i, weights.tolist()))
        total += s_i * loss_i
        weight_total += s_i
    return total / weight_total


def reference_supcon(z, labels, temperature):
    z = z.double()
    labels = labels.tolist()
    n = len(labels)
    anchor_losses = []
    for a in range(n):
        positives = [p for p in range(n) if p != a and labels[p] == labels[a]]
        if not positives:
            continue
        denominator = sum(torch.exp(z[a] @ z[k] / temperature) for k in range(n) if k != a)
        terms = [torch.log(torch.exp(z[a] @ z[p] / temperature) / denominator) for p in positives]
        anchor_losses.append(-sum(terms) / len(positives))
    return sum(anchor_losses) / len(anchor_losses)


def random_embeddings(n, d, seed, dtype=torch.float32):
    generator = torch.Generator().manual_seed(seed)
    return F.normalize(torch.randn(n, d, generator=generator, dtype=torch.float64), dim=1).to(dtype)


def test_soft_cross_entropy_hand_computed():
    # softmax([0, ln 3]) = [1/4, 3/4]; loss = -(0.5 ln 1/4 + 0.5 ln 3/4) = 0.836988.
    logits = torch.tensor([[0.0, math.log(3.0)]])
    loss = soft_cross_entropy(logits, torch.tensor([[0.5, 0.5]]))
    assert loss.item() == pytest.approx(0.836988, abs=1e-6)


@pytest.mark.parametrize("seed,n,c", [(0, 7, 3), (1, 13, 5), (2, 1, 4)])
def test_soft_cross_entropy_matches_reference(seed, n, c):
    generator = torch.Generator().manual_seed(seed)
    logits = torch.randn(n, c, generator=generator) * 3
    targets = torch.softmax(torch.randn(n, c, generator=generator) * 2, dim=1)
    weights = torch.rand(c, generator=generator) + 0.1
    assert soft_cross_entropy(logits, targets).item() == pytest.approx(
        reference_soft_cross_entropy(logits, targets), rel=1e-5
    )
    assert soft_cross_entropy(logits, targets, weights).item() == pytest.approx(
        reference_soft_cross_entropy(logits, targets, weights), rel=1e-5
    )


def test_soft_cross_entropy_with_one_hot_targets_is_cross_entropy():
    generator = torch.Generator().manual_seed(3)
    logits = torch.randn(11, 6, generator=generator)
    labels = torch.randint(0, 6, (11,), generator=generator)
    weights = torch.rand(6, generator=generator) + 0.1
    one_hot = F.one_hot(labels, 6).float()
    assert torch.allclose(soft_cross_entropy(logits, one_hot), F.cross_entropy(logits, labels))
    assert torch.allclose(
        soft_cross_entropy(logits, one_hot, weights),
        F.cross_entropy(logits, labels, weight=weights),
    )


def test_soft_cross_entropy_computes_half_precision_logits_in_float32():
    generator = torch.Generator().manual_seed(4)
    logits = (torch.randn(9, 5, generator=generator) * 4).to(torch.bfloat16)
    targets = torch.softmax(torch.randn(9, 5, generator=generator), dim=1)
    loss = soft_cross_entropy(logits, targets)
    assert loss.dtype == torch.float32
    expected = reference_soft_cross_entropy(logits.float(), targets)
    assert loss.item() == pytest.approx(expected, rel=1e-5)


def test_supcon_hand_computed():
    # tau = 0.5, labels [0, 0, 1], z = (1,0), (0,1), (1,0).
    # anchor 0: positive 1, logits/tau to 1, 2 = 0, 2
    #   -> -log(e^0 / (e^0 + e^2)) = log(1 + e^2) = 2.126928
    # anchor 1: positive 0, logits/tau to 0, 2 = 0, 0  -> log 2 = 0.693147
    # anchor 2: no positive, skipped; mean = (2.126928 + 0.693147) / 2 = 1.410038
    z = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]])
    loss = supervised_contrastive_loss(z, torch.tensor([0, 0, 1]), temperature=0.5)
    assert loss.item() == pytest.approx(1.410038, abs=1e-5)


@pytest.mark.parametrize(
    "seed,n,d,num_labels,temperature",
    [(0, 7, 3, 2, 0.1), (1, 13, 5, 4, 0.07), (2, 31, 16, 6, 0.5), (3, 9, 2, 9, 1.0)],
)
def test_supcon_matches_reference(seed, n, d, num_labels, temperature):
    generator = torch.Generator().manual_seed(seed + 100)
    labels = torch.randint(0, num_labels, (n,), generator=generator)
    labels[1] = labels[0]
    z = random_embeddings(n, d, seed).requires_grad_(True)
    loss = supervised_contrastive_loss(z, labels, temperature)
    z_reference = z.detach().double().requires_grad_(True)
    expected = reference_supcon(z_reference, labels, temperature)
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)
    loss.backward()
    expected.backward()
    assert torch.allclose(z.grad.double(), z_reference.grad, atol=1e-5)


def test_supcon_skips_anchors_without_positives():
    # Labels 1 and 3 occur once: those anchors are skipped, the other four are averaged.
    labels = torch.tensor([0, 1, 0, 2, 2, 3, 2])
    z = random_embeddings(7, 4, seed=5)
    loss = supervised_contrastive_loss(z, labels, temperature=0.2)
    anchor_losses = []
    for a in [0, 2, 3, 4, 6]:
        others = [k for k in range(7) if k != a]
        log_denominator = torch.logsumexp(z[a].double() @ z[others].double().T / 0.2, dim=0)
        positives = [p for p in others if labels[p] == labels[a]]
        log_probs = [z[a].double() @ z[p].double() / 0.2 - log_denominator for p in positives]
        anchor_losses.append(-sum(log_probs) / len(positives))
    assert loss.item() == pytest.approx((sum(anchor_losses) / 5).item(), rel=1e-5)


@pytest.mark.parametrize("temperature", [0.0, -0.1])
def test_supcon_refuses_a_temperature_that_is_not_positive(temperature):
    with pytest.raises(ValueError, match=f"temperature must be > 0, got {temperature}"):
        supervised_contrastive_loss(random_embeddings(4, 8, seed=1), torch.tensor([0, 0, 1, 1]), temperature)


@pytest.mark.parametrize("n", [1, 6])
def test_supcon_without_positives_is_zero_with_finite_gradients(n):
    z = random_embeddings(n, 8, seed=6).requires_grad_(True)
    loss = supervised_contrastive_loss(z, torch.arange(n), temperature=0.1)
    assert loss.item() == 0.0
    assert loss.grad_fn is not None
    loss.backward()
    assert torch.isfinite(z.grad).all()
    assert torch.equal(z.grad, torch.zeros_like(z))


@pytest.mark.parametrize("dtype,tolerance", [(torch.bfloat16, 3e-2), (torch.float16, 5e-3)])
def test_supcon_in_half_precision_is_close_to_float32(dtype, tolerance):
    generator = torch.Generator().manual_seed(7)
    labels = torch.randint(0, 4, (24,), generator=generator)
    z = random_embeddings(24, 32, seed=7)
    z_half = z.to(dtype)
    for temperature in (0.1, 0.01):
        half_loss = supervised_contrastive_loss(z_half, labels, temperature)
        assert half_loss.dtype == torch.float32
        assert torch.isfinite(half_loss)
        # Computed in float32: exact up to float32 round-off on the rounded embeddings.
        rounded = supervised_contrastive_loss(z_half.float(), labels, temperature)
        assert half_loss.item() == pytest.approx(rounded.item(), rel=1e-5)
    full = supervised_contrastive_loss(z, labels, 0.1)
    half = supervised_contrastive_loss(z_half, labels, 0.1)
    assert half.item() == pytest.approx(full.item(), rel=tolerance)


def test_balanced_softmax_shifts_logits_by_the_log_prior():
    logits = torch.tensor([[1.0, -0.5, 2.0], [0.0, 0.3, -1.0]])
    counts = torch.tensor([100, 10, 1])
    labels = torch.tensor([2, 0])
    shifted = balanced_softmax_logits(logits, counts)
    by_hand = logits + torch.tensor([math.log(100 / 111), math.log(10 / 111), math.log(1 / 111)])
    assert torch.allclose(shifted, by_hand)
    assert torch.allclose(F.cross_entropy(shifted, labels), F.cross_entropy(by_hand, labels))
    with_empty_class = balanced_softmax_logits(logits, torch.tensor([100, 0, 1]))
    assert torch.isfinite(with_empty_class).all()
    shift = with_empty_class - logits
    assert torch.allclose(shift[:, 1], shift[:, 2])


def test_drw_weights_hand_computed():
    # beta = 0.5: w = 0.5 / (1 - 0.5) = 1 and 0.5 / (1 - 0.25) = 2/3; scaled to sum 2: 1.2 and 0.8.
    weights = drw_class_weights(torch.tensor([1, 2]), beta=0.5)
    assert torch.allclose(weights, torch.tensor([1.2, 0.8]))


def test_drw_weights_sum_to_the_class_count_and_favour_rare_classes():
    counts = torch.tensor([500, 299, 179, 107, 64, 38, 23, 13, 8, 5])
    weights = drw_class_weights(counts)
    assert weights.dtype == torch.float32
    assert weights.sum().item() == pytest.approx(10.0, rel=1e-6)
    assert (weights[1:] > weights[:-1]).all()
    assert torch.isfinite(drw_class_weights(torch.tensor([10, 0]))).all()
    with pytest.raises(ValueError, match="beta"):
        drw_class_weights(counts, beta=1.0)


def reference_ldam_loss(cosines, targets, counts, max_margin, scale, weights=None):
    """LDAM from Cao et al. 2019 (eq. 13 and the margin C / n_j^(1/4)) written out with loops.

    m_j = C / n_j^(1/4) with C such that max_j m_j = max_margin. For a one-hot target y:
    -log( e^{s(cos_y - m_y)} / (e^{s(cos_y - m_y)} + sum_{j != y} e^{s cos_j}) ). A soft target q
    is the documented extension: every class j loses m_j * q_j, and the loss is -sum_j q_j log p_j.
    """
    counts = [max(float(n), 1.0) for n in counts]
    constant = max_margin / max(n**-0.25 for n in counts)
    margins = [constant * n**-0.25 for n in counts]
    total, weight_total = 0.0, 0.0
    for i in range(cosines.shape[0]):
        q = targets[i].tolist()
        z = [scale * (c - m * q_j) for c, m, q_j in zip(cosines[i].tolist(), margins, q)]
        log_norm = math.log(sum(math.exp(v) for v in z))
        loss_i = -sum(q_j * (v - log_norm) for q_j, v in zip(q, z))
        s_i = 1.0 if weights is None else sum(q_j * w for q_j, w in zip(q, weights.tolist()))
        total += s_i * loss_i
        weight_total += s_i
    return total / weight_total


def test_ldam_margins_hand_computed():
    # n = 16, 81, 256: 1 / n^(1/4) = 1/2, 1/3, 1/4; the rarest class (16) gets the largest margin 0.5.
    margins = ldam_margins(torch.tensor([256, 81, 16]), max_margin=0.5)
    assert torch.allclose(margins, torch.tensor([0.25, 1 / 3, 0.5]))


@pytest.mark.parametrize("soft", [False, True])
@pytest.mark.parametrize("with_drw", [False, True])
@pytest.mark.parametrize("seed", [0, 1])
def test_ldam_loss_matches_the_papers_formula(seed, with_drw, soft):
    generator = torch.Generator().manual_seed(seed)
    counts = torch.tensor([500, 160, 50, 16, 5])
    cosines = torch.rand(6, 5, generator=generator) * 2 - 1
    labels = torch.randint(0, 5, (6,), generator=generator)
    targets = F.one_hot(labels, 5).float()
    if soft:
        other = F.one_hot(torch.randint(0, 5, (6,), generator=generator), 5).float()
        area = torch.rand(6, 1, generator=generator)
        targets = (1 - area) * targets + area * other
    weights = drw_class_weights(counts) if with_drw else None
    loss = soft_cross_entropy(ldam_logits(cosines, targets, ldam_margins(counts, 0.4), 30.0), targets, weights)
    expected = reference_ldam_loss(cosines.double(), targets.double(), counts.tolist(), 0.4, 30.0, weights)
    assert loss.item() == pytest.approx(expected, rel=1e-5)
    if not soft:  # one-hot: the same as torch's cross-entropy on the margin-shifted, scaled cosines
        margins = ldam_margins(counts, 0.4)
        shifted = 30.0 * (cosines - margins[labels][:, None] * targets)
        assert loss.item() == pytest.approx(F.cross_entropy(shifted, labels, weight=weights).item(), rel=1e-5)


def test_ldam_loss_is_larger_for_a_tail_class_than_a_head_class_on_equal_logits():
    counts = torch.tensor([1000, 100, 10])
    cosines = torch.full((2, 3), 0.2)
    targets = F.one_hot(torch.tensor([0, 2]), 3).float()  # a head-class and a tail-class sample
    logits = ldam_logits(cosines, targets, ldam_margins(counts, 0.5), 30.0)
    per_sample = -(targets * torch.log_softmax(logits, dim=1)).sum(dim=1)
    head_loss, tail_loss = per_sample.tolist()
    assert tail_loss > head_loss
    assert head_loss > math.log(3)  # even the head class's small margin costs something over no margin
