"""MLflow reads and writes: one parent run per study, one nested child run per trial.

All calls go through an explicit `MlflowClient` and run ids (no global active run), from the
study's driver process only: trials never open the store themselves, so concurrent trials
cannot lock the embedded sqlite store, and a tracking server URI works unchanged.
Runs are keyed by tags, so a resumed study finds and reuses its runs instead of duplicating them.
Every tag name is defined here.
"""

from __future__ import annotations

import logging
import math
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import sqlalchemy.exc
from mlflow.entities import Metric, Param, RunStatus, RunTag
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient
from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID, MLFLOW_RUN_NAME

import smcl_tune
from smcl_tune.errors import StudyUnavailable
from smcl_tune.results import TrialState

log = logging.getLogger(__name__)

# Tags of the study's parent run.
STUDY_TAG = "smcl.study"
FINGERPRINT_TAG = "smcl.fingerprint"
ROLE_TAG = "smcl.role"  # "study" on the parent run; "search", "baseline" or "confirm" on a trial run
OBJECTIVE_METRIC_TAG = "smcl.objective_metric"
OBJECTIVE_MODE_TAG = "smcl.objective_mode"
OPTUNA_STORAGE_TAG = "smcl.optuna_storage"
SEARCH_TAG = "smcl.search"  # JSON list of the searched hyperparameters' plain names
CONDITIONS_TAG = "smcl.conditions"  # JSON list of the conditions' labels (empty without conditions)
BASELINES_TAG = "smcl.baselines"  # JSON list of the baselines' names, in the study file's order
PLANNED_TRIALS_TAG = "smcl.planned_trials"  # every trial the study file asks for (confirmation runs included)
EPOCHS_PER_TRIAL_TAG = "smcl.epochs_per_trial"
# Tags of a trial run.
TRIAL_KEY_TAG = "smcl.trial_key"
STATE_TAG = "smcl.state"
REASON_TAG = "smcl.reason"
NODES_TAG = "smcl.nodes"
IMBALANCE_FACTOR_TAG = "smcl.imbalance_factor"
MANY_ABOVE_TAG = "smcl.many_above"
FEW_BELOW_TAG = "smcl.few_below"
METHOD_TAG = "smcl.method"
CONDITION_TAG = "smcl.condition"  # the condition's label ("" without conditions)
CONFIGURATION_TAG = "smcl.configuration"  # what a configuration's seeds share: a baseline's name, "trial-003"
SEED_TAG = "smcl.seed"  # training.seed
SOURCE_TAG = "smcl.source"  # data.source
ARCHITECTURE_TAG = "smcl.architecture"  # model.architecture
SUBSET_PROTOCOL_TAG = "smcl.subset_protocol"  # data.subset_protocol
N_MAX_TAG = "smcl.n_max"  # data.n_max; "default": the source's per-class pool
EPOCHS_TAG = "smcl.epochs"  # training.epochs: the trial's budget
PARENT_TAG = MLFLOW_PARENT_RUN_ID
# The experiment tag MLflow's UI reads to open an experiment on its runs (not its GenAI overview).
EXPERIMENT_KIND_TAG, MODEL_TRAINING = "mlflow.experimentKind", "custom_model_development"

_TERMINAL = {
    TrialState.COMPLETED: RunStatus.FINISHED,
    TrialState.PRUNED: RunStatus.KILLED,
    TrialState.FAILED: RunStatus.FAILED,
}


def default_tracking_uri(storage_dir: Path) -> str:
    """The embedded sqlite store under the study storage folder."""
    return f"sqlite:///{(storage_dir / 'mlflow.db').resolve()}"


def git_commit() -> str | None:
    """The commit of this checkout of smcl-tune (None outside a git checkout)."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=Path(smcl_tune.__file__).parent,
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def _finite_metrics(metrics: dict[str, Any], step: int, timestamp: int) -> list[Metric]:
    return [
        Metric(key, float(value), timestamp, step)
        for key, value in metrics.items()
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    ]


class StudyTracker:
    """Writes a study's runs to one MLflow experiment."""

    def __init__(self, uri: str, experiment: str, study_name: str, fingerprint: str, artifact_root: Path) -> None:
        self.client = MlflowClient(tracking_uri=uri)
        self.study_name = study_name
        self.fingerprint = fingerprint
        found = self.client.get_experiment_by_name(experiment)
        if found is None:
            # An explicit location: MLflow's default is ./mlruns under whatever folder the driver runs in.
            self.experiment_id = self.client.create_experiment(
                experiment, artifact_location=artifact_root.resolve().as_uri()
            )
        else:
            self.experiment_id = found.experiment_id
        if found is None or found.tags.get(EXPERIMENT_KIND_TAG) != MODEL_TRAINING:
            self.client.set_experiment_tag(self.experiment_id, EXPERIMENT_KIND_TAG, MODEL_TRAINING)
        self.parent_run_id = self._find_or_create_parent()
        self._trial_runs: dict[str, str] = {}
        self._nodes: dict[str, list[str]] = {}
        self._last_steps: dict[str, int] = {}  # run id -> the highest step logged

    def _search(self, filter_string: str) -> list:
        return self.client.search_runs([self.experiment_id], filter_string=filter_string, max_results=10000)

    def _find_or_create_parent(self) -> str:
        existing = self._search(f"tags.`{STUDY_TAG}` = '{self.study_name}' and tags.`{ROLE_TAG}` = 'study'")
        if existing:
            run_id = existing[0].info.run_id
            self.client.update_run(run_id, status="RUNNING")
            return run_id
        tags = {
            STUDY_TAG: self.study_name,
            FINGERPRINT_TAG: self.fingerprint,
            ROLE_TAG: "study",
            "smcl.version": smcl_tune.__version__,
        }
        commit = git_commit()
        if commit:
            tags["smcl.git_commit"] = commit
        run = self.client.create_run(self.experiment_id, run_name=self.study_name, tags=tags)
        return run.info.run_id

    def log_study(
        self, file_name: str | None, text: str | None, resolved: dict[str, Any], tags: dict[str, str]
    ) -> None:
        """The study file (`text`, credentials already redacted) and its resolved form as artifacts of
        the parent run; `tags` describe it."""
        self.client.log_batch(self.parent_run_id, tags=[RunTag(key, value) for key, value in tags.items()])
        if file_name is not None and text is not None:
            self.client.log_text(self.parent_run_id, text, f"study/{file_name}")
        self.client.log_dict(self.parent_run_id, resolved, "study/resolved_study.json")
        self.client.log_batch(self.parent_run_id, params=[Param("version", smcl_tune.__version__)])

    def trial_run(
        self,
        key: str,
        name: str,
        role: str,
        params: dict[str, Any],
        config: dict[str, Any],
        tags: dict[str, str] | None = None,
    ) -> str:
        """The child run of a trial, created on first use and found again after a resume."""
        if key in self._trial_runs:
            return self._trial_runs[key]
        existing = self._search(f"tags.`{PARENT_TAG}` = '{self.parent_run_id}' and tags.`{TRIAL_KEY_TAG}` = '{key}'")
        if existing:
            run_id = existing[0].info.run_id
            self.client.update_run(run_id, status="RUNNING")
            earlier_nodes = existing[0].data.tags.get(NODES_TAG)
            if earlier_nodes:
                self._nodes[run_id] = earlier_nodes.split(",")
        else:
            tags = {
                PARENT_TAG: self.parent_run_id,
                TRIAL_KEY_TAG: key,
                ROLE_TAG: role,
                STUDY_TAG: self.study_name,
                MLFLOW_RUN_NAME: name,
                STATE_TAG: TrialState.RUNNING,
                **(tags or {}),
            }
            run_id = self.client.create_run(self.experiment_id, run_name=name, tags=tags).info.run_id
            self.client.log_batch(run_id, params=[Param(k, str(v)) for k, v in params.items()])
            self.client.log_dict(run_id, config, "trial_config.json")
        self._trial_runs[key] = run_id
        return run_id

    def note_node(self, run_id: str, node_id: str) -> None:
        """Record the Ray nodes a trial ran on, in order (tag `smcl.nodes`), when it moves."""
        nodes = self._nodes.setdefault(run_id, [])
        if node_id and (not nodes or nodes[-1] != node_id):
            nodes.append(node_id)
            self.client.set_tag(run_id, NODES_TAG, ",".join(nodes))

    def log_metrics(self, run_id: str, metrics: dict[str, Any], step: int, timestamp_ms: int) -> None:
        """Finite numbers only: a missing value (NaN, an empty shot group) is not logged at all."""
        self.client.log_batch(run_id, metrics=_finite_metrics(metrics, step, timestamp_ms))
        self._last_steps[run_id] = max(step, self._last_steps.get(run_id, -1))

    def last_logged_step(self, run_id: str, metric: str) -> int:
        """The highest step this run has logged `metric` at (-1: none); asked of MLflow once per run,
        so that a resumed driver knows what an earlier one logged."""
        if run_id not in self._last_steps:
            history = self.client.get_metric_history(run_id, metric)
            self._last_steps[run_id] = max((point.step for point in history), default=-1)
        return self._last_steps[run_id]

    def log_files(self, run_id: str, files: dict[str, str | bytes]) -> None:
        """Artifacts of a run, by name, in one upload."""
        with tempfile.TemporaryDirectory(prefix="smcl-artifacts-") as folder:
            for name, content in files.items():
                path = Path(folder) / name
                if isinstance(content, bytes):
                    path.write_bytes(content)
                else:
                    path.write_text(content)
            self.client.log_artifacts(run_id, folder)

    def end_trial(self, run_id: str, state: TrialState, reason: str | None = None) -> None:
        tags = [RunTag(STATE_TAG, state)] + ([RunTag(REASON_TAG, reason[:5000])] if reason else [])
        self.client.log_batch(run_id, tags=tags)
        self.client.set_terminated(run_id, status=RunStatus.to_string(_TERMINAL[state]))

    def finish(self, status: str = "FINISHED") -> None:
        """End the study run; a child still RUNNING (its trial never ended) is marked KILLED."""
        for run in self._search(f"tags.`{PARENT_TAG}` = '{self.parent_run_id}' and attributes.status = 'RUNNING'"):
            self.client.set_terminated(run.info.run_id, status="KILLED")
        self.client.set_terminated(self.parent_run_id, status=status)


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


def delete_study_runs(uri: str, experiment: str, study_name: str) -> int:
    """Delete (MLflow's soft delete) every run of a study; returns how many."""
    client = MlflowClient(tracking_uri=uri)
    found = client.get_experiment_by_name(experiment)
    if found is None:
        return 0
    runs = client.search_runs(
        [found.experiment_id], filter_string=f"tags.`{STUDY_TAG}` = '{study_name}'", max_results=10000
    )
    for run in runs:
        client.delete_run(run.info.run_id)
    return len(runs)


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

    def log_report_files(self, study: str, files: list[Path]) -> None:
        """Attach report files to a study's parent run (under `leaderboard/`)."""
        parent = self.study_run(study)
        for path in [] if parent is None else files:
            self.client.log_artifact(parent.info.run_id, str(path), "leaderboard")
