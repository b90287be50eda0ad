"""Reading studies back from an MLflow store (any experiment), for status, reports and refusals."""

from __future__ import annotations

import tempfile
from pathlib import Path

import sqlalchemy.exc
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from smcl_tune.errors import StudyUnavailable
from smcl_tune.tracking.tags import FINGERPRINT_TAG, PARENT_TAG, ROLE_TAG, STUDY_TAG


def recorded_fingerprint(uri: str, experiment: str, study_name: str) -> str | None:
    """The fingerprint of a study of this name already in the store, or None; reads only (a sqlite
    store that does not exist yet is not created)."""
    if uri.startswith("sqlite:///") and not Path(uri.removeprefix("sqlite:///")).exists():
        return None
    client = MlflowClient(tracking_uri=uri)
    found = client.get_experiment_by_name(experiment)
    if found is None:
        return None
    runs = client.search_runs(
        [found.experiment_id],
        max_results=1,
        filter_string=f"tags.`{STUDY_TAG}` = '{study_name}' and tags.`{ROLE_TAG}` = 'study'",
    )
    return runs[0].data.tags.get(FINGERPRINT_TAG) if runs else None


class StudyStore:
    """Reads studies back from an MLflow store (any experiment), for reports."""

    def __init__(self, uri: str) -> None:
        self.uri = uri
        self.client = self._read(lambda: MlflowClient(tracking_uri=uri))

    def _read(self, action):
        """`action()`, with a store that cannot be read (a corrupt file) as one StudyUnavailable."""
        try:
            return action()
        except (MlflowException, sqlalchemy.exc.DatabaseError) as error:
            where = self.uri.removeprefix("sqlite:///") if self.uri.startswith("sqlite:///") else "the tracking store"
            reason = str(getattr(error, "orig", None) or error).splitlines()[0]
            raise StudyUnavailable(f"{where}: cannot read the MLflow store ({reason})") from None

    def study_runs(self) -> list:
        experiments = [e.experiment_id for e in self._read(self.client.search_experiments)]
        if not experiments:
            return []
        return self._read(
            lambda: self.client.search_runs(
                experiments, filter_string=f"tags.`{ROLE_TAG}` = 'study'", max_results=50000
            )
        )

    def study_names(self) -> list[str]:
        return sorted({run.data.tags.get(STUDY_TAG, "") for run in self.study_runs()})

    def study_run(self, study: str):
        """The parent run of `study`, or None."""
        return next((run for run in self.study_runs() if run.data.tags.get(STUDY_TAG) == study), None)

    def trial_runs(self, parent) -> list:
        return self.client.search_runs(
            [parent.info.experiment_id],
            filter_string=f"tags.`{PARENT_TAG}` = '{parent.info.run_id}'",
            max_results=50000,
        )

    def metric_history(self, run_id: str, key: str) -> list[tuple[int, float]]:
        return [(metric.step, metric.value) for metric in self.client.get_metric_history(run_id, key)]

    def artifact_bytes(self, run_id: str, path: str) -> bytes | None:
        """The content of a run's artifact, or None when the run has no such artifact."""
        try:
            with tempfile.TemporaryDirectory() as folder:
                return Path(self.client.download_artifacts(run_id, path, folder)).read_bytes()
        except (MlflowException, OSError):
            return None

    def artifact_text(self, run_id: str, path: str) -> str | None:
        content = self.artifact_bytes(run_id, path)
        return None if content is None else content.decode()
