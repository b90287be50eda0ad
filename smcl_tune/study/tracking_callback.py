"""A Ray Tune callback, run in the driver, that writes every trial to MLflow through StudyTracker."""

from __future__ import annotations

import time
from typing import Any

from ray.tune import Callback

from smcl_tune.config import trial_config_from_dict
from smcl_tune.study.searcher import TRIAL_KEY, TRIAL_NAME, TRIAL_ROLE, trial_outcome
from smcl_tune.study.trainable import trial_params
from smcl_tune.study_config import apply_overrides
from smcl_tune.tracking import StudyTracker, decode_list, plain_param_names

# Entries of a result that are not metrics (strings, lists, Ray's bookkeeping).
_NOT_METRICS = {"failure_reason", "test_per_class_accuracy", "test_confusion", "train_counts", "class_names", "node_id", "done", "trial_id", "date",
                "hostname", "node_ip", "pid", "timestamp", "time_this_iter_s", "time_total_s",
                "time_since_restore", "iterations_since_restore", "checkpoint_dir_name", "config",
                "should_checkpoint"}


class TrackingCallback(Callback):
    """Creates the trial runs, logs epoch metrics, final metrics and artifacts, ends the runs."""

    def __init__(self, tracker_arguments: dict[str, Any], base_trial: dict[str, Any]) -> None:
        self.tracker_arguments = tracker_arguments
        self.base_trial = base_trial
        self._tracker: StudyTracker | None = None
        self._started: dict[str, float] = {}

    def __getstate__(self) -> dict[str, Any]:  # Ray pickles callbacks with the experiment state
        return {**self.__dict__, "_tracker": None}

    @property
    def tracker(self) -> StudyTracker:
        if self._tracker is None:
            self._tracker = StudyTracker(**self.tracker_arguments)
        return self._tracker

    def _run_id(self, trial) -> str:
        config = trial.config
        params = trial_params(config)
        resolved = trial_config_from_dict(apply_overrides(self.base_trial, params))
        data = resolved.data
        tags = {"smcl.imbalance_factor": f"{data.imbalance_factor:g}", "smcl.many_above": str(data.many_above),
                "smcl.few_below": str(data.few_below), "smcl.method": resolved.method.name}
        return self.tracker.trial_run(config[TRIAL_KEY], config[TRIAL_NAME], config[TRIAL_ROLE],
                                      plain_param_names(params), resolved.model_dump(mode="json"), tags)

    def on_trial_start(self, iteration: int, trials: list, trial, **info: Any) -> None:
        self._run_id(trial)
        self._started.setdefault(trial.trial_id, time.time())

    def on_trial_result(self, iteration: int, trials: list, trial, result: dict[str, Any], **info: Any) -> None:
        run_id = self._run_id(trial)
        self.tracker.note_node(run_id, str(result.get("node_id", "")))
        step = int(result.get("epoch", result.get("training_iteration", 1) - 1))
        stamp = int(time.time() * 1000)
        metrics = {key: value for key, value in result.items() if key not in _NOT_METRICS}
        metrics["trial_seconds"] = result.get("time_total_s", 0.0)
        if "epochs_completed" in result:
            self.tracker.log_final(
                run_id, metrics, decode_list(result.get("test_per_class_accuracy")),
                decode_list(result.get("test_confusion")), decode_list(result.get("class_names")),
                decode_list(result.get("train_counts")), step, stamp,
            )
        else:
            self.tracker.log_epoch(run_id, metrics, step, stamp)

    def _end(self, trial, error: bool) -> None:
        outcome, reason = trial_outcome(trial.last_result, error)
        self.tracker.end_trial(self._run_id(trial), outcome, reason)

    def on_trial_complete(self, iteration: int, trials: list, trial, **info: Any) -> None:
        self._end(trial, error=False)

    def on_trial_error(self, iteration: int, trials: list, trial, **info: Any) -> None:
        self._end(trial, error=True)
