import pytest
import torch

from smcl_tune.method.sampling import effective_number_probabilities

COUNTS = [500, 299, 179, 107, 64, 38, 23, 13, 8, 5]


def test_probabilities_sum_to_one_and_favour_rare_classes():
    probabilities = effective_number_probabilities(COUNTS)
    assert probabilities.dtype == torch.float64
    assert probabilities.sum().item() == pytest.approx(1.0, abs=1e-12)
    assert (probabilities[1:] > probabilities[:-1]).all()
    assert torch.equal(probabilities, effective_number_probabilities(torch.tensor(COUNTS)))


def test_probabilities_hand_computed():
    # beta = 0.5: E = (1 - 0.5) / 0.5 = 1 and (1 - 0.25) / 0.5 = 1.5; 1/E = 1, 2/3 -> 0.6, 0.4.
    assert torch.allclose(
        effective_number_probabilities([1, 2], beta=0.5),
        torch.tensor([0.6, 0.4], dtype=torch.float64),
    )
    assert torch.allclose(
        effective_number_probabilities([3, 50, 7], beta=0.0),
        torch.full((3,), 1 / 3, dtype=torch.float64),
    )


def test_empty_classes_are_never_drawn():
    probabilities = effective_number_probabilities([10, 0, 3])
    assert probabilities[1] == 0
    assert probabilities.sum().item() == pytest.approx(1.0)
    with pytest.raises(ValueError, match="all 0"):
        effective_number_probabilities([0, 0])
    with pytest.raises(ValueError, match="beta"):
        effective_number_probabilities([1, 2], beta=1.0)
    with pytest.raises(ValueError, match=r"class_counts must be >= 0, got \[3, -1\]"):
        effective_number_probabilities([3, -1])
