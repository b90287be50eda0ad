"""The Ray Tune trainable: one trial of a study, resumable from its last checkpoint."""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

import ray
from ray import tune

from smcl_tune.errors import DataSourceError
from smcl_tune.results import EPOCHS_PLANNED, NODE_ID, TrialEnd
from smcl_tune.study.gpu_share import cap_gpu_memory
from smcl_tune.study.object_store_outage import (
    ObjectStoreDown,
    hide_unreachable_store_tracebacks,
    store_down_report,
    waiting_for_the_store,
)
from smcl_tune.study.outage_wait import Outage
from smcl_tune.study.scratch_folders import work_folder
from smcl_tune.study.storage_space import report_with_checkpoint
from smcl_tune.study.trial_data_error import data_error_report
from smcl_tune.study.trial_spec import spec_of
from smcl_tune.study.worker_exit import quiet_exit_during_cleanup
from smcl_tune.study.worker_logging import apply_worker_log_level
from smcl_tune.studyfile.schema import OBJECTIVE_METRICS

log = logging.getLogger(__name__)
apply_worker_log_level()  # a worker imports this module before Ray Tune restores a trial in it


def refusal_report(reason: str) -> dict[str, Any]:
    """The one report of a trial whose sampled configuration the trial config refuses: it ends FAILED."""
    end = TrialEnd(0, failed=True, reason=f"the sampled configuration is invalid: {reason}", epochs_planned=0)
    return {**dict.fromkeys(OBJECTIVE_METRICS, math.nan), **end.entries()}


def train_study_trial(
    config: dict[str, Any],
    ray_log_level: str = "INFO",
    fused_groups: str | None = None,
    store_outage: Outage | None = None,
) -> None:
    """Run one trial with `tune.report(metrics, checkpoint=...)` after every epoch; Ray's own
    messages from this process below `ray_log_level` are not shown. With `fused_groups` (the name
    of the study's GroupDirectory) the trial trains as a member of a fused group (fused_groups.py).
    With `store_outage` (a study on an object store), its checkpoints wait for the store when it
    does not answer (object_store_outage.py)."""
    logging.getLogger("ray").setLevel(ray_log_level)
    quiet_exit_during_cleanup()
    if store_outage is not None:
        hide_unreachable_store_tracebacks()  # this trial says that it waits for the store
    if fused_groups is None:  # a fused member trains in its group's process, which caps the group's share
        cap_gpu_memory(ray.get_runtime_context().get_assigned_resources().get("GPU", 0.0))
    spec = spec_of(config)
    if spec.config is None:  # the study goes on; this trial fails with the reason
        tune.report(refusal_report(spec.refusal or "refused"))
        return
    stamp = {EPOCHS_PLANNED: spec.config.training.epochs, NODE_ID: ray.get_runtime_context().get_node_id()}

    def report(metrics: dict[str, Any], checkpoint: Path | None) -> None:
        payload = {**metrics, **stamp}
        for name in OBJECTIVE_METRICS:  # Ray wants the scheduler's metric in every report
            payload.setdefault(name, math.nan)
        report_with_checkpoint(payload, checkpoint, store_outage)  # refused, whole, when the storage is full

    with work_folder() as work:
        resume_from = None
        checkpoint_dir = Path(work) / "checkpoint"
        try:
            checkpoint = tune.get_checkpoint()
            if checkpoint is not None:
                resume_from = waiting_for_the_store(
                    store_outage,
                    lambda: Path(checkpoint.to_directory(str(Path(work) / "resume"))),
                    "this trial's last checkpoint",
                )
            if fused_groups is not None:
                from smcl_tune.study.fused_groups import train_fused_member

                train_fused_member(spec.config, report, checkpoint_dir, resume_from, fused_groups)
                return
            from smcl_tune.trial.run import run_trial

            run_trial(spec.config, report=report, checkpoint_dir=checkpoint_dir, resume_from=resume_from)
        except DataSourceError as error:  # the driver stops the study on this report
            tune.report(data_error_report(error))
        except ObjectStoreDown as error:  # so does it on this one
            tune.report(store_down_report(error))
