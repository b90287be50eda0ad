"""The Ray Tune Tuner of a study: a new one (trainable, search plan, storage, callbacks), or the
saved one restored with what this run asks for."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow.fs
from ray import tune
from ray.tune.logger import CSVLoggerCallback, JsonLoggerCallback

from smcl_tune.store.database import optuna_storage
from smcl_tune.store.paths import StudyPaths
from smcl_tune.study.cluster import LocalStorageGuard
from smcl_tune.study.experiment_state_repair import restore_missing_checkpoints
from smcl_tune.study.object_store_outage import object_store_outage
from smcl_tune.study.outage_wait import Outage
from smcl_tune.study.progress_callback import ProgressCallback
from smcl_tune.study.search_plan import build_scheduler, build_searcher
from smcl_tune.study.search_state_repair import mend_searcher_state
from smcl_tune.study.storage_space import StorageWatch
from smcl_tune.study.tracking_callback import TrackingCallback
from smcl_tune.study.trainable import train_study_trial
from smcl_tune.study.trial_data_error import StopOnDataError
from smcl_tune.study.whole_file_filesystem import remove_partial_copies, whole_file_storage
from smcl_tune.studyfile.study import Study


def study_store_outage(study: Study, paths: StudyPaths) -> Outage | None:
    """What the study's trials and callbacks wait for when its object store does not answer."""
    if not paths.remote:
        return None
    return object_store_outage(paths.experiment_dir, study.config.storage_outage_timeout_s)


def study_trainable(
    study: Study, ray_log_level: str, fused_groups: str | None = None, store_outage: Outage | None = None
):
    """Each trial holds its share of `resources`: a group's, split among its `fuse` members. With
    `store_outage` (a study on an object store), a trial waits for the store while it does not answer."""
    resources = study.config.resources
    parameters = {"ray_log_level": ray_log_level, "fused_groups": fused_groups, "store_outage": store_outage}
    return tune.with_resources(
        tune.with_parameters(train_study_trial, **parameters),
        {"cpu": resources.cpus / resources.fuse, "gpu": resources.gpus / resources.fuse},
    )


def storage_filesystem(paths: StudyPaths):
    """A local storage gets whole-file writes (a killed driver leaves no truncated state); a URI, Ray's own."""
    return None if paths.remote else whole_file_storage()


def new_tuner(
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
            scheduler=build_scheduler(study),
            num_samples=study.planned_trials,
            max_concurrent_trials=None,  # the searcher's own limit (max_concurrent x fuse members)
            reuse_actors=True,  # one worker process per slot: trials skip the interpreter and torch start-up
        ),
        run_config=tune.RunConfig(
            name=study.name,
            storage_path=paths.storage,
            storage_filesystem=storage_filesystem(paths),
            failure_config=tune.FailureConfig(max_failures=2),
            checkpoint_config=tune.CheckpointConfig(num_to_keep=1),
            callbacks=[
                StopOnDataError(),  # first: a data error stops the study before anything records it
                CSVLoggerCallback(),
                JsonLoggerCallback(),
                StorageWatch(paths.storage),
                TrackingCallback(
                    tracker_arguments, study.config.tracking.outage_timeout_s, study_store_outage(study, paths)
                ),
                ProgressCallback(),
            ],
            stop=guard,
            verbose=ray_verbosity,
        ),
    )


def apply_this_run(tuner: tune.Tuner, verbosity: int, outage_timeout_s: float, store_outage: Outage | None) -> None:
    """Tuner.restore brings back the first run's RunConfig and takes no new one; its verbosity (and
    the tracking callback's outage timeouts) are what this run asks for (there is no public setter),
    and Ray Tune's CSV and JSON trial logs are in it."""
    local = getattr(tuner, "_local_tuner", None)
    if local is not None:
        _limit_in_the_searcher(local._tune_config)
        run_config = local.get_run_config()
        run_config.verbose = verbosity
        for callback in run_config.callbacks or []:
            if isinstance(callback, TrackingCallback):
                callback.outage_timeout_s = outage_timeout_s
                callback.store_outage = store_outage
        # a study started before tune_settings existed had Ray add these itself: they are not in its RunConfig
        for logger in (CSVLoggerCallback, JsonLoggerCallback):
            if not any(isinstance(callback, logger) for callback in run_config.callbacks or []):
                run_config.callbacks = [*(run_config.callbacks or []), logger()]
        if not any(isinstance(callback, StopOnDataError) for callback in run_config.callbacks or []):
            run_config.callbacks = [StopOnDataError(), *(run_config.callbacks or [])]  # a study of an older version


def _limit_in_the_searcher(tune_config: tune.TuneConfig) -> None:
    """A study started when Ray's ConcurrencyLimiter kept its limit: the searcher keeps it now."""
    searcher = tune_config.search_alg
    if tune_config.max_concurrent_trials and getattr(searcher, "max_concurrent", None) is None:
        searcher.max_concurrent = tune_config.max_concurrent_trials
    tune_config.max_concurrent_trials = None


def restored_tuner(study: Study, paths: StudyPaths, trainable, ray_verbosity: int) -> tune.Tuner:
    """The study's saved Tuner, its partial copies, lost checkpoints and the searcher's state mended first."""
    if not paths.remote:  # an object store has no partial copies: Ray writes whole objects there
        remove_partial_copies(Path(paths.experiment_dir))
    filesystem, path = pyarrow.fs.FileSystem.from_uri(paths.experiment_dir)  # a folder, or S3's bucket/key
    restore_missing_checkpoints(path, filesystem)
    mend_searcher_state(path, filesystem)
    tuner = tune.Tuner.restore(
        paths.experiment_dir,
        trainable,
        resume_unfinished=True,
        resume_errored=True,
        storage_filesystem=storage_filesystem(paths),
    )
    apply_this_run(tuner, ray_verbosity, study.config.tracking.outage_timeout_s, study_store_outage(study, paths))
    return tuner
