"""What a trial reports: scalar metrics per epoch, and its result as a file at the end.

Per-epoch reports carry only the scalar metrics named here (the study's tracker logs exactly
these names). The end-of-trial result (test metrics, per-class accuracy, confusion matrix,
train counts, class names, shot-group sizes, history) is written as `result.json` beside the
trial's checkpoint, from where the study's driver reads it.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from enum import StrEnum
from pathlib import Path
from typing import Any, ClassVar

from smcl_tune.atomic_write import write_bytes_atomically

SHOT_GROUPS = ("many", "medium", "few")
RESULT_FILE = "result.json"
PER_CLASS_FILE = "per_class_accuracy.csv"  # beside the result file: test accuracy and train count per class
CONFUSION_FILE = "confusion_matrix.png"  # beside the result file: the row-normalised test confusion matrix
GALLERY_FILE = "mask_gallery.png"  # the SMCL mask gallery a trial draws beside its result
TRIAL_FILES = (RESULT_FILE, PER_CLASS_FILE, CONFUSION_FILE, GALLERY_FILE)  # what a trial's run carries
SUMMARY_NAMES = ("top1", "balanced_accuracy", *SHOT_GROUPS)
# The share of background-only test images (salient box or object erased) predicted as a many-shot
# class: what SMCL claims to lower (SMCL.md, "What the mechanism predicts"). In `test` and `last_test`.
BACKGROUND_HEAD_SHARE = "background_head_share"


def uniform_head_share(group_sizes: dict[str, int]) -> float:
    """The background head share of uniform guessing: the many-shot classes' share of all classes."""
    total = sum(group_sizes.values())
    return group_sizes["many"] / total if total else math.nan


class TrialState(StrEnum):
    """How a trial ended, the one vocabulary of searcher, tracker and leaderboard."""

    COMPLETED = "completed"  # trained every epoch it was given
    PRUNED = "pruned"  # stopped early by the scheduler (or interrupted and never resumed)
    FAILED = "failed"  # a non-finite loss, an error, a refused configuration
    RUNNING = "running"  # not ended yet


EPOCH_METRICS = (
    "epoch",
    "loss",
    "loss_mce",
    "loss_msc",
    "train_accuracy",
    "masked_step_fraction",
    "masked_area",
    "masked_empty_fraction",
    "masked_full_fraction",
    "lr",
    "epoch_seconds",
    "images_per_second",
    "gpu_memory_peak_mib",
    "gpu_memory_reserved_mib",
    *(f"val_{name}" for name in SUMMARY_NAMES),
)
FINAL_METRICS = (
    "epochs_completed",
    "best_epoch",
    "trial_failed",
    *(f"test_{name}" for name in SUMMARY_NAMES),
    *(f"last_test_{name}" for name in SUMMARY_NAMES),
    f"test_{BACKGROUND_HEAD_SHARE}",
    f"last_test_{BACKGROUND_HEAD_SHARE}",
    *(f"selected_val_{name}" for name in SUMMARY_NAMES),
    *(f"{name}_classes" for name in SHOT_GROUPS),
)
EPOCHS_PLANNED = "epochs_planned"  # in every report of a study's trial: the epochs its config asks for
NODE_ID = "node_id"  # in every report of a study's trial: the Ray node it runs on
FUSED_GROUP = "fused_group"  # in a fused member's reports: its group and slot ("g2/1")


@dataclass(frozen=True)
class TrialEnd:
    """The end-of-trial protocol: what a trial's last report carries beside its final metrics, and
    so what the searcher, the tracker and the progress read to tell how the trial ended."""

    epochs_completed: int
    failed: bool = False
    reason: str = ""
    epochs_planned: float = math.inf  # a study's trainable adds it to every report; unknown: never cut short

    MARKER: ClassVar[str] = "epochs_completed"  # the report that carries it is a trial's last

    def entries(self) -> dict[str, Any]:
        """As entries of the report (`epochs_planned` only where known)."""
        entries: dict[str, Any] = {
            self.MARKER: self.epochs_completed,
            "trial_failed": float(self.failed),
            "failure_reason": self.reason,
        }
        if math.isfinite(self.epochs_planned):
            entries[EPOCHS_PLANNED] = self.epochs_planned
        return entries

    @classmethod
    def of(cls, report: dict[str, Any] | None) -> TrialEnd | None:
        """The end a report carries; None for a report that is not a trial's last."""
        if not report or cls.MARKER not in report:
            return None
        return cls(
            epochs_completed=report[cls.MARKER],
            failed=bool(report.get("trial_failed")),
            reason=str(report.get("failure_reason") or ""),
            epochs_planned=report.get(EPOCHS_PLANNED, math.inf),
        )

    def outcome(self) -> tuple[TrialState, str | None]:
        if self.failed:
            return TrialState.FAILED, self.reason or "failed"
        if self.epochs_completed >= self.epochs_planned:
            return TrialState.COMPLETED, None
        return TrialState.PRUNED, None


FINAL_MARKER = TrialEnd.MARKER


@dataclass
class TrialResult:
    """What a trial ends with. Test metrics are those of the epoch selected on validation."""

    status: str  # TrialState.COMPLETED or TrialState.FAILED
    reason: str | None
    epochs_completed: int
    best_epoch: int | None
    validation: dict[str, float]
    test: dict[str, float]
    last_test: dict[str, float]  # the last epoch's test metrics (published results are often these)
    test_per_class_accuracy: list[float]
    test_confusion: list[list[int]]
    group_sizes: dict[str, int]
    train_counts: list[int]
    class_names: list[str]
    history: list[dict[str, float]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def final_metrics(self) -> dict[str, Any]:
        """The end-of-trial entries of the last report: scalars, and the failure reason."""
        metrics: dict[str, Any] = {f"test_{name}": value for name, value in self.test.items()}
        metrics.update({f"last_test_{name}": value for name, value in self.last_test.items()})
        metrics.update({f"selected_val_{name}": value for name, value in self.validation.items()})
        metrics.update({f"{name}_classes": size for name, size in self.group_sizes.items()})
        end = TrialEnd(self.epochs_completed, failed=self.status != TrialState.COMPLETED, reason=self.reason or "")
        metrics.update(end.entries())
        metrics["best_epoch"] = -1 if self.best_epoch is None else self.best_epoch
        return metrics


def _plain(value: Any) -> Any:
    """NaN (an empty shot group, a class without images) as null: the file stays standard JSON."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_plain(item) for item in value]
    return value


def _float_or_nan(value: Any) -> Any:
    if value is None:
        return math.nan
    if isinstance(value, dict):
        return {key: _float_or_nan(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_float_or_nan(item) for item in value]
    return value


def write_result(result: TrialResult, folder: Path) -> Path:
    """`folder/result.json`, written atomically."""
    folder.mkdir(parents=True, exist_ok=True)
    return write_bytes_atomically(folder / RESULT_FILE, json.dumps(_plain(result.to_dict()), allow_nan=False).encode())


def read_result(path: Path) -> TrialResult:
    raw = json.loads(Path(path).read_text())
    known = {item.name for item in fields(TrialResult)}
    values = {key: value for key, value in raw.items() if key in known}
    values.setdefault("last_test", {})
    for key in ("validation", "test", "last_test", "test_per_class_accuracy", "history"):
        values[key] = _float_or_nan(values.get(key))
    return TrialResult(**values)


def outcome(last_report: dict[str, Any] | None, error: bool = False) -> tuple[TrialState, str | None]:
    """How a trial ended, with the reason of a failure, from its last report.

    A trial that never sent its final report was stopped early (or interrupted): PRUNED.
    """
    if error:
        return TrialState.FAILED, "the trial raised an error (see its Ray log)"
    end = TrialEnd.of(last_report)
    return (TrialState.PRUNED, None) if end is None else end.outcome()


def objective_value(metrics: Mapping[str, Any], metric: str) -> float:
    """A trial's validation objective in its metrics or its last report: the selected epoch's
    (`selected_<metric>`, once the trial has ended), else the last epoch's (`<metric>`); NaN without either."""
    value = metrics.get(f"selected_{metric}", metrics.get(metric))
    try:
        return math.nan if value is None else float(value)
    except (TypeError, ValueError):
        return math.nan


# Objectives equal to this many decimals are ties, decided by the trial's number or name: a balanced
# accuracy is a mean of per-class shares, and two trials right on the same images can differ in
# the last bit (0.5333333333333334 against 0.5333333333333333), which decided the configuration
# a study confirmed.
OBJECTIVE_DECIMALS = 9


def tie_rounded(value: float) -> float:
    """An objective as compared with another's: rounded to OBJECTIVE_DECIMALS."""
    return round(value, OBJECTIVE_DECIMALS)
