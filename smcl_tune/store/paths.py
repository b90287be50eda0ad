"""Where a study keeps its state: Ray's storage, the Optuna and MLflow stores, the record and the lock."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from smcl_tune.errors import ConfigError
from smcl_tune.layout import ARTIFACT_FOLDER, DEFAULT_STORAGE, MLFLOW_DATABASE, OPTUNA_FILE, STATE_FILE
from smcl_tune.store.lock import study_lock_file
from smcl_tune.studyfile.study import Study


def optuna_database(local_root: Path, study_name: str) -> Path:
    """A study's Optuna storage (sqlite), in its record folder under the local root."""
    return local_root / study_name / OPTUNA_FILE


def _resolved(storage: Path) -> Path:
    try:
        return storage.resolve()
    except (OSError, RuntimeError) as error:  # a link to itself: RuntimeError("Symlink loop ...")
        raise ConfigError(f"storage: {storage}: cannot resolve it ({error})") from None


@dataclass(frozen=True)
class StudyPaths:
    """Where a study keeps its state (by default everything in one `smcl-runs/` folder)."""

    storage: str  # Ray's storage_path: a local folder or a URI
    local_root: Path  # local folder for the Optuna and MLflow sqlite files and the study record
    experiment_dir: str  # storage/name: Ray's experiment folder
    optuna_url: str
    tracking_uri: str
    experiment: str

    @classmethod
    def of(cls, study: Study) -> StudyPaths:
        from smcl_tune.store.paths import default_tracking_uri

        storage = study.config.storage
        is_uri = "://" in storage
        local_root = _resolved(Path(DEFAULT_STORAGE if is_uri else storage))
        storage_path = storage if is_uri else str(local_root)
        return cls(
            storage=storage_path,
            local_root=local_root,
            experiment_dir=below(storage_path, study.name),
            optuna_url=study.config.optuna.storage or f"sqlite:///{optuna_database(local_root, study.name)}",
            tracking_uri=study.config.tracking.uri or default_tracking_uri(local_root),
            experiment=study.config.tracking.experiment or study.name,
        )

    @property
    def remote(self) -> bool:
        """Ray's storage is a URI (s3://...), not a local or mounted folder."""
        return "://" in self.storage

    @property
    def database_url(self) -> str | None:
        """The database server that holds the Optuna study, the record and the lock (optuna.storage),
        or None when they are files in the storage folder."""
        from smcl_tune.store.database import is_server

        return self.optuna_url if is_server(self.optuna_url) else None

    @property
    def study_name(self) -> str:
        return Path(urlsplit(self.experiment_dir).path).name

    @property
    def record_dir(self) -> Path:
        return self.local_root / self.study_name

    @property
    def record_place(self) -> str:
        """Where the study record lies, for messages."""
        if self.database_url is not None:
            from smcl_tune.store.database import shown

            return f"the database {shown(self.database_url)}"
        return str(self.record_dir)

    @property
    def record_file(self) -> Path:
        return self.record_dir / STATE_FILE

    @property
    def artifact_root(self) -> Path | None:
        """Where the study's MLflow artifacts go when the tracking store is a local file; None for a
        tracking server, whose own artifact store (S3, say) takes them."""
        return self.local_root / ARTIFACT_FOLDER if tracking_file(self.tracking_uri) is not None else None

    @property
    def lock_file(self) -> Path:
        return study_lock_file(self.local_root, self.study_name)

    @property
    def driver_writes(self) -> list[Path]:
        """The local files and folders the driver writes to: the storage folder (Ray's state, the
        record), the Optuna and MLflow sqlite files, the MLflow artifacts."""
        places = [] if self.remote else [Path(self.storage)]
        places += [Path(file) for file in (tracking_file(self.tracking_uri), tracking_file(self.optuna_url)) if file]
        return places + ([self.artifact_root] if self.artifact_root is not None else [])


def below(storage: str, name: str) -> str:
    """`storage/name`, for a folder or a URI: in a URI's path, before its query
    (`s3://bucket/runs?endpoint_override=...` -> `s3://bucket/runs/name?endpoint_override=...`)."""
    if "://" not in storage:
        return f"{storage.rstrip('/')}/{name}"
    parts = urlsplit(storage)
    return urlunsplit(parts._replace(path=f"{parts.path.rstrip('/')}/{name}"))


def tracking_file(uri: str) -> str | None:
    """The local file or folder an MLflow tracking URI names, as written; None for a server."""
    for scheme in ("sqlite:///", "file://", "file:"):
        if uri.startswith(scheme):
            return uri[len(scheme) :] or None
    return None if "://" in uri else uri


def default_tracking_uri(storage_dir: Path) -> str:
    """The embedded sqlite store under the study storage folder."""
    return f"sqlite:///{(storage_dir / MLFLOW_DATABASE).resolve()}"
