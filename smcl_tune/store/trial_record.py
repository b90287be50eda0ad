"""One trial as the store records it (its MLflow run), typed once for every reader: status, the
leaderboard and a resumed driver."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from smcl_tune.results import TrialState, objective_value
from smcl_tune.tracking.tags import (
    CONDITION_TAG,
    CONFIGURATION_TAG,
    FUSED_GROUP_TAG,
    REASON_TAG,
    ROLE_TAG,
    RUN_NAME_TAG,
    STATE_TAG,
)

SEARCH_ROLE = "search"  # a search trial's ROLE_TAG, as against a baseline's or a confirmation's
ROLES = (SEARCH_ROLE, "baseline", "confirm")


def trial_state(tag: str | None) -> TrialState:
    """The state a trial run's tag records; a run without one (or an unknown one) is still running."""
    try:
        return TrialState(tag)
    except ValueError:
        return TrialState.RUNNING


def epochs_done(metrics: dict[str, float]) -> int:
    """Epochs a trial trained: its final count, else its last reported epoch's number + 1, else 0."""
    done = metrics.get("epochs_completed")
    if done is None:
        done = metrics["epoch"] + 1 if "epoch" in metrics else 0
    return int(done)


@dataclass(frozen=True)
class TrialRecord:
    run_id: str
    run_name: str  # "trial-003", "baseline-ce-s1 [imbalance_factor=100]"
    condition: str  # the condition's label ("" without conditions)
    role: str  # search, baseline or confirm
    configuration: str  # what a configuration's seeds share: a baseline's name, "trial-003"
    state: TrialState  # as its tag records it
    run_status: str  # MLflow's: RUNNING, FINISHED, KILLED, FAILED
    epochs_done: int
    objective: float  # the selected epoch's validation objective; the last epoch's while running
    seconds: float  # training time (Ray's), across resumes
    reason: str | None
    ended_ms: int | None
    tags: dict[str, str]
    metrics: dict[str, float]
    params: dict[str, str]

    @property
    def fused_group(self) -> str:
        """The fused group and slot it trains (or trained) in, "" for a trial that was not fused."""
        return self.tags.get(FUSED_GROUP_TAG, "")

    @property
    def name(self) -> str:
        """The run name without its condition: "baseline-ce-s1"."""
        suffix = f" [{self.condition}]"
        return self.run_name.removesuffix(suffix) if self.condition else self.run_name

    @classmethod
    def of_run(cls, run: Any, metric: str) -> TrialRecord:
        """The record of an MLflow trial run; `metric`: the study's objective."""
        tags, metrics = run.data.tags, run.data.metrics
        role = tags.get(ROLE_TAG, "")
        return cls(
            run_id=run.info.run_id,
            run_name=tags.get(RUN_NAME_TAG) or run.info.run_name or run.info.run_id,
            condition=tags.get(CONDITION_TAG, ""),
            role=role if role in ROLES else "search",
            configuration=tags.get(CONFIGURATION_TAG, ""),
            state=trial_state(tags.get(STATE_TAG)),
            run_status=run.info.status,
            epochs_done=epochs_done(metrics),
            objective=objective_value(metrics, metric),
            seconds=float(metrics.get("trial_seconds", 0.0)),
            reason=tags.get(REASON_TAG),
            ended_ms=run.info.end_time,
            tags=dict(tags),
            metrics=dict(metrics),
            params=dict(run.data.params),
        )

    def number(self, tag: str) -> float:
        """A tag's value as a number; NaN when it is missing or not a number."""
        try:
            return float(self.tags[tag])
        except (KeyError, TypeError, ValueError):
            return math.nan
