"""A Ray Tune callback, run in the driver, that feeds the study's progress to whoever watches it.

Ray pickles callbacks with the experiment state and restores them on resume, so the callback
holds no reference to the progress: it feeds the one `reporting_to` has made active in this process.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from ray.tune import Callback

from smcl_tune.results import outcome
from smcl_tune.store.progress import StudyProgress, trial_key
from smcl_tune.study.trial_spec import spec_of

_active: StudyProgress | None = None


@contextmanager
def reporting_to(progress: StudyProgress) -> Iterator[StudyProgress]:
    global _active
    _active = progress
    try:
        yield progress
    finally:
        _active = None


def _identity(trial) -> dict[str, str]:
    """The trial as StudyProgress's methods take it (key, name, condition, role)."""
    spec = spec_of(trial.config)
    label = spec.condition.label
    return {"key": trial_key(label, spec.run_name), "name": spec.run_name, "condition": label, "role": spec.role}


def error_summary(trial) -> str:
    """The last line of a failed trial's error: the exception, without Ray's traceback."""
    error = trial.get_error()
    lines = [line.strip() for line in str(error or "").splitlines() if line.strip()]
    return lines[-1] if lines else "the trial raised an error (see its Ray log)"


class ProgressCallback(Callback):
    def on_trial_start(self, iteration: int, trials: list, trial, **info: Any) -> None:
        if _active is not None:
            _active.trial_started(**_identity(trial))

    def on_trial_result(self, iteration: int, trials: list, trial, result: dict[str, Any], **info: Any) -> None:
        if _active is not None and "epoch" in result:
            _active.epoch_ended(result=result, **_identity(trial))

    def on_trial_complete(self, iteration: int, trials: list, trial, **info: Any) -> None:
        if _active is not None:
            state, reason = outcome(trial.last_result)
            _active.trial_ended(state=state, reason=reason, **_identity(trial))

    def on_trial_error(self, iteration: int, trials: list, trial, **info: Any) -> None:
        if _active is not None:
            state, _ = outcome(trial.last_result, error=True)
            _active.trial_ended(state=state, reason=error_summary(trial), **_identity(trial))
