"""Links into MLflow's UI that open a study on what a user came for: its trials, best first.

MLflow 3.17's UI opens an experiment on its GenAI pages unless the URL (or the browser's last
choice) says `workflowType=machine_learning`; the experiment's `mlflow.experimentKind` tag only
spares the user its "what kind of experiment" question. Filtering on the trial role lists the
trials flat instead of folded under the study's run.
"""

from __future__ import annotations

from urllib.parse import urlencode

from smcl_tune.tracking.tags import ROLE_TAG, STUDY_TAG


def trial_runs_link(base_url: str, experiment_id: str, study: str, metric: str, mode: str = "max") -> str:
    quoted = study.replace("'", "\\'")
    query = urlencode(
        {
            "workflowType": "machine_learning",
            "searchFilter": f"tags.`{STUDY_TAG}` = '{quoted}' and tags.`{ROLE_TAG}` != 'study'",
            "orderByKey": f"metrics.`selected_{metric}`",
            "orderByAsc": "true" if mode == "min" else "false",
        }
    )
    return f"{base_url.rstrip('/')}/#/experiments/{experiment_id}/runs?{query}"
