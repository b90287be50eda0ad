"""Run or resume a study: Ray Tune schedules, Optuna samples, ASHA stops, MLflow records."""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
import ray
from ray import tune
from ray.tune.logger import CSVLoggerCallback, JsonLoggerCallback

from smcl_tune.errors import ConfigError
from smcl_tune.store.health_check import check_study_stores
from smcl_tune.store.lock import StudyLock
from smcl_tune.store.mlflow_reader import StudyStore, recorded_fingerprint
from smcl_tune.store.paths import StudyPaths
from smcl_tune.store.progress import ENDED_STATES, ProgressListener, StudyProgress
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
from smcl_tune.study.experiment_state_repair import restore_missing_checkpoints
from smcl_tune.study.job_storage import check_job_storage
from smcl_tune.study.progress_callback import ProgressCallback, reporting_to
from smcl_tune.study.retry import SQLITE_BUSY_TIMEOUT_S
from smcl_tune.study.scheduler import StudyScheduler
from smcl_tune.study.searcher import StudySearcher
from smcl_tune.study.storage_space import StorageWatch, raise_if_storage_full, stopping_when_full
from smcl_tune.study.tracking_callback import TrackingCallback
from smcl_tune.study.tracking_outage import quiet_mlflow_retries, stopping_when_server_down
from smcl_tune.study.trainable import train_study_trial
from smcl_tune.study.trial_spec import BASELINE, TrialSpec
from smcl_tune.study.tune_settings import tune_settings
from smcl_tune.study.whole_file_filesystem import remove_partial_copies, whole_file_storage
from smcl_tune.studyfile.conditions import plain_param_names
from smcl_tune.studyfile.study import Study, redact_uri
from smcl_tune.tracking.tags import (
    BASELINES_TAG,
    CONDITIONS_TAG,
    EPOCHS_PER_TRIAL_TAG,
    OBJECTIVE_METRIC_TAG,
    OBJECTIVE_MODE_TAG,
    OPTUNA_STORAGE_TAG,
    PLANNED_TRIALS_TAG,
    SEARCH_TAG,
)
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
    check_study_record(study, paths, restart)
    if restart:
        if paths.record_dir.exists():
            shutil.rmtree(paths.record_dir)  # check_owned proved it is this study's, inside the storage
        if paths.remote:
            log.warning(
                "--restart: the Ray results under %s are not deleted; they are overwritten", paths.experiment_dir
            )
        deleted = delete_study_runs(paths.tracking_uri, paths.experiment, study.name)
        log.info("restart: removed the earlier state of study %s (%d MLflow runs deleted)", study.name, deleted)
    resumable = paths.record_file.exists() and tune.Tuner.can_restore(paths.experiment_dir)
    write_study_record(study, paths)
    return resumable


def _cluster_address(address: str | None) -> str | None:
    return address or os.environ.get("RAY_ADDRESS")


def _init_ray(address: str | None, log_level: str = "INFO") -> None:
    if ray.is_initialized():
        return
    if address:
        log.info("joining the Ray cluster at %s", address)
        ray.init(address=address, log_to_driver=True, logging_level=log_level)
        return
    # Ray's servers listen on every interface (it offers no setting to keep them on the loopback).
    # A new local Ray requires its token by default (RAY_AUTH_MODE unset); its token file is made
    # this user's alone.
    if os.environ.get("RAY_AUTH_MODE", "token").lower() != "token":
        log.warning(
            "RAY_AUTH_MODE=%s: the local Ray accepts any client that can reach this machine's ports",
            os.environ["RAY_AUTH_MODE"],
        )
    # address="local": a new Ray of this run's own. Without it, ray.init() joins the last Ray that
    # `ray start` (or a test's cluster) left on this machine, whose CPUs may all be taken.
    ray.init(address="local", include_dashboard=False, log_to_driver=True, logging_level=log_level)
    make_private(Path(os.environ.get("RAY_AUTH_TOKEN_PATH", Path.home() / ".ray" / "auth_token")))


def make_private(path: Path) -> None:
    """Readable and writable by its owner only (Ray writes its token with the default umask)."""
    if path.is_file() and path.stat().st_mode & 0o077:
        path.chmod(0o600)
        log.info("%s: made readable by its owner only", path)


def check_tracking_store(study: Study, paths: StudyPaths, restart: bool) -> None:
    """A tracking store shared by several storages (a server) never mixes two studies of one name."""
    if restart:
        return
    known = recorded_fingerprint(paths.tracking_uri, paths.experiment, study.name)
    if known is not None and known != study.fingerprint():
        raise ConfigError(
            f"the MLflow experiment '{paths.experiment}' at {redact_uri(paths.tracking_uri)} already holds a study "
            f"named '{study.name}' from another study file (fingerprint {known}, this file {study.fingerprint()}); "
            "rename the study, or run with --restart to discard that one"
        )


def optuna_storage(url: str) -> optuna.storages.RDBStorage:
    """The study's Optuna storage; sqlite waits for a reader's lock instead of failing at once."""
    return optuna.storages.RDBStorage(url, engine_kwargs={"connect_args": {"timeout": SQLITE_BUSY_TIMEOUT_S}})


def optuna_study_names(study: Study) -> list[str]:
    """One Optuna study per condition: the study's name, with the condition's label after a slash."""
    return [f"{study.name}/{condition.label}" if condition.label else study.name for condition in study.conditions]


def _baselines(study: Study) -> list[TrialSpec]:
    """Every baseline, once per seed (its own, or the trial's), in every condition."""
    trials = []
    for condition in study.conditions:
        for baseline in study.config.baselines:
            if baseline.seeds is None:
                trials.append(
                    TrialSpec(condition, BASELINE, f"baseline-{baseline.name}", baseline.name, dict(baseline.overrides))
                )
                continue
            for seed in baseline.seeds:
                trials.append(
                    TrialSpec(
                        condition,
                        BASELINE,
                        f"baseline-{baseline.name}-s{seed}",
                        baseline.name,
                        {**baseline.overrides, "training.seed": seed},
                    )
                )
    return trials


def build_searcher(study: Study, storage: optuna.storages.BaseStorage) -> StudySearcher:
    """The study's searcher: per condition, baselines, then TPE seeded from the study's seed, then
    the confirmation runs."""
    objective = study.config.objective
    metrics, modes = [objective.metric], [objective.mode]
    if objective.secondary is not None:
        metrics.append(objective.secondary.metric)
        modes.append(objective.secondary.mode)
    strata = study.conditions
    # One TPE per condition, each seeded; with two objectives Optuna's TPESampler runs as MOTPE.
    startup = min(10, max(2, study.config.num_trials // 3))
    samplers = [
        optuna.samplers.TPESampler(seed=(study.config.seed + index) % 2**32, n_startup_trials=startup)
        for index in range(len(strata))
    ]
    confirm = study.config.confirm
    return StudySearcher(
        space=study.config.search,
        strata=strata,
        baselines=_baselines(study),
        num_trials=study.config.num_trials,
        metric=metrics if len(metrics) > 1 else metrics[0],
        mode=modes if len(modes) > 1 else modes[0],
        samplers=samplers,
        study_names=optuna_study_names(study),
        storage=storage,
        confirm=None if confirm is None else confirm.model_dump(),
        base_trial=_absolute_data_root(study.config.trial),
    )


def _scheduler(study: Study) -> StudyScheduler:
    """ASHA within each condition for search trials; baselines and confirmation runs never stop early."""
    settings = study.config.scheduler
    objective = study.config.objective
    asha = None
    if settings.type == "asha":
        asha = {
            "max_t": study.max_epochs,
            "grace_period": settings.grace_period,
            "reduction_factor": settings.reduction_factor,
        }
    return StudyScheduler(objective.metric, objective.mode, asha)


def expected_trials(study: Study, storage: optuna.storages.BaseStorage) -> int:
    """The trials a finished study has: the planned ones, less the confirmation runs of the
    top_k that fewer completed search trials of a condition leave out."""
    total = study.planned_trials
    confirm = study.config.confirm
    if confirm is not None:
        for name in optuna_study_names(study):
            completed = optuna.load_study(study_name=name, storage=storage).get_trials(
                deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)
            )
            total -= (confirm.top_k - min(confirm.top_k, len(completed))) * len(confirm.seeds)
    return total


def _absolute_data_root(trial: dict[str, Any]) -> dict[str, Any]:
    """Ray runs each trial in its own folder: a relative data root is taken from the driver's."""
    data = trial.get("data", {})
    root = data.get("root")
    if not root or Path(root).is_absolute():
        return trial
    return {**trial, "data": {**data, "root": str(Path(root).resolve())}}


def _trainable(study: Study, ray_log_level: str):
    resources = study.config.resources
    return tune.with_resources(
        tune.with_parameters(train_study_trial, ray_log_level=ray_log_level),
        {"cpu": resources.cpus, "gpu": resources.gpus},
    )


def _storage_filesystem(paths: StudyPaths):
    """A local storage gets whole-file writes (a killed driver leaves no truncated state); a URI, Ray's own."""
    return None if paths.remote else whole_file_storage()


def _new_tuner(
    study: Study,
    paths: StudyPaths,
    trainable,
    tracker_arguments: dict[str, Any],
    guard: LocalStorageGuard | None,
    ray_verbosity: int,
) -> tune.Tuner:
    searcher = build_searcher(study, optuna_storage(paths.optuna_url))
    return tune.Tuner(
        trainable,
        tune_config=tune.TuneConfig(
            search_alg=searcher,
            scheduler=_scheduler(study),
            num_samples=study.planned_trials,
            max_concurrent_trials=study.config.max_concurrent,
            reuse_actors=True,  # one worker process per slot: trials skip the interpreter and torch start-up
        ),
        run_config=tune.RunConfig(
            name=study.name,
            storage_path=paths.storage,
            storage_filesystem=_storage_filesystem(paths),
            failure_config=tune.FailureConfig(max_failures=2),
            checkpoint_config=tune.CheckpointConfig(num_to_keep=1),
            callbacks=[
                CSVLoggerCallback(),
                JsonLoggerCallback(),
                StorageWatch(paths.storage),
                TrackingCallback(tracker_arguments, study.config.tracking.outage_timeout_s),
                ProgressCallback(),
            ],
            stop=guard,
            verbose=ray_verbosity,
        ),
    )


def run_study(
    study: Study, address: str | None = None, restart: bool = False, watching: Watching | None = None
) -> StudyOutcome:
    """Run the study, or resume it where an interrupted run of the same study file stopped."""
    watching = watching or Watching()
    started = time.time()
    paths = StudyPaths.of(study)
    address = _cluster_address(address)
    quiet_mlflow_retries()  # a tracking server's outage is waited for by tracking_outage, not by MLflow
    # Every refusal comes first: nothing is started or written before these pass.
    check_job_storage(study, paths)
    check_study_record(study, paths, restart)
    check_study_stores(study, paths, restart)
    check_tracking_store(study, paths, restart)
    if not address:
        check_local_resources(study)
    with StudyLock(paths.lock_file, study.name), stopping_when_full(paths.storage), stopping_when_server_down():
        _init_ray(address, watching.ray_log_level)
        hosts = cluster_hosts()
        check_cluster_storage(study, paths, hosts)
        if address:
            warn_unplaceable(study)
        guard = LocalStorageGuard(hosts) if storage_is_local(paths) else None
        finished = _run(study, paths, restart, guard, watching)
        raise_if_storage_full()
        if guard is not None and guard.foreign is not None:
            raise ConfigError(local_storage_message(study, paths, sorted(guard.hosts | {guard.foreign})))
    return StudyOutcome(study.name, time.time() - started, finished, paths)


def _add_earlier_trials(progress: StudyProgress, paths: StudyPaths, name: str) -> None:
    """The trials an earlier run of a resumed study ended, so that its counts and ETA are whole."""
    store = StudyStore(paths.tracking_uri)
    parent = store.study_run(name)
    for run in [] if parent is None else store.trial_runs(parent):
        record = TrialRecord.of_run(run, progress.metric)
        if record.state in ENDED_STATES:
            progress.add(record.run_id, trial_progress(record, False, progress.epochs_per_trial))


def _apply_this_run(tuner: tune.Tuner, verbosity: int, outage_timeout_s: float) -> None:
    """Tuner.restore brings back the first run's RunConfig and takes no new one; its verbosity (and
    the tracking callback's outage timeout) are what this run asks for (there is no public setter),
    and Ray Tune's CSV and JSON trial logs are in it."""
    local = getattr(tuner, "_local_tuner", None)
    if local is not None:
        run_config = local.get_run_config()
        run_config.verbose = verbosity
        for callback in run_config.callbacks or []:
            if isinstance(callback, TrackingCallback):
                callback.outage_timeout_s = outage_timeout_s
        # a study started before tune_settings existed had Ray add these itself: they are not in its RunConfig
        for logger in (CSVLoggerCallback, JsonLoggerCallback):
            if not any(isinstance(callback, logger) for callback in run_config.callbacks or []):
                run_config.callbacks = [*(run_config.callbacks or []), logger()]


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
    tracker = StudyTracker(**tracker_arguments)
    objective = study.config.objective
    tracker.log_study(
        study.source.name if study.source else None,
        study.source_text(),
        study.display_dict(),
        {
            OBJECTIVE_METRIC_TAG: objective.metric,
            OBJECTIVE_MODE_TAG: objective.mode,
            OPTUNA_STORAGE_TAG: paths.optuna_url,
            SEARCH_TAG: json.dumps(list(plain_param_names(dict.fromkeys(study.config.search)))),
            CONDITIONS_TAG: json.dumps([condition.label for condition in study.conditions if condition.label]),
            BASELINES_TAG: json.dumps([baseline.name for baseline in study.config.baselines]),
            PLANNED_TRIALS_TAG: str(study.planned_trials),
            EPOCHS_PER_TRIAL_TAG: str(study.max_epochs),
        },
    )
    progress = StudyProgress(
        objective.metric, objective.mode, study.planned_trials, study.max_epochs, watching.listener
    )
    if resumable:
        _add_earlier_trials(progress, paths, study.name)
    if watching.listener is not None:
        watching.listener.started(progress)
    trainable = _trainable(study, watching.ray_log_level)
    if resumable:
        log.info("resuming study %s from %s", study.name, paths.experiment_dir)
        if not paths.remote:  # a checkpoint in remote storage is Ray's to find
            remove_partial_copies(Path(paths.experiment_dir))
            restore_missing_checkpoints(Path(paths.experiment_dir))
        tuner = tune.Tuner.restore(
            paths.experiment_dir,
            trainable,
            resume_unfinished=True,
            resume_errored=True,
            storage_filesystem=_storage_filesystem(paths),
        )
        _apply_this_run(tuner, watching.ray_verbosity, study.config.tracking.outage_timeout_s)
    else:
        tuner = _new_tuner(study, paths, trainable, tracker_arguments, guard, watching.ray_verbosity)
    status = "FAILED"
    finished = False
    try:
        with reporting_to(progress), tune_settings():
            grid = tuner.fit()
        expected = expected_trials(study, optuna_storage(paths.optuna_url))
        finished = len(grid) >= expected and grid.num_terminated + grid.num_errors == len(grid)
        status = "FINISHED" if finished else "KILLED"
    finally:
        tracker.finish(status)
    return finished
