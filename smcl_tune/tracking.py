"""MLflow: one parent run per study, one nested child run per trial, metrics and artifacts.

All calls go through an explicit `MlflowClient` and run ids (no global active run), from the
study's driver process only: trials never open the store themselves, so concurrent trials
cannot lock the embedded sqlite store, and a tracking server URI works unchanged.
Runs are keyed by tags, so a resumed study finds and reuses its runs instead of duplicating them.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import math
import subprocess
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from mlflow.entities import Metric, Param, RunStatus, RunTag  # noqa: E402
from mlflow.tracking import MlflowClient  # noqa: E402
from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID, MLFLOW_RUN_NAME  # noqa: E402

import smcl_tune  # noqa: E402

log = logging.getLogger(__name__)

STUDY_TAG = "smcl.study"
FINGERPRINT_TAG = "smcl.fingerprint"
TRIAL_KEY_TAG = "smcl.trial_key"
ROLE_TAG = "smcl.role"
STATE_TAG = "smcl.state"
REASON_TAG = "smcl.reason"
NODES_TAG = "smcl.nodes"
_TERMINAL = {"completed": RunStatus.FINISHED, "pruned": RunStatus.KILLED, "failed": RunStatus.FAILED}


def default_tracking_uri(storage_dir: Path) -> str:
    """The embedded sqlite store under the study storage folder."""
    return f"sqlite:///{(storage_dir / 'mlflow.db').resolve()}"


def _git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(smcl_tune.__file__).parent, capture_output=True,
                             text=True, timeout=5, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def _finite_metrics(metrics: dict[str, Any], step: int, timestamp: int) -> list[Metric]:
    return [Metric(key, float(value), timestamp, step) for key, value in metrics.items()
            if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)]


class StudyTracker:
    """Writes a study's runs to one MLflow experiment."""

    def __init__(self, uri: str, experiment: str, study_name: str, fingerprint: str, artifact_root: Path) -> None:
        self.client = MlflowClient(tracking_uri=uri)
        self.study_name = study_name
        self.fingerprint = fingerprint
        found = self.client.get_experiment_by_name(experiment)
        if found is None:
            # An explicit location: MLflow's default is ./mlruns under whatever folder the driver runs in.
            self.experiment_id = self.client.create_experiment(experiment, artifact_location=artifact_root.resolve().as_uri())
        else:
            self.experiment_id = found.experiment_id
        self.parent_run_id = self._find_or_create_parent()
        self._trial_runs: dict[str, str] = {}
        self._nodes: dict[str, list[str]] = {}

    # -- runs ----------------------------------------------------------------------------------
    def _search(self, filter_string: str) -> list:
        return self.client.search_runs([self.experiment_id], filter_string=filter_string, max_results=10000)

    def _find_or_create_parent(self) -> str:
        existing = self._search(f"tags.`{STUDY_TAG}` = '{self.study_name}' and tags.`{ROLE_TAG}` = 'study'")
        if existing:
            run_id = existing[0].info.run_id
            self.client.update_run(run_id, status="RUNNING")
            return run_id
        tags = {STUDY_TAG: self.study_name, FINGERPRINT_TAG: self.fingerprint, ROLE_TAG: "study",
                "smcl.version": smcl_tune.__version__}
        commit = _git_commit()
        if commit:
            tags["smcl.git_commit"] = commit
        run = self.client.create_run(self.experiment_id, run_name=self.study_name, tags=tags)
        return run.info.run_id

    def log_study(self, study_file: Path | None, resolved: dict[str, Any], tags: dict[str, str]) -> None:
        """The study file and its resolved form as artifacts of the parent run; `tags` describe it."""
        self.client.log_batch(self.parent_run_id, tags=[RunTag(key, value) for key, value in tags.items()])
        if study_file is not None and study_file.exists():
            self.client.log_artifact(self.parent_run_id, str(study_file), "study")
        self.client.log_dict(self.parent_run_id, resolved, "study/resolved_study.json")
        self.client.log_batch(self.parent_run_id, params=[Param("version", smcl_tune.__version__)])

    def trial_run(self, key: str, name: str, role: str, params: dict[str, Any], config: dict[str, Any],
                  tags: dict[str, str] | None = None) -> str:
        """The child run of a trial, created on first use and found again after a resume."""
        if key in self._trial_runs:
            return self._trial_runs[key]
        existing = self._search(f"tags.`{MLFLOW_PARENT_RUN_ID}` = '{self.parent_run_id}' and "
                                f"tags.`{TRIAL_KEY_TAG}` = '{key}'")
        if existing:
            run_id = existing[0].info.run_id
            self.client.update_run(run_id, status="RUNNING")
            earlier_nodes = existing[0].data.tags.get(NODES_TAG)
            if earlier_nodes:
                self._nodes[run_id] = earlier_nodes.split(",")
        else:
            tags = {MLFLOW_PARENT_RUN_ID: self.parent_run_id, TRIAL_KEY_TAG: key, ROLE_TAG: role,
                    STUDY_TAG: self.study_name, MLFLOW_RUN_NAME: name, STATE_TAG: "running", **(tags or {})}
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

    def log_epoch(self, run_id: str, metrics: dict[str, Any], step: int, timestamp_ms: int) -> None:
        self.client.log_batch(run_id, metrics=_finite_metrics(metrics, step, timestamp_ms))

    def log_final(self, run_id: str, metrics: dict[str, Any], per_class_accuracy: list[float],
                  confusion: list[list[int]], class_names: list[str], train_counts: list[int],
                  step: int, timestamp_ms: int) -> None:
        """End-of-trial metrics, the per-class accuracy CSV and the confusion-matrix PNG."""
        self.client.log_batch(run_id, metrics=_finite_metrics(metrics, step, timestamp_ms))
        if per_class_accuracy:
            self.client.log_text(run_id, per_class_csv(class_names, train_counts, per_class_accuracy),
                                 "per_class_accuracy.csv")
        if confusion:
            figure = confusion_figure(confusion, class_names)
            self.client.log_figure(run_id, figure, "confusion_matrix.png")
            plt.close(figure)

    def end_trial(self, run_id: str, state: str, reason: str | None = None) -> None:
        tags = [RunTag(STATE_TAG, state)] + ([RunTag(REASON_TAG, reason[:5000])] if reason else [])
        self.client.log_batch(run_id, tags=tags)
        self.client.set_terminated(run_id, status=RunStatus.to_string(_TERMINAL[state]))

    def finish(self, status: str = "FINISHED") -> None:
        """End the study run; a child still RUNNING (its trial never ended) is marked KILLED."""
        for run in self._search(f"tags.`{MLFLOW_PARENT_RUN_ID}` = '{self.parent_run_id}' and "
                                "attributes.status = 'RUNNING'"):
            self.client.set_terminated(run.info.run_id, status="KILLED")
        self.client.set_terminated(self.parent_run_id, status=status)


def log_study_report(uri: str, experiment: str, study_name: str, files: list[Path]) -> None:
    """Attach report files to a study's parent run (under `leaderboard/`)."""
    client = MlflowClient(tracking_uri=uri)
    found = client.get_experiment_by_name(experiment)
    runs = [] if found is None else client.search_runs(
        [found.experiment_id], filter_string=f"tags.`{STUDY_TAG}` = '{study_name}' and tags.`{ROLE_TAG}` = 'study'")
    for run in runs:
        for path in files:
            client.log_artifact(run.info.run_id, str(path), "leaderboard")


def delete_study_runs(uri: str, experiment: str, study_name: str) -> int:
    """Delete (MLflow's soft delete) every run of a study; returns how many."""
    client = MlflowClient(tracking_uri=uri)
    found = client.get_experiment_by_name(experiment)
    if found is None:
        return 0
    runs = client.search_runs([found.experiment_id], filter_string=f"tags.`{STUDY_TAG}` = '{study_name}'",
                              max_results=10000)
    for run in runs:
        client.delete_run(run.info.run_id)
    return len(runs)


def per_class_csv(class_names: list[str], train_counts: list[int], accuracy: list[float]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["class_id", "class_name", "train_count", "test_accuracy"])
    for class_id, (name, count, value) in enumerate(zip(class_names, train_counts, accuracy)):
        writer.writerow([class_id, name, count, "" if value is None or math.isnan(value) else f"{value:.6f}"])
    return buffer.getvalue()


def confusion_figure(confusion: list[list[int]], class_names: list[str]):
    """Row-normalised confusion matrix (true class down, predicted across)."""
    size = len(confusion)
    rows = [[cell / max(1, sum(row)) for cell in row] for row in confusion]
    figure, axes = plt.subplots(figsize=(min(12, 2 + 0.4 * size), min(11, 1.5 + 0.4 * size)))
    image = axes.imshow(rows, cmap="Blues", vmin=0, vmax=1)
    axes.set_xlabel("predicted class")
    axes.set_ylabel("true class")
    if size <= 30:
        axes.set_xticks(range(size), class_names, rotation=90, fontsize=7)
        axes.set_yticks(range(size), class_names, fontsize=7)
    figure.colorbar(image, ax=axes, fraction=0.046)
    figure.tight_layout()
    return figure


def plain_param_names(params: dict[str, Any]) -> dict[str, Any]:
    """`method.temperature` -> `temperature`, unless two paths share their last name."""
    last_names = [path.rsplit(".", 1)[-1] for path in params]
    return {(name if last_names.count(name) == 1 else path): value
            for path, name, value in zip(params, last_names, params.values())}


def decode_list(value: Any) -> list:
    """A list sent through a Ray result as a JSON string."""
    if isinstance(value, str) and value:
        return json.loads(value)
    return []
