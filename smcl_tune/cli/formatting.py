"""How the CLI writes accuracies and durations."""

from __future__ import annotations

import math
import shutil
import sys


def format_accuracy(value: float | None) -> str:
    """A fraction as a percentage; a missing value (an empty shot group) as n/a."""
    return "n/a" if value is None or math.isnan(value) else f"{100 * value:.1f}"


def format_objective(value: float | None) -> str:
    """A validation accuracy (every objective is one) in %, as the leaderboard writes it."""
    return "–" if value is None or math.isnan(value) else f"{round(100 * value, 9):.1f}%"


def format_duration(seconds: float | None) -> str:
    if seconds is None or math.isnan(seconds):
        return "unknown"
    seconds = round(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    return f"{minutes}m{seconds:02d}s" if minutes else f"{seconds}s"


def format_rate(images_per_second: float) -> str:
    return "" if math.isnan(images_per_second) else f"{images_per_second:.0f} images/s"


def format_memory(mebibytes: float) -> str:
    """GPU memory; empty on a CPU, where the trial reports none."""
    return "" if math.isnan(mebibytes) or mebibytes <= 0 else f"GPU {mebibytes / 1024:.1f} GiB"


def terminal_width() -> int | None:
    """The terminal's width in columns when stdout is one (COLUMNS overrides it); None for a pipe or a file."""
    return shutil.get_terminal_size().columns if sys.stdout.isatty() else None
