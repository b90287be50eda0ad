"""What `smcl-tune run` prints when its output is not a terminal (CI, nohup, a pipe): plain lines,
one per finished epoch at most every few seconds, and one per trial that ends."""

from __future__ import annotations

import time

from smcl_tune.cli.formatting import format_duration, format_memory, format_objective, format_rate
from smcl_tune.results import TrialState
from smcl_tune.store.progress import StudyProgress, TrialProgress


def study_summary(progress: StudyProgress) -> str:
    counts = progress.counts()
    return (
        f"{counts[TrialState.COMPLETED]} done, {counts[TrialState.PRUNED]} stopped early, "
        f"{counts[TrialState.FAILED]} failed, {len(progress.running)} running, {progress.to_go} to go; "
        f"elapsed {format_duration(progress.elapsed())}, ETA {format_duration(progress.eta_seconds())}"
    )


def best_summary(progress: StudyProgress) -> str:
    """The best validation objective so far, per condition (a trial's name carries its condition)."""
    best = sorted(progress.best().items())
    parts = [f"{format_objective(trial.objective)} ({trial.name})" for _, trial in best]
    return f"best {progress.metric}: " + ("; ".join(parts) if parts else "none yet")


def _clock() -> str:
    return time.strftime("%H:%M:%S")


class PlainView:
    def __init__(self, study: str, min_interval_s: float = 5.0) -> None:
        self.study = study
        self.min_interval_s = min_interval_s
        self._last_epoch_line = -float("inf")

    def started(self, progress: StudyProgress) -> None:
        earlier = progress.ended()
        resumed = f", {earlier} ended in an earlier run" if earlier else ""
        planned = progress.planned_trials
        print(f"{_clock()} study {self.study}: {planned} trial{'s' * (planned != 1)} planned{resumed}", flush=True)

    def epoch_ended(self, progress: StudyProgress, trial: TrialProgress) -> None:
        now = time.monotonic()
        if now - self._last_epoch_line < self.min_interval_s:
            return
        self._last_epoch_line = now
        speed = ", ".join(
            part for part in (format_rate(trial.images_per_second), format_memory(trial.gpu_memory_mib)) if part
        )
        where = f" (fused group {trial.fused_group})" if trial.fused_group else ""
        print(
            f"{_clock()} {trial.name}{where}: epoch {trial.epochs_done}/{trial.epochs_planned}, "
            f"{progress.metric} {format_objective(trial.objective)}"
            + (f", {speed}" if speed else "")
            + f" | {study_summary(progress)}",
            flush=True,
        )

    def trial_ended(self, progress: StudyProgress, trial: TrialProgress) -> None:
        print(f"{_clock()} {trial.describe()} | {study_summary(progress)} | {best_summary(progress)}", flush=True)
