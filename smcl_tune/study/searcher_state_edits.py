"""Edits of a StudySearcher's saved state (its __dict__, as its file holds it) that bring it in line
with Ray's saved experiment state, which Ray writes as a separate file (search_state_repair.py).

- A trial the searcher suggested that Ray's state does not hold is planned again.
- A trial Ray's state holds that the searcher never suggested (its file the older one) is taken as
  the searcher's own: otherwise its Optuna trial, left RUNNING, is handed out again as an orphan, two
  Ray trials share one MLflow run, and the study ends a trial short.
"""

from __future__ import annotations

import logging
from typing import Any

from smcl_tune.study.searcher import open_trial
from smcl_tune.study.trial_spec import SEARCH, TrialSpec

log = logging.getLogger(__name__)


def forget_lost_suggestions(searcher_state: dict[str, Any], known: set[str]) -> list[str]:
    """`lost_suggestions`, planned again in `searcher_state` (a StudySearcher's __dict__, as saved): a
    baseline or confirmation run goes back to the front of the queue, a search trial's slot too (its
    Optuna trial, left RUNNING, is picked up again as an orphan)."""
    lost = lost_suggestions(searcher_state, known)
    for trial_id in reversed(lost):
        spec = searcher_state["_specs"].pop(trial_id)
        held = searcher_state["_trials"].pop(trial_id, None)
        searcher_state["_reported_steps"].pop(trial_id, None)
        if held is None:
            searcher_state["_pending"].insert(0, spec)
        else:
            searcher_state["_search_slots"].insert(0, held[0])
        log.warning(
            "%s, suggested just before the driver stopped, is not in Ray's saved state: planned again", spec.name
        )
    return lost


def lost_suggestions(searcher_state: dict[str, Any], known: set[str]) -> list[str]:
    """The trials a saved searcher suggested that Ray's saved state does not hold and that never
    ended: what a driver killed between the two saves leaves (see search_state_repair.py)."""
    ended = searcher_state.get("_ended", set())
    return [
        trial_id for trial_id in searcher_state.get("_specs", {}) if trial_id not in known and trial_id not in ended
    ]


def adopt_unknown_trials(searcher_state: dict[str, Any], ray_specs: dict[str, TrialSpec]) -> list[str]:
    """The trials of `ray_specs` (Ray's saved trials: id -> spec) that `searcher_state` never
    suggested, taken as suggested: a search trial with its Optuna trial and a search slot, a
    baseline or confirmation run out of the queue."""
    adopted = []
    for trial_id, spec in ray_specs.items():
        if trial_id in searcher_state["_specs"]:
            continue
        if spec.role == SEARCH:
            study = searcher_state["optuna_studies"][spec.condition.label]
            number = int(spec.identity.removeprefix("optuna-"))
            frozen = next(trial for trial in study.get_trials(deepcopy=False) if trial.number == number)
            searcher_state["_trials"][trial_id] = (spec.condition, open_trial(study, frozen))
            searcher_state["_reported_steps"][trial_id] = set(frozen.intermediate_values)
            if spec.condition in searcher_state["_search_slots"]:
                searcher_state["_search_slots"].remove(spec.condition)
        else:
            queued = [pending for pending in searcher_state["_pending"] if pending.key == spec.key]
            if queued:
                searcher_state["_pending"].remove(queued[0])
        searcher_state["_specs"][trial_id] = spec
        adopted.append(trial_id)
        log.warning("%s, in Ray's saved state but not in the searcher's, is taken up by the searcher", spec.name)
    return adopted
