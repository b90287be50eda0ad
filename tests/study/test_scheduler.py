"""The study's scheduler: ASHA compares a trial only with its own condition; baselines and
confirmation runs are never stopped. (Fed trials as ASHA reads them: an id and a config.)"""

from types import SimpleNamespace

from ray.tune.schedulers import TrialScheduler

from smcl_tune.study.scheduler import StudyScheduler
from smcl_tune.study.trial_spec import TrialSpec
from smcl_tune.studyfile.conditions import Condition

METRIC = "val_balanced_accuracy"
ASHA = {"max_t": 4, "grace_period": 1, "reduction_factor": 2}


def _trial(trial_id: str, role: str, condition: str) -> SimpleNamespace:
    spec = TrialSpec(Condition(condition, {}), role, trial_id, trial_id)
    return SimpleNamespace(trial_id=trial_id, config=spec.ray_config())


def _first_epoch(scheduler: StudyScheduler, trial, score: float) -> str:
    scheduler.on_trial_add(None, trial)
    return scheduler.on_trial_result(None, trial, {"training_iteration": 1, METRIC: score})


def test_a_trial_is_compared_only_with_trials_of_its_condition():
    scheduler = StudyScheduler(METRIC, "max", ASHA)
    assert _first_epoch(scheduler, _trial("easy", "search", "imbalance_factor=10"), 0.9) == TrialScheduler.CONTINUE
    # The harder condition's first trial scores lower, but has no trial of its own condition to lose to.
    assert _first_epoch(scheduler, _trial("hard-1", "search", "imbalance_factor=100"), 0.2) == TrialScheduler.CONTINUE
    assert _first_epoch(scheduler, _trial("hard-2", "search", "imbalance_factor=100"), 0.1) == TrialScheduler.STOP


def test_one_asha_across_conditions_would_have_stopped_it():
    scheduler = StudyScheduler(METRIC, "max", ASHA)
    assert _first_epoch(scheduler, _trial("easy", "search", ""), 0.9) == TrialScheduler.CONTINUE
    assert _first_epoch(scheduler, _trial("hard-1", "search", ""), 0.2) == TrialScheduler.STOP


def test_baselines_and_confirmation_runs_always_train_their_full_budget():
    scheduler = StudyScheduler(METRIC, "max", ASHA)
    _first_epoch(scheduler, _trial("good", "search", ""), 0.9)
    for role in ("baseline", "confirm"):
        trial = _trial(f"weak-{role}", role, "")
        scheduler.on_trial_add(None, trial)
        for epoch in range(1, 5):
            decision = scheduler.on_trial_result(None, trial, {"training_iteration": epoch, METRIC: 0.01})
            assert decision == TrialScheduler.CONTINUE


def test_fifo_stops_nothing():
    scheduler = StudyScheduler(METRIC, "max", None)
    _first_epoch(scheduler, _trial("good", "search", ""), 0.9)
    assert _first_epoch(scheduler, _trial("weak", "search", ""), 0.01) == TrialScheduler.CONTINUE


def test_a_report_that_stops_the_study_is_no_result_for_a_rung():
    from smcl_tune.study.object_store_outage import STORE_DOWN

    scheduler = StudyScheduler(METRIC, "min", ASHA)
    assert _first_epoch(scheduler, _trial("first", "search", ""), 0.2) == TrialScheduler.CONTINUE
    waiting = _trial("waiting", "search", "")
    scheduler.on_trial_add(None, waiting)
    stopped = {"training_iteration": 1, METRIC: 0.9, STORE_DOWN: "the object store did not answer"}
    assert scheduler.on_trial_result(None, waiting, stopped) == TrialScheduler.CONTINUE
    # resumed, the trial's real first epoch is judged at the rung, as if the stop had not been
    assert scheduler.on_trial_result(None, waiting, {"training_iteration": 1, METRIC: 0.9}) == TrialScheduler.STOP
