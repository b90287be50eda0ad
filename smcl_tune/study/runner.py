"""Run or resume a study: every check first, then the wiring (Ray, the Tuner, MLflow's parent run,
the progress) and the fit. Ray Tune schedules, Optuna samples, ASHA stops, MLflow records."""

from __future__ import annotations

import logging
import os
import re
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from ray import tune

from smcl_tune.atomic_write import is_storage_full
from smcl_tune.errors import ConfigError, StudyUnavailable, first_line
from smcl_tune.store.database import check_database, optuna_storage
from smcl_tune.store.database_lock import DatabaseLock
from smcl_tune.store.database_record import delete_optuna_studies, discard_study
from smcl_tune.store.empty_store import start_store
from smcl_tune.store.health_check import check_study_stores, check_tracking_store
from smcl_tune.store.lock import StudyLock
from smcl_tune.store.object_store import check_object_store
from smcl_tune.store.paths import StudyPaths
from smcl_tune.store.probes import holds_experiment_state
from smcl_tune.store.progress import ENDED_STATES, ProgressListener, StudyProgress, trial_key
from smcl_tune.store.sqlite_copy import sqlite_path
from smcl_tune.store.sqlite_reader import open_run_reader
from smcl_tune.store.status import trial_progress
from smcl_tune.store.study_record import check_study_record, write_study_record
from smcl_tune.store.trial_record import TrialRecord
from smcl_tune.study.cluster import (
    LocalStorageGuard,
    check_cluster_storage,
    check_local_resources,
    cluster_hosts,
    local_storage_message,
    storage_is_local,
    warn_unplaceable,
)
from smcl_tune.study.database_outage import stored
from smcl_tune.study.fused_groups import fused_groups
from smcl_tune.study.job_storage import check_job_storage
from smcl_tune.study.object_store_outage import hide_unreachable_store_tracebacks
from smcl_tune.study.outage_wait import stopping_on_study_stop, stops_the_study
from smcl_tune.study.parent_run import study_tags
from smcl_tune.study.progress_callback import reporting_to
from smcl_tune.study.ray_hints import without_rays_own_advice
from smcl_tune.study.ray_session import check_cluster_answers, cluster_address, init_ray, leave_ray
from smcl_tune.study.search_plan import expected_trials
from smcl_tune.study.staging_copy_race import without_staging_copy_races
from smcl_tune.study.storage_space import raise_if_storage_full, stopping_when_full
from smcl_tune.study.termination import sigint_restored_after, sigterm_as_ctrl_c
from smcl_tune.study.tracking_outage import quiet_mlflow_retries, wait_for_tracking_server
from smcl_tune.study.tune_settings import tune_settings
from smcl_tune.study.tuner import new_tuner, restored_tuner, study_store_outage, study_trainable
from smcl_tune.study.whole_state_saves import whole_experiment_state_saves
from smcl_tune.studyfile.study import Study
from smcl_tune.tracking.writer import StudyTracker, delete_study_runs

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Watching:
    """How a run is watched: who hears of its progress, and how much Ray itself prints
    (Tune's verbosity 0-2 and the level of Ray's loggers in the trials' processes)."""

    listener: ProgressListener | None = None
    ray_verbosity: int = 1
    ray_log_level: str = "INFO"


@dataclass
class StudyOutcome:
    name: str
    wall_seconds: float
    finished: bool
    paths: StudyPaths


def _prepare_state(study: Study, paths: StudyPaths, restart: bool) -> bool:
    """Discard the old state on restart, write the record; True when an earlier run can be resumed."""
    known = check_study_record(study, paths, restart)
    _remove_discarded(paths)
    resumable = known is not None and tune.Tuner.can_restore(paths.experiment_dir)
    if resumable and not holds_experiment_state(paths.experiment_dir):
        log.info(
            "study %s: its first run was stopped before Ray saved its state; Ray's experiment starts anew "
            "(the Optuna trials it had asked for are taken up)",
            study.name,
        )
        resumable = False
    if restart:
        if paths.database_url is not None:
            discarded = discard_study(paths.database_url, study.name)
            log.info("restart: deleted %d Optuna studies of %s in %s", discarded, study.name, paths.record_place)
            if not paths.remote and paths.record_dir.is_dir() and not paths.record_dir.is_symlink():
                _discard(paths.record_dir)  # Ray's experiment of this study, in its storage folder
        elif paths.record_dir.exists():
            _discard(paths.record_dir)  # check_owned proved it is this study's, inside the storage
        optuna_file = sqlite_path(paths.optuna_url)
        if optuna_file is not None and optuna_file.exists():  # the study file's own, outside the folder
            delete_optuna_studies(paths.optuna_url, study.name)
        if paths.remote:
            log.warning(
                "--restart: the Ray results under %s are not deleted; they are overwritten", paths.experiment_dir
            )
        deleted = delete_study_runs(paths.tracking_uri, paths.experiment, study.name)
        if deleted:  # the study's own run counts among them
            log.info("restart: removed the earlier state of study %s (%d MLflow runs deleted)", study.name, deleted)
    write_study_record(study, paths)
    return resumable


def _aside_prefix(study_name: str) -> str:
    """The name, less the moving process's id, of a study's folder that --restart moved aside."""
    return f".{study_name}.discarded-"


def _remove_discarded(paths: StudyPaths) -> None:
    """The folders an earlier --restart of this study moved aside and was killed before it deleted
    them: this driver holds the study's lock, so no other is deleting them now."""
    leftover = re.compile(rf"{re.escape(_aside_prefix(paths.study_name))}\d+")
    if not paths.local_root.is_dir():
        return
    for folder in paths.local_root.iterdir():
        if leftover.fullmatch(folder.name) and folder.is_dir() and not folder.is_symlink():
            log.info("removing %s, left by a --restart of study %s that was stopped", folder, paths.study_name)
            shutil.rmtree(folder)


def _discard(folder: Path) -> None:
    """Delete a study's folder, first moved aside whole: a kill in the middle of the deletion leaves
    a hidden folder, not the study's without its record (which no later run would take for its own)."""
    aside = folder.with_name(f"{_aside_prefix(folder.name)}{os.getpid()}")
    try:
        folder.rename(aside)
    except OSError:  # a mount point, say: deleted where it is
        aside = folder
    shutil.rmtree(aside)


def run_study(
    study: Study, address: str | None = None, restart: bool = False, watching: Watching | None = None
) -> StudyOutcome:
    """Run the study, or resume it where an interrupted run of the same study file stopped."""
    watching = watching or Watching()
    started = time.time()
    paths = StudyPaths.of(study)
    field = "--address" if address else "RAY_ADDRESS"
    address = cluster_address(address)
    quiet_mlflow_retries()  # a tracking server's outage is waited for by tracking_outage, not by MLflow
    # Every refusal comes first: nothing is started or written before these pass.
    check_job_storage(study, paths)
    if paths.remote:
        check_object_store(paths.experiment_dir)
    check_database(paths.optuna_url)
    record = check_study_record(study, paths, restart)
    check_study_stores(study, paths, restart)
    check_tracking_store(study, paths, restart, record.get("fingerprint") if record else None)
    if address:
        check_cluster_answers(address, field)
    else:
        check_local_resources(study)
    lock = _study_lock(study, paths)
    with (
        lock,
        stopping_when_full(paths.driver_writes),
        stopping_on_study_stop(),
        stopping_when_lock_lost(lock),
    ):
        with _withdrawn_if_refused(lock):
            ours = init_ray(address, watching.ray_log_level, field)
        try:
            hosts = cluster_hosts()
            with _withdrawn_if_refused(lock):
                check_cluster_storage(study, paths, hosts)
            if address:
                warn_unplaceable(study)
            guard = LocalStorageGuard(hosts) if storage_is_local(paths) else None
            with sigterm_as_ctrl_c():  # after init_ray: Ray's handler would abort the driver
                finished = _run(study, paths, restart, guard, watching)
        finally:
            if ours:
                # Left before the run's last words are printed: what a trial worker prints while it
                # is torn down (Ray forwards it; once, a fatal abort's stack) never follows them.
                leave_ray()
        raise_if_storage_full()
        if guard is not None and guard.foreign is not None:
            raise ConfigError(local_storage_message(study, paths, sorted(guard.hosts | {guard.foreign})))
    return StudyOutcome(study.name, time.time() - started, finished, paths)


def _study_lock(study: Study, paths: StudyPaths) -> StudyLock | DatabaseLock:
    """A file lock in the storage folder, or the lock row of the study's database server."""
    if paths.database_url is None:
        return StudyLock(paths.lock_file, study.name)
    return DatabaseLock(paths.database_url, study.name, study.config.optuna.outage_timeout_s)


@contextmanager
def _withdrawn_if_refused(lock: StudyLock | DatabaseLock) -> Iterator[None]:
    """A refusal (ConfigError) after the lock was taken and before anything started leaves nothing
    of the run: not its lock file, nor the storage folder made for it."""
    try:
        yield
    except ConfigError:
        lock.withdraw()
        raise


@contextmanager
def stopping_when_lock_lost(lock: StudyLock | DatabaseLock) -> Iterator[None]:
    """A study its lock's heartbeat stopped (taken over, or the database gone for too long) ends
    with that one message, however Ray Tune took the interrupt."""
    try:
        yield
    except KeyboardInterrupt:
        if lock.lost is None:
            raise
        raise StudyUnavailable(lock.lost) from None
    if lock.lost is not None:
        raise StudyUnavailable(lock.lost)


def _ended_records(paths: StudyPaths, name: str, metric: str) -> list[TrialRecord]:
    """The study's trials its store records as ended (completed, pruned or failed)."""
    store = open_run_reader(paths.tracking_uri)
    parent = store.study_run(name)
    records = [TrialRecord.of_run(run, metric) for run in ([] if parent is None else store.trial_runs(parent))]
    return [record for record in records if record.state in ENDED_STATES]


def _add_earlier_trials(progress: StudyProgress, paths: StudyPaths, name: str) -> None:
    """The trials an earlier run of a resumed study ended, so that its counts and ETA are whole."""
    for record in _ended_records(paths, name, progress.metric):
        trial = trial_progress(record, False, progress.epochs_per_trial)
        progress.add(trial_key(record.condition, record.run_name), trial)


def _run(study: Study, paths: StudyPaths, restart: bool, guard: LocalStorageGuard | None, watching: Watching) -> bool:
    """Fit the study's Tuner, new or restored; True when every trial ended."""
    resumable = _prepare_state(study, paths, restart)
    tracker_arguments = {
        "uri": paths.tracking_uri,
        "experiment": paths.experiment,
        "study_name": study.name,
        "fingerprint": study.fingerprint(),
        "artifact_root": paths.artifact_root,
    }
    start_store(paths.tracking_uri)
    tracker = StudyTracker(**tracker_arguments)
    tracker.log_study(
        study.source.name if study.source else None,
        study.source_text(),
        study.display_dict(),
        study_tags(study, paths),
    )
    objective = study.config.objective
    progress = StudyProgress(
        objective.metric, objective.mode, study.planned_trials, study.max_epochs, watching.listener
    )
    if resumable:
        _add_earlier_trials(progress, paths, study.name)
    if watching.listener is not None:
        watching.listener.started(progress)
    status = "FAILED"
    finished = False
    try:
        store_outage = study_store_outage(study, paths)
        if store_outage is not None:
            hide_unreachable_store_tracebacks()  # the trials say that they wait for it
        with (
            fused_groups(study, store_outage) as directory,
            reporting_to(progress),
            tune_settings(),
            without_rays_own_advice(),
            without_staging_copy_races(),
            whole_experiment_state_saves(),
        ):
            trainable = study_trainable(study, watching.ray_log_level, directory, store_outage)
            if resumable:
                log.info("resuming study %s from %s", study.name, paths.experiment_dir)
                tuner = restored_tuner(study, paths, trainable, watching.ray_verbosity)
            else:
                tuner = new_tuner(study, paths, trainable, tracker_arguments, guard, watching.ray_verbosity)
            with sigint_restored_after():
                grid = tuner.fit()
        expected = stored(
            paths.database_url,
            study.config.optuna.outage_timeout_s,
            lambda: expected_trials(study, optuna_storage(paths.optuna_url)),
            "the study's Optuna trials",
        )
        finished = len(grid) >= expected and grid.num_terminated + grid.num_errors == len(grid)
        # Ray counts a trial its fit stopped on Ctrl-C as terminated (every trial of a fused study that
        # had started): the trials' own records say which ended
        finished = finished and len(_ended_records(paths, study.name, objective.metric)) >= expected
        status = "FINISHED" if finished else "KILLED"
    except BaseException as error:
        # Ctrl-C, SIGTERM, a stop that says why (a store, the data, a full disk): `stopped`, and the
        # same command resumes it; any other error is the driver's own, shown as it is: `failed`
        stopped = isinstance(error, (KeyboardInterrupt, SystemExit)) or is_storage_full(error) or stops_the_study(error)
        _end_study_run_quietly(tracker, "KILLED" if stopped else status)
        raise
    timeout_s = study.config.tracking.outage_timeout_s
    wait_for_tracking_server(lambda: tracker.finish(status), "the study run's end", paths.tracking_uri, timeout_s)
    return finished


def _end_study_run_quietly(tracker: StudyTracker, status: str) -> None:
    try:
        tracker.finish(status)
    except Exception as error:  # a store that is down or full: the next run of the study ends its run
        level = logging.DEBUG if is_storage_full(error) else logging.WARNING  # a full disk: its own message says it
        log.log(level, "could not mark the study run %s (%s)", status, first_line(error))
