"""A trial's artifacts beside its metrics: the per-class accuracy table and the confusion matrix."""

from __future__ import annotations

import csv
import io
import math

from matplotlib.figure import Figure

from smcl_tune.results import CONFUSION_FILE, PER_CLASS_FILE, TrialResult


def per_class_csv(class_names: list[str], train_counts: list[int], accuracy: list[float]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["class_id", "class_name", "train_count", "test_accuracy"])
    for class_id, (name, count, value) in enumerate(zip(class_names, train_counts, accuracy)):
        writer.writerow([class_id, name, count, "" if value is None or math.isnan(value) else f"{value:.6f}"])
    return buffer.getvalue()


def confusion_png(confusion: list[list[int]], class_names: list[str]) -> bytes:
    """Row-normalised confusion matrix (true class down, predicted across), as PNG bytes."""
    size = len(confusion)
    rows = [[cell / max(1, sum(row)) for cell in row] for row in confusion]
    figure = Figure(figsize=(min(12, 2 + 0.4 * size), min(11, 1.5 + 0.4 * size)))
    axes = figure.subplots()
    image = axes.imshow(rows, cmap="Blues", vmin=0, vmax=1)
    axes.set_xlabel("predicted class")
    axes.set_ylabel("true class")
    if size <= 30:
        axes.set_xticks(range(size), class_names, rotation=90, fontsize=7)
        axes.set_yticks(range(size), class_names, fontsize=7)
    figure.colorbar(image, ax=axes, fraction=0.046)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    return buffer.getvalue()


def trial_files(result: TrialResult) -> dict[str, str | bytes]:
    """The files a finished trial's run carries (none for a trial that never validated)."""
    files: dict[str, str | bytes] = {}
    if result.test_per_class_accuracy:
        files[PER_CLASS_FILE] = per_class_csv(result.class_names, result.train_counts, result.test_per_class_accuracy)
    if result.test_confusion:
        files[CONFUSION_FILE] = confusion_png(result.test_confusion, result.class_names)
    return files
