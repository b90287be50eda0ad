"""Under a Ray job (`ray job submit`), a study's state must outlive the job.

The job's entrypoint runs in a copy of its working directory that Ray keeps in its session folder
(`.../session_*/runtime_resources/working_dir_files/_ray_pkg_*`) and deletes when it cleans up
the job's resources: a relative storage, or a store inside that folder, would take the MLflow
runs, the Optuna study and the checkpoints with it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path

from smcl_tune.errors import ConfigError
from smcl_tune.store.paths import StudyPaths, tracking_file
from smcl_tune.studyfile.study import Study, redact_uri

# Ray's job supervisor sets this in the entrypoint's environment: the job's runtime environment
# and metadata, whose `job_submission_id` is the id `ray job submit` prints.
RAY_JOB_CONFIG_ENV = "RAY_JOB_CONFIG_JSON_ENV_VAR"

SHARED_PATH_ADVICE = "set it to an absolute path on a folder every node shares (e.g. /mnt/shared/smcl-runs)"


def ray_job_id(environ: Mapping[str, str] = os.environ) -> str | None:
    """The id of the Ray job this process is the entrypoint of; None outside a job."""
    raw = environ.get(RAY_JOB_CONFIG_ENV)
    if raw is None:
        return None
    try:
        metadata = json.loads(raw).get("metadata") or {}
        return str(metadata.get("job_submission_id") or "(no id)")
    except (ValueError, AttributeError):
        return "(no id)"


def ray_session_folder(path: Path) -> Path | None:
    """The Ray session folder (`<temp dir>/session_<date>`, beside `session_latest`) holding `path`."""
    resolved = path.resolve()
    for folder in (resolved, *resolved.parents):
        if folder.name.startswith("session_") and (folder.parent / "session_latest").exists():
            return folder
    return None


def check_job_storage(study: Study, paths: StudyPaths, environ: Mapping[str, str] = os.environ) -> None:
    """Refuse, under a Ray job, a storage or tracking store that Ray deletes with the job."""
    job = ray_job_id(environ)
    if job is None:
        return
    where = f"{study.source}: " if study.source else ""
    storage = study.config.storage
    if "://" not in storage and not Path(storage).is_absolute():
        raise ConfigError(
            f"{where}storage: '{storage}' is relative, and this study runs as Ray job {job}, whose working "
            f"folder Ray deletes after the job; {SHARED_PATH_ADVICE}"
        )
    tracking = study.config.tracking.uri
    tracking_path = tracking_file(tracking) if tracking else None
    if tracking_path is not None and not Path(tracking_path).is_absolute():
        raise ConfigError(
            f"{where}tracking.uri: '{redact_uri(tracking)}' names a relative path, and this study runs as Ray job "
            f"{job}, whose working folder Ray deletes after the job; {SHARED_PATH_ADVICE}, or use a tracking server"
        )
    kept = [(_local_root_field(paths), paths.local_root)] if _local_root_needed(paths) else []
    if tracking_path is not None:
        kept.append(("tracking.uri", Path(tracking_path)))
    for field, path in kept:
        session = ray_session_folder(path)
        if session is not None:
            raise ConfigError(
                f"{where}{field}: {path} lies inside Ray's session folder {session}, which Ray deletes; this study "
                f"runs as Ray job {job}: {SHARED_PATH_ADVICE}"
            )


def _local_root_needed(paths: StudyPaths) -> bool:
    """Whether anything of the study lives in its local storage folder: Ray's results, or with a
    storage URI (s3://) the Optuna study, record and lock (without a database server in
    optuna.storage) or the MLflow store (without a tracking server)."""
    return not paths.remote or paths.database_url is None or tracking_file(paths.tracking_uri) is not None


def _local_root_field(paths: StudyPaths) -> str:
    if not paths.remote:
        return "storage"
    if paths.database_url is None:
        return "optuna.storage (unset: the Optuna study, its record and lock stay in a local folder even with storage: s3://)"
    return "tracking.uri (unset: the MLflow store stays in a local folder even with storage: s3://)"
