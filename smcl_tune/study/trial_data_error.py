"""Data that a trial cannot read (a missing or corrupt dataset, an unreadable image folder) is not a
property of that trial's hyperparameters: every trial would repeat it. The trial reports it instead
of failing, and the driver stops the study on that report with one line, before the searcher or
MLflow record the trial's end, so the trial runs again once the data is fixed and the same command
resumes the study."""

from __future__ import annotations

import math
import socket
from typing import Any

from ray.tune import Callback

from smcl_tune.errors import StudyStop
from smcl_tune.study.object_store_outage import STORE_DOWN, ObjectStoreDown
from smcl_tune.studyfile.schema import OBJECTIVE_METRICS

DATA_ERROR = "data_error"  # the report's key: the error's message


class TrialDataError(StudyStop):
    """A trial could not read the study's data."""


def data_error_report(error: Exception) -> dict[str, Any]:
    """The one report of a trial that could not read its data."""
    return {**dict.fromkeys(OBJECTIVE_METRICS, math.nan), DATA_ERROR: f"{error} (on {socket.gethostname()})"}


class StopOnDataError(Callback):
    """First among the study's callbacks: a data error, or an object store that a trial waited for
    in vain (object_store_outage.py), ends the study before any other callback records it."""

    def on_trial_result(self, iteration: int, trials: list, trial, result: dict[str, Any], **info: Any) -> None:
        store_down = result.get(STORE_DOWN)
        if store_down:
            raise ObjectStoreDown(store_down)
        message = result.get(DATA_ERROR)
        if message:
            raise TrialDataError(
                f"a trial could not read the study's data: {message}; every trial would fail the same way, so the "
                "study stopped (no trial was recorded as failed): fix the data and run the same command again"
            )
