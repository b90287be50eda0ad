"""The Ray Tune trainable: one trial of a study, resumable from its last checkpoint."""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

import ray
from ray import tune

from smcl_tune.config import ConfigError, trial_config_from_dict
from smcl_tune.results import FINAL_MARKER
from smcl_tune.study.keys import trial_params
from smcl_tune.study.storage_space import report_with_checkpoint
from smcl_tune.study.work_folders import work_folder
from smcl_tune.study_config import OBJECTIVE_METRICS, apply_overrides
from smcl_tune.train import cap_gpu_memory, run_trial


def _invalid_sample(reason: str) -> dict[str, Any]:
    """The one report of a trial whose sampled configuration the trial config refuses: it ends FAILED."""
    return {
        **dict.fromkeys(OBJECTIVE_METRICS, math.nan),
        FINAL_MARKER: 0,
        "epochs_planned": 0,
        "trial_failed": 1.0,
        "failure_reason": f"the sampled configuration is invalid: {reason}",
    }


def train_study_trial(config: dict[str, Any], base_trial: dict[str, Any], ray_log_level: str = "INFO") -> None:
    """Run one trial with `tune.report(metrics, checkpoint=...)` after every epoch; Ray's own
    messages from this process below `ray_log_level` are not shown."""
    logging.getLogger("ray").setLevel(ray_log_level)
    cap_gpu_memory(ray.get_runtime_context().get_assigned_resources().get("GPU", 0.0))
    try:
        trial_config = trial_config_from_dict(apply_overrides(base_trial, trial_params(config)))
    except ConfigError as error:  # the study goes on; this trial fails with the reason
        tune.report(_invalid_sample(str(error)))
        return
    planned = trial_config.training.epochs
    node_id = ray.get_runtime_context().get_node_id()

    def report(metrics: dict[str, Any], checkpoint: Path | None) -> None:
        payload = {**metrics, "epochs_planned": planned, "node_id": node_id}
        for name in OBJECTIVE_METRICS:  # Ray wants the scheduler's metric in every report
            payload.setdefault(name, math.nan)
        report_with_checkpoint(payload, checkpoint)  # refused, whole, when the storage is full

    with work_folder() as work:
        resume_from = None
        checkpoint = tune.get_checkpoint()
        if checkpoint is not None:
            resume_from = Path(checkpoint.to_directory(str(Path(work) / "resume")))
        run_trial(trial_config, report=report, checkpoint_dir=Path(work) / "checkpoint", resume_from=resume_from)
