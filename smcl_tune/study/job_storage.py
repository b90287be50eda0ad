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
from smcl_tune.store.paths import StudyPaths
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


def _tracking_file(uri: str) -> str | None:
    """The local file or folder an MLflow tracking URI names, as written; None for a server."""
    for scheme in ("sqlite:///", "file://", "file:"):
        if uri.startswith(scheme):
            return uri[len(scheme) :] or None
    return None if "://" in uri else uri


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
    tracking_file = _tracking_file(tracking) if tracking else None
    if tracking_file is not None and not Path(tracking_file).is_absolute():
        raise ConfigError(
            f"{where}tracking.uri: '{redact_uri(tracking)}' names a relative path, and this study runs as Ray job "
            f"{job}, whose working folder Ray deletes after the job; {SHARED_PATH_ADVICE}, or use a tracking server"
        )
    kept = [("storage", paths.local_root)]
    if tracking_file is not None:
        kept.append(("tracking.uri", Path(tracking_file)))
    for field, path in kept:
        session = ray_session_folder(path)
        if session is not None:
            raise ConfigError(
                f"{where}{field}: {path} lies inside Ray's session folder {session}, which Ray deletes; this study "
                f"runs as Ray job {job}: {SHARED_PATH_ADVICE}"
            )
