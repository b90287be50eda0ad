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

from mlflow.entities import Metric, Param, RunStatus, RunTag
from mlflow.tracking import MlflowClient

import smcl_tune
from smcl_tune.results import TrialState
from smcl_tune.tracking.tags import (
    EXPERIMENT_KIND_TAG,
    FINGERPRINT_TAG,
    FUSED_GROUP_TAG,
    MODEL_TRAINING,
    NODES_TAG,
    PARENT_TAG,
    REASON_TAG,
    ROLE_TAG,
    RUN_NAME_TAG,
    STATE_TAG,
    STUDY_TAG,
    TRIAL_KEY_TAG,
)

log = logging.getLogger(__name__)

_TERMINAL = {
    TrialState.COMPLETED: RunStatus.FINISHED,
    TrialState.PRUNED: RunStatus.KILLED,
    TrialState.FAILED: RunStatus.FAILED,
}


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

    def __init__(
        self, uri: str, experiment: str, study_name: str, fingerprint: str, artifact_root: Path | None
    ) -> None:
        self.client = MlflowClient(tracking_uri=uri)
        self.study_name = study_name
        self.fingerprint = fingerprint
        found = self.client.get_experiment_by_name(experiment)
        if found is None:
            # A local store's artifacts go to an explicit folder: MLflow's default is ./mlruns under
            # whatever folder the driver runs in. A server's go to its own artifact store (None).
            location = None if artifact_root is None else artifact_root.resolve().as_uri()
            self.experiment_id = self.client.create_experiment(experiment, artifact_location=location)
        else:
            self.experiment_id = found.experiment_id
        if found is None or found.tags.get(EXPERIMENT_KIND_TAG) != MODEL_TRAINING:
            self.client.set_experiment_tag(self.experiment_id, EXPERIMENT_KIND_TAG, MODEL_TRAINING)
        self._finished_at: int | None = None  # when the study had finished, before this driver ran it again
        self.parent_run_id = self._find_or_create_parent()
        self._trial_runs: dict[str, str] = {}
        self._nodes: dict[str, list[str]] = {}
        self._groups: dict[str, str] = {}
        self._last_steps: dict[str, int] = {}  # run id -> the highest step logged

    def _search(self, filter_string: str) -> list:
        return self.client.search_runs([self.experiment_id], filter_string=filter_string, max_results=10000)

    def _find_or_create_parent(self) -> str:
        existing = self._search(f"tags.`{STUDY_TAG}` = '{self.study_name}' and tags.`{ROLE_TAG}` = 'study'")
        if existing:
            run_id = existing[0].info.run_id
            if existing[0].info.status == "FINISHED":
                self._finished_at = existing[0].info.end_time
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
                RUN_NAME_TAG: name,
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

    def note_group(self, run_id: str, group: str) -> None:
        """Record the fused group and slot a trial trains in (tag `smcl.fused_group`), when it changes."""
        if group and self._groups.get(run_id) != group:
            self._groups[run_id] = group
            self.client.set_tag(run_id, FUSED_GROUP_TAG, group)

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
        """End the study run; a child still RUNNING (its trial never ended) is marked KILLED. A
        finished study run again in which no trial trained (none ran, none ended since) stays
        finished at its end time: its elapsed time is its trials', not the time until it was run
        again. The trials' runs decide, as they may be ended by another process's tracker."""
        children = f"tags.`{PARENT_TAG}` = '{self.parent_run_id}'"
        running = self._search(f"{children} and attributes.status = 'RUNNING'")
        for run in running:
            self.client.set_terminated(run.info.run_id, status="KILLED")
        if (
            self._finished_at is not None
            and not running
            and not self._search(f"{children} and attributes.end_time > {self._finished_at}")
        ):
            self.client.set_terminated(self.parent_run_id, status="FINISHED", end_time=self._finished_at)
            return
        self.client.set_terminated(self.parent_run_id, status=status)


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


def log_report_files(uri: str, study: str, files: list[Path]) -> None:
    """Attach report files to a study's parent run (under `leaderboard/`)."""
    client = MlflowClient(tracking_uri=uri)
    parents = client.search_runs(
        [experiment.experiment_id for experiment in client.search_experiments()],
        filter_string=f"tags.`{STUDY_TAG}` = '{study}' and tags.`{ROLE_TAG}` = 'study'",
        max_results=1,
    )
    for path in files if parents else []:
        client.log_artifact(parents[0].info.run_id, str(path), "leaderboard")
