import math

import torch

from smcl_tune.data.longtail import shot_groups
from smcl_tune.metrics import accuracy_summary, confusion_matrix, per_class_accuracy


def test_shot_group_thresholds_are_configurable():
    counts = [500, 101, 100, 20, 19, 3]
    assert shot_groups(counts) == {"many": [0, 1], "medium": [2, 3], "few": [4, 5]}
    assert shot_groups(counts, many_above=50, few_below=5) == {"many": [0, 1, 2], "medium": [3, 4], "few": [5]}


def test_summary_by_hand_and_empty_group_is_missing_not_zero():
    labels = torch.tensor([0, 0, 1, 1, 2, 2])
    predictions = torch.tensor([0, 0, 1, 0, 0, 0])
    matrix = confusion_matrix(predictions, labels, 3)
    assert matrix.tolist() == [[2, 0, 0], [1, 1, 0], [2, 0, 0]]
    groups = {"many": [0], "medium": [1, 2], "few": []}
    summary = accuracy_summary(matrix, groups)
    assert summary["top1"] == 3 / 6
    assert summary["balanced_accuracy"] == (1 + 0.5 + 0) / 3
    assert summary["many"] == 1.0 and summary["medium"] == 0.25
    assert math.isnan(summary["few"])


def test_class_without_evaluation_images_is_missing():
    matrix = confusion_matrix(torch.tensor([0, 1]), torch.tensor([0, 0]), 2)
    per_class = per_class_accuracy(matrix)
    assert per_class[0] == 0.5 and math.isnan(per_class[1])
    summary = accuracy_summary(matrix, {"many": [0], "medium": [], "few": [1]})
    assert math.isnan(summary["few"]) and math.isnan(summary["medium"])


def test_a_class_without_evaluation_images_is_left_out_of_balanced_accuracy_and_its_group():
    # class 0: 1 of 2 right; class 1: no evaluation images; class 2: 2 of 2 right
    matrix = confusion_matrix(torch.tensor([0, 1, 2, 2]), torch.tensor([0, 0, 2, 2]), 3)
    summary = accuracy_summary(matrix, {"many": [2], "medium": [], "few": [0, 1]})
    assert summary["balanced_accuracy"] == (0.5 + 1.0) / 2  # not (0.5 + 0 + 1) / 3, nor NaN
    assert summary["few"] == 0.5 and summary["many"] == 1.0 and summary["top1"] == 3 / 4


def test_an_empty_evaluation_is_missing_everywhere():
    summary = accuracy_summary(torch.zeros(3, 3, dtype=torch.long), {"many": [0], "medium": [1], "few": [2]})
    assert all(math.isnan(value) for value in summary.values()), summary
