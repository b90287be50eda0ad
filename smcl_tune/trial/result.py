"""A trial's result: the test metrics of the epoch selected on validation (of the last epoch without a
validation split), the last epoch's, per-class accuracy and the confusion matrix."""

from __future__ import annotations

import copy

from torch import nn

from smcl_tune.data.splits import TrialData
from smcl_tune.metrics import SHOT_GROUPS, accuracy_summary, per_class_accuracy
from smcl_tune.results import BACKGROUND_HEAD_SHARE, TrialResult
from smcl_tune.trial.evaluation import background_edit, background_head_share, evaluate
from smcl_tune.trial.selection import Selection


def trial_result(
    network: nn.Module,
    data: TrialData,
    selection: Selection,
    history: list[dict[str, float]],
    status: str,
    reason: str | None,
) -> TrialResult:
    """The result of a trial whose `network` holds its last epoch's weights after `len(history)`
    epochs; `selection` is the epoch chosen on validation (unused without a validation split). The
    network itself is not changed: the selected weights are tested on a copy."""
    validates = len(data.val) > 0
    epochs_done = len(history)
    validation: dict[str, float] = {}
    test: dict[str, float] = {}
    last_test: dict[str, float] = {}
    per_class: list[float] = []
    confusion: list[list[int]] = []
    best_epoch = selection.epoch if validates else (epochs_done - 1 if history else None)
    if best_epoch is not None:
        selected = network
        if validates:
            selected = copy.deepcopy(network)
            selected.load_state_dict(selection.weights)
            validation = {
                key.removeprefix("val_"): value for key, value in history[best_epoch].items() if key.startswith("val_")
            }
        matrix = evaluate(selected, data.test, data)
        test = accuracy_summary(matrix, data.groups)
        erase = background_edit(data)
        test[BACKGROUND_HEAD_SHARE] = background_head_share(selected, data, erase)
        per_class = per_class_accuracy(matrix).tolist()
        confusion = matrix.tolist()
        if best_epoch == epochs_done - 1:
            last_test = test
        else:
            last_test = accuracy_summary(evaluate(network, data.test, data), data.groups)
            last_test[BACKGROUND_HEAD_SHARE] = background_head_share(network, data, erase)
    return TrialResult(
        status=status,
        reason=reason,
        epochs_completed=epochs_done,
        best_epoch=best_epoch,
        validation=validation,
        test=test,
        last_test=last_test,
        test_per_class_accuracy=per_class,
        test_confusion=confusion,
        group_sizes={name: len(data.groups[name]) for name in SHOT_GROUPS},
        train_counts=data.train_counts,
        class_names=data.class_names,
        history=history,
    )
