"""Where a study keeps its state, and the study record that ties that state to one study file."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from smcl_tune.config import ConfigError
from smcl_tune.study_config import Study
from smcl_tune.tracking import default_tracking_uri

STATE_FILE = "smcl-study.json"


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

    @property
    def record_file(self) -> Path:
        return self.record_dir / STATE_FILE

    @property
    def artifact_root(self) -> Path:
        return self.local_root / "mlartifacts"


def check_study_record(study: Study, paths: StudyPaths, restart: bool) -> None:
    """Refuse a changed study file under an existing name (unless restarting); reads only."""
    if restart or not paths.record_file.exists():
        return
    known = json.loads(paths.record_file.read_text())
    if known.get("fingerprint") != study.fingerprint():
        raise ConfigError(
            f"study '{study.name}' already exists in {paths.record_dir} with a different study file "
            f"(it was started from {known.get('source')}); rename the study, or run again with --restart "
            "to discard it and start over"
        )


def write_study_record(study: Study, paths: StudyPaths) -> None:
    paths.record_dir.mkdir(parents=True, exist_ok=True)
    paths.record_file.write_text(
        json.dumps(
            {
                "name": study.name,
                "fingerprint": study.fingerprint(),
                "source": str(study.source) if study.source else None,
            }
        )
    )
