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
from ray.tune.schedulers import ASHAScheduler, FIFOScheduler

from smcl_tune.config import ConfigError
from smcl_tune.study.searcher import StudySearcher
from smcl_tune.study.trainable import train_study_trial
from smcl_tune.study.tracking_callback import TrackingCallback
from smcl_tune.study_config import Study
from smcl_tune.tracking import StudyTracker, default_tracking_uri, delete_study_runs, plain_param_names

log = logging.getLogger(__name__)

STATE_FILE = "smcl-study.json"


@dataclass(frozen=True)
class StudyPaths:
    """Where a study keeps its state (see ARCHITECTURE.md: one `smcl-runs/` folder by default)."""

    storage: str  # Ray's storage_path: a local folder or a URI
    local_root: Path  # local folder for the Optuna and MLflow sqlite files and the study record
    experiment_dir: str  # storage/name: Ray's experiment folder
    optuna_url: str
    tracking_uri: str
    experiment: str

    @classmethod
    def of(cls, study: Study) -> "StudyPaths":
        storage = study.config.storage
        is_uri = "://" in storage
        local_root = Path("smcl-runs" if is_uri else storage).resolve()
        storage_path = storage if is_uri else str(local_root)
        record = local_root / study.name
        return cls(
            storage=storage_path,
            local_root=local_root,
            experiment_dir=f"{storage_path.rstrip('/')}/{study.name}",
            optuna_url=f"sqlite:///{record / 'optuna.db'}",
            tracking_uri=study.config.tracking.uri or default_tracking_uri(local_root),
            experiment=study.config.tracking.experiment or study.name,
        )

    @property
    def record_dir(self) -> Path:
        return self.local_root / Path(self.experiment_dir).name


@dataclass
class StudyOutcome:
    name: str
    wall_seconds: float
    finished: bool
    paths: StudyPaths


def check_study_record(study: Study, paths: StudyPaths, restart: bool) -> None:
    """Refuse a changed study file under an existing name (unless restarting); reads only."""
    record = paths.record_dir / STATE_FILE
    if restart or not record.exists():
        return
    known = json.loads(record.read_text())
    if known.get("fingerprint") != study.fingerprint():
        raise ConfigError(
            f"study '{study.name}' already exists in {paths.record_dir} with a different study file "
            f"(it was started from {known.get('source')}); rename the study, or run again with --restart "
            "to discard it and start over"
        )


def _prepare_state(study: Study, paths: StudyPaths, restart: bool) -> bool:
    """Discard the old state on restart, write the record; True when an earlier run can be resumed."""
    check_study_record(study, paths, restart)
    record = paths.record_dir / STATE_FILE
    if restart:
        if paths.record_dir.exists():
            shutil.rmtree(paths.record_dir)
        if "://" in paths.storage:
            log.warning("--restart: the Ray results under %s are not deleted; they are overwritten", paths.experiment_dir)
        deleted = delete_study_runs(paths.tracking_uri, paths.experiment, study.name)
        log.info("restart: removed the earlier state of study %s (%d MLflow runs deleted)", study.name, deleted)
    paths.record_dir.mkdir(parents=True, exist_ok=True)
    resumable = record.exists() and tune.Tuner.can_restore(paths.experiment_dir)
    record.write_text(json.dumps({"name": study.name, "fingerprint": study.fingerprint(),
                                  "source": str(study.source) if study.source else None}))
    return resumable


NETWORK_FILESYSTEMS = ("nfs", "nfs4", "cifs", "smb3", "lustre", "gpfs", "beegfs", "ceph", "glusterfs", "fuse")


def filesystem_type(path: Path) -> str:
    """The type of the filesystem holding `path` (or its nearest existing parent), from /proc/mounts."""
    path = path.resolve()
    best, kind = "", "unknown"
    try:
        mounts = Path("/proc/mounts").read_text().splitlines()
    except OSError:
        return kind
    for line in mounts:
        fields = line.split()
        if len(fields) < 3:
            continue
        mount_point = fields[1].replace("\\040", " ")
        if (str(path) == mount_point or str(path).startswith(mount_point.rstrip("/") + "/")) and len(mount_point) > len(best):
            best, kind = mount_point, fields[2]
    return kind


def cluster_hosts() -> list[str]:
    """The addresses of the live nodes of the Ray cluster this driver is connected to."""
    return sorted({node["NodeManagerAddress"] for node in ray.nodes() if node.get("Alive")})


def check_cluster_storage(study: Study, paths: StudyPaths, hosts: list[str]) -> None:
    """Refuse a local-only storage folder when the Ray cluster spans several hosts.

    Trials write their checkpoints to the storage; a trial moved to another host must read them.
    """
    if len(hosts) <= 1 or "://" in paths.storage:
        return
    kind = filesystem_type(Path(paths.storage))
    if not kind.startswith(NETWORK_FILESYSTEMS):
        raise ConfigError(
            f"{study.source}: storage: {paths.storage} is a local folder ({kind}), but the Ray cluster spans "
            f"{len(hosts)} hosts ({', '.join(hosts)}) whose trials could not reach its checkpoints; set storage to a "
            "shared folder (NFS) mounted at the same path on every node, or a URI such as s3://bucket/smcl-runs"
        )
    if paths.tracking_uri.startswith("sqlite:"):
        log.warning("MLflow uses the embedded sqlite store on this host; only this driver writes to it, but it is "
                    "lost with this host: on clusters set tracking.uri to a tracking server")


def _init_ray(address: str | None) -> None:
    if ray.is_initialized():
        return
    address = address or os.environ.get("RAY_ADDRESS")
    if address:
        log.info("joining the Ray cluster at %s", address)
        ray.init(address=address, log_to_driver=True)
    else:
        ray.init(include_dashboard=False, log_to_driver=True)


def build_searcher(study: Study, storage: optuna.storages.BaseStorage) -> StudySearcher:
    """The study's searcher: baselines first, then TPE seeded with the study's seed."""
    objective = study.config.objective
    metrics, modes = [objective.metric], [objective.mode]
    if objective.secondary is not None:
        metrics.append(objective.secondary.metric)
        modes.append(objective.secondary.mode)
    # TPE is seeded; with two objectives Optuna's TPESampler runs as MOTPE.
    sampler = optuna.samplers.TPESampler(seed=study.config.seed, n_startup_trials=min(10, max(2, study.config.num_trials // 3)))
    return StudySearcher(
        space=study.config.search,
        baselines=[baseline.model_dump() for baseline in study.config.baselines],
        metric=metrics if len(metrics) > 1 else metrics[0],
        mode=modes if len(modes) > 1 else modes[0],
        sampler=sampler,
        study_name=study.name,
        storage=storage,
    )


def _scheduler(study: Study):
    settings = study.config.scheduler
    objective = study.config.objective
    if settings.type == "fifo":
        return FIFOScheduler()
    return ASHAScheduler(metric=objective.metric, mode=objective.mode, time_attr="training_iteration",
                         max_t=study.max_epochs, grace_period=settings.grace_period,
                         reduction_factor=settings.reduction_factor)


def _absolute_data_root(trial: dict[str, Any]) -> dict[str, Any]:
    """Ray runs each trial in its own folder: a relative data root is taken from the driver's."""
    data = trial.get("data", {})
    root = data.get("root")
    if not root or Path(root).is_absolute():
        return trial
    return {**trial, "data": {**data, "root": str(Path(root).resolve())}}


def _trainable(study: Study, base_trial: dict[str, Any]):
    resources = study.config.resources
    return tune.with_resources(
        tune.with_parameters(train_study_trial, base_trial=base_trial),
        {"cpu": resources.cpus, "gpu": resources.gpus},
    )


def _run_config(study: Study, paths: StudyPaths, tracker_arguments: dict[str, Any],
                base_trial: dict[str, Any]) -> tune.RunConfig:
    return tune.RunConfig(
        name=study.name,
        storage_path=paths.storage,
        failure_config=tune.FailureConfig(max_failures=2),
        checkpoint_config=tune.CheckpointConfig(num_to_keep=1),
        callbacks=[TrackingCallback(tracker_arguments, base_trial)],
        verbose=1,
    )


def run_study(study: Study, address: str | None = None, restart: bool = False) -> StudyOutcome:
    """Run the study, or resume it where an interrupted run of the same study file stopped."""
    started = time.time()
    paths = StudyPaths.of(study)
    check_study_record(study, paths, restart)  # a refusal starts nothing: it comes before Ray
    _init_ray(address)
    check_cluster_storage(study, paths, cluster_hosts())
    resumable = _prepare_state(study, paths, restart)
    tracker_arguments = {"uri": paths.tracking_uri, "experiment": paths.experiment, "study_name": study.name,
                         "fingerprint": study.fingerprint(), "artifact_root": paths.local_root / "mlartifacts"}
    tracker = StudyTracker(**tracker_arguments)
    objective = study.config.objective
    tracker.log_study(study.source, study.config.model_dump(mode="json"), {
        "smcl.objective_metric": objective.metric, "smcl.objective_mode": objective.mode,
        "smcl.optuna_storage": paths.optuna_url, "smcl.search": json.dumps(list(plain_param_names(dict.fromkeys(study.config.search)))),
    })
    # A snapshot of the experiment after every trial checkpoint is what makes resume exact; Ray warns about it.
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
    base_trial = _absolute_data_root(study.config.trial)
    trainable = _trainable(study, base_trial)
    if resumable:
        log.info("resuming study %s from %s", study.name, paths.experiment_dir)
        tuner = tune.Tuner.restore(paths.experiment_dir, trainable, resume_unfinished=True, resume_errored=True)
    else:
        tuner = tune.Tuner(
            trainable,
            tune_config=tune.TuneConfig(
                search_alg=build_searcher(study, optuna.storages.RDBStorage(paths.optuna_url)),
                scheduler=_scheduler(study),
                num_samples=study.config.num_trials + len(study.config.baselines),
                max_concurrent_trials=study.config.max_concurrent,
                reuse_actors=True,  # one worker process per slot: trials skip the interpreter and torch start-up
            ),
            run_config=_run_config(study, paths, tracker_arguments, base_trial),
        )
    status = "FAILED"
    finished = False
    try:
        grid = tuner.fit()
        expected = study.config.num_trials + len(study.config.baselines)
        finished = len(grid) >= expected and grid.num_terminated + grid.num_errors == len(grid)
        status = "FINISHED" if finished else "KILLED"
    finally:
        tracker.finish(status)
    return StudyOutcome(study.name, time.time() - started, finished, paths)
