"""A Ray Tune callback, run in the driver, that writes every trial to MLflow through StudyTracker.

It logs the metric names the trial reports (`results.EPOCH_METRICS`, `results.FINAL_METRICS`)
and nothing else of Ray's result dicts; a trial's end-of-trial files are logged as the trial wrote
them beside its last checkpoint (`results.TRIAL_FILES`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ray.tune import Callback, Checkpoint

from smcl_tune.results import (
    EPOCH_METRICS,
    FINAL_METRICS,
    FUSED_GROUP,
    GALLERY_FILE,
    NODE_ID,
    RESULT_FILE,
    TRIAL_FILES,
    TrialEnd,
    TrialState,
    outcome,
)
from smcl_tune.study.object_store_outage import ObjectStoreDown, waiting_for_the_store
from smcl_tune.study.outage_wait import DEFAULT_OUTAGE_TIMEOUT_S as OUTAGE_S
from smcl_tune.study.outage_wait import Outage, defer, deferred_stop
from smcl_tune.study.retry import retry_while_locked
from smcl_tune.study.tracking_outage import wait_for_tracking_server
from smcl_tune.study.trial_spec import spec_of
from smcl_tune.study.whole_file_filesystem import is_local
from smcl_tune.studyfile.conditions import plain_param_names
from smcl_tune.tracking.tags import (
    ARCHITECTURE_TAG,
    CONDITION_TAG,
    CONFIGURATION_TAG,
    EPOCHS_TAG,
    FEW_BELOW_TAG,
    IMBALANCE_FACTOR_TAG,
    MANY_ABOVE_TAG,
    METHOD_TAG,
    N_MAX_TAG,
    PROFILE_TAG,
    SEED_TAG,
    SOURCE_TAG,
    SUBSET_PROTOCOL_TAG,
    SUBSET_SEED_TAG,
)
from smcl_tune.tracking.writer import StudyTracker

log = logging.getLogger(__name__)

LOGGED_METRICS = frozenset(EPOCH_METRICS) | frozenset(FINAL_METRICS)
STEP_MARKER = "trial_seconds"  # logged with every report: the steps a run already has


class TrackingCallback(Callback):
    """Creates the trial runs, logs their metrics and result files, ends the runs."""

    def __init__(
        self, tracker_arguments: dict[str, Any], outage_timeout_s: float = OUTAGE_S, store_outage: Outage | None = None
    ) -> None:
        self.tracker_arguments = tracker_arguments
        self.outage_timeout_s = outage_timeout_s
        self.store_outage = store_outage  # a study on an object store: its checkpoints are read through an outage
        self._tracker: StudyTracker | None = None

    def __getstate__(self) -> dict[str, Any]:  # Ray pickles callbacks with the experiment state
        return {**self.__dict__, "_tracker": None}

    @property
    def tracker(self) -> StudyTracker:
        if self._tracker is None:
            self._tracker = StudyTracker(**self.tracker_arguments)
        return self._tracker

    def _run_id(self, trial) -> str:
        spec = spec_of(trial.config)
        params = spec.params
        tags = {}
        resolved = spec.config
        if resolved is None:  # the trial itself ends FAILED with this reason
            logged_config: dict[str, Any] = {"invalid": spec.refusal, "params": params}
        else:
            logged_config = resolved.model_dump(mode="json")
            data = resolved.data
            factor = data.subset_imbalance_factor
            tags = {
                IMBALANCE_FACTOR_TAG: "published" if factor is None else f"{factor:g}",
                MANY_ABOVE_TAG: str(data.many_above),
                FEW_BELOW_TAG: str(data.few_below),
                METHOD_TAG: resolved.method.name,
                SEED_TAG: str(resolved.training.seed),
                SOURCE_TAG: data.source,
                ARCHITECTURE_TAG: resolved.model.architecture,
                SUBSET_PROTOCOL_TAG: data.subset_protocol,
                N_MAX_TAG: "default" if data.n_max is None else str(data.n_max),
                PROFILE_TAG: data.profile,
                SUBSET_SEED_TAG: str(data.subset_seed),
                EPOCHS_TAG: str(resolved.training.epochs),
            }
        tags.update({CONDITION_TAG: spec.condition.label, CONFIGURATION_TAG: spec.configuration})
        return self.tracker.trial_run(
            spec.key, spec.run_name, spec.role, plain_param_names(params), logged_config, tags
        )

    def _write(self, action, what: str) -> None:
        """One write to MLflow: a store a reader holds locked is waited for, never fatal; a tracking
        server that does not answer is waited for up to tracking.outage_timeout_s."""
        timeout = getattr(self, "outage_timeout_s", OUTAGE_S)  # a callback pickled by an older version lacks it
        wait_for_tracking_server(lambda: retry_while_locked(action, what), what, self.tracker_arguments["uri"], timeout)

    def on_trial_start(self, iteration: int, trials: list, trial, **info: Any) -> None:
        self._write(lambda: self._run_id(trial), f"MLflow run of {trial.trial_id}")

    def on_trial_result(self, iteration: int, trials: list, trial, result: dict[str, Any], **info: Any) -> None:
        step = int(result.get("epoch", result.get("training_iteration", 1) - 1))
        metrics = {key: value for key, value in result.items() if key in LOGGED_METRICS}
        metrics["trial_seconds"] = result.get("time_total_s", 0.0)
        # One timestamp for every attempt: a write whose answer was lost (the server stopped after
        # it committed) and is sent again is then the same metric, which MLflow's store keeps once.
        timestamp_ms = int(time.time() * 1000)

        def log_result() -> None:
            run_id = self._run_id(trial)
            self.tracker.note_node(run_id, str(result.get(NODE_ID, "")))
            self.tracker.note_group(run_id, str(result.get(FUSED_GROUP, "")))
            logged = metrics
            if step <= self.tracker.last_logged_step(run_id, STEP_MARKER):
                # An epoch that a resumed trial trains again (its checkpoint was older than its last
                # logged epoch): its epoch metrics stay as first logged; only a final report's are new.
                logged = {key: value for key, value in metrics.items() if key in FINAL_METRICS}
            if logged:
                self.tracker.log_metrics(run_id, logged, step, timestamp_ms)

        self._write(log_result, f"metrics of {trial.trial_id}")

    def on_checkpoint(self, iteration: int, trials: list, trial, checkpoint: Checkpoint, **info: Any) -> None:
        if TrialEnd.of(trial.last_result) is None:
            return  # an epoch's checkpoint: the result file comes with the trial's last one
        files = self._checkpoint_files(checkpoint, TRIAL_FILES, f"result files of {trial.trial_id}")
        if files is None:
            return
        if RESULT_FILE not in files:
            log.warning("trial %s: its last checkpoint holds no %s", trial.trial_id, RESULT_FILE)
            return
        self._write(lambda: self.tracker.log_files(self._run_id(trial), files), f"result files of {trial.trial_id}")

    def _checkpoint_files(self, checkpoint: Checkpoint, names: tuple[str, ...], what: str) -> dict[str, bytes] | None:
        """The files of `names` in a persisted checkpoint. An object store that does not answer is
        waited for; past its timeout (None) the study stops at the searcher's next call, as Ray
        would take the error for this trial's (outage_wait.defer)."""

        def read() -> dict[str, bytes]:
            with _checkpoint_folder(checkpoint) as folder:
                return _files(Path(folder), names)

        if _object_store_down():  # already waited for in vain: no second wait
            return None
        try:
            return waiting_for_the_store(getattr(self, "store_outage", None), read, what)
        except ObjectStoreDown as down:
            defer(down)
            return None

    def _log_gallery(self, trial) -> None:
        """The mask gallery of a trial that ended without its final checkpoint (stopped early, failed)."""
        checkpoint = getattr(trial, "checkpoint", None)  # Ray's latest, persisted checkpoint
        if checkpoint is None:
            return
        files = self._checkpoint_files(checkpoint, (GALLERY_FILE,), f"mask gallery of {trial.trial_id}")
        if files:
            self._write(lambda: self.tracker.log_files(self._run_id(trial), files), f"mask gallery of {trial.trial_id}")

    def _end(self, trial, error: bool) -> None:
        if _object_store_down():  # the study stops: the run is left interrupted, not ended without its files
            return
        state, reason = outcome(trial.last_result, error)
        if state != TrialState.COMPLETED:
            self._log_gallery(trial)
        self._write(lambda: self.tracker.end_trial(self._run_id(trial), state, reason), f"end of {trial.trial_id}")

    def on_trial_complete(self, iteration: int, trials: list, trial, **info: Any) -> None:
        self._end(trial, error=False)

    def on_trial_error(self, iteration: int, trials: list, trial, **info: Any) -> None:
        self._end(trial, error=True)


def _object_store_down() -> bool:
    return isinstance(deferred_stop(), ObjectStoreDown)


@contextmanager
def _checkpoint_folder(checkpoint: Checkpoint) -> Iterator[str]:
    """A persisted checkpoint's folder: read in place on this node's disk (Ray would copy a checkpoint
    on any filesystem but its plain local one, weights included, to a temporary folder first)."""
    if is_local(checkpoint.filesystem):
        yield checkpoint.path
        return
    with checkpoint.as_directory() as folder:
        yield folder


def _files(folder: Path, names: tuple[str, ...]) -> dict[str, bytes]:
    """The files of `names` that the trial wrote in `folder`, as they are."""
    return {name: (folder / name).read_bytes() for name in names if (folder / name).is_file()}
