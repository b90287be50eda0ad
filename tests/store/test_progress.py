"""A study's progress as the driver sees it: counts, the best per condition, the ETA, and what
the plain and live views make of it."""

import io
import math

import pytest
from rich.console import Console

from smcl_tune.cli.formatting import format_duration
from smcl_tune.cli.live_view import LiveView
from smcl_tune.cli.plain_view import PlainView
from smcl_tune.results import TrialState
from smcl_tune.store.progress import StudyProgress, TrialProgress, trial_key


class Recorder:
    def __init__(self):
        self.events = []

    def started(self, progress):
        self.events.append(("started", progress.planned_trials))

    def epoch_ended(self, progress, trial):
        self.events.append(("epoch", trial.name, trial.epochs_done))

    def trial_ended(self, progress, trial):
        self.events.append(("ended", trial.describe()))


def _epoch(epoch, objective, planned=4, seconds=None):
    return {
        "epoch": epoch,
        "val_balanced_accuracy": objective,
        "epochs_planned": planned,
        "images_per_second": 100.0,
        "time_total_s": 10.0 * (epoch + 1) if seconds is None else seconds,
    }


def _best(progress):
    return {condition: (trial.objective, trial.name) for condition, trial in progress.best().items()}


def test_a_finished_trial_counts_with_its_selected_epoch_as_status_and_the_leaderboard_do():
    """Its final report carries the last epoch's value and the selected epoch's (`selected_<metric>`):
    the views said the last (0.7050 where `status` and the leaderboard said 0.7100)."""
    progress = StudyProgress("val_balanced_accuracy", "max", planned_trials=2, epochs_per_trial=2)
    progress.epoch_ended("a", "baseline-ce", "", _epoch(0, 0.71, planned=2))
    progress.epoch_ended(
        "a", "baseline-ce", "", {**_epoch(1, 0.705, planned=2), "selected_val_balanced_accuracy": 0.71}
    )
    progress.trial_ended("a", "baseline-ce", "", TrialState.COMPLETED, None)
    progress.epoch_ended("b", "trial-000", "", _epoch(0, 0.708, planned=2))
    assert _best(progress) == {"": (0.71, "baseline-ce")}


@pytest.mark.parametrize(("mode", "early", "selected"), [("max", 0.9, 0.7), ("min", 0.4, 0.55)])
def test_the_best_is_a_completed_trial_once_one_has_completed(mode, early, selected):
    """As the leaderboard ranks them: `status` called a trial stopped early at a good early epoch
    the best (mode min: 0.4000, pruned), above the completed trial the confirmation retrained."""
    progress = StudyProgress("val_balanced_accuracy", mode, planned_trials=3, epochs_per_trial=2)
    progress.epoch_ended("a", "trial-000", "", _epoch(0, early, planned=2))
    assert _best(progress) == {"": (early, "trial-000")}  # nothing has completed yet
    progress.trial_ended("a", "trial-000", "", TrialState.PRUNED, None)
    progress.epoch_ended("b", "trial-001", "", _epoch(0, selected, planned=2))
    progress.epoch_ended(
        "b", "trial-001", "", {**_epoch(1, selected, planned=2), "selected_val_balanced_accuracy": selected}
    )
    progress.trial_ended("b", "trial-001", "", TrialState.COMPLETED, None)
    progress.epoch_ended("c", "trial-002", "", _epoch(0, early, planned=2))  # running, as good as the pruned one
    assert _best(progress) == {"": (selected, "trial-001")}


def test_among_trials_that_tie_the_best_is_the_one_the_leaderboard_ranks_first():
    """By name, as the leaderboard orders equal objectives: `status` named trial-004 where the plain
    lines and the leaderboard named the first, all three at 0.6000."""
    progress = StudyProgress("val_balanced_accuracy", "max", planned_trials=3, epochs_per_trial=1)
    for key, name in (("c", "trial-004"), ("a", "trial-000"), ("b", "trial-002")):
        progress.epoch_ended(key, name, "", {**_epoch(0, 0.6, planned=1), "selected_val_balanced_accuracy": 0.6})
        progress.trial_ended(key, name, "", TrialState.COMPLETED, None, role="search")
    assert _best(progress) == {"": (0.6, "trial-000")}


def test_the_best_is_a_search_trial_as_the_report_names_it_not_a_baselines_seed():
    """A walk saw `status` name `baseline-ce-s3` the best, where the report's per-class plot named
    the best trial trial-000: the best is the best configuration the search found."""
    progress = StudyProgress("val_balanced_accuracy", "max", planned_trials=3, epochs_per_trial=1)
    for key, name, role, value in (("a", "baseline-ce-s3", "baseline", 0.9), ("b", "confirm-000-s1", "confirm", 0.8)):
        progress.epoch_ended(key, name, "", {**_epoch(0, value, planned=1), "selected_val_balanced_accuracy": value})
        progress.trial_ended(key, name, "", TrialState.COMPLETED, None, role=role)
    assert _best(progress) == {"": (0.9, "baseline-ce-s3")}  # no search trial has completed yet
    progress.epoch_ended("c", "trial-000", "", {**_epoch(0, 0.7, planned=1), "selected_val_balanced_accuracy": 0.7})
    progress.trial_ended("c", "trial-000", "", TrialState.COMPLETED, None, role="search")
    assert _best(progress) == {"": (0.7, "trial-000")}


def test_counts_best_per_condition_and_the_listener_hears_every_event():
    recorder = Recorder()
    progress = StudyProgress("val_balanced_accuracy", "max", planned_trials=6, epochs_per_trial=4, listener=recorder)
    progress.epoch_ended("a", "trial-000", "IF 10", _epoch(0, 0.5))
    progress.epoch_ended("b", "trial-001", "IF 100", _epoch(0, 0.2))
    progress.epoch_ended("a", "trial-000", "IF 10", _epoch(1, 0.4))  # worse than its first epoch
    assert progress.best() == {"IF 10": progress.trials["a"], "IF 100": progress.trials["b"]}
    assert progress.trials["a"].objective == 0.4  # the last epoch's, while it runs; the best keeps the trial
    assert len(progress.running) == 2 and progress.to_go == 4
    progress.trial_ended("a", "trial-000", "IF 10", TrialState.PRUNED, None)
    progress.trial_ended("b", "trial-001", "IF 100", TrialState.FAILED, "CUDA out of memory")
    assert progress.counts() == {TrialState.PRUNED: 1, TrialState.FAILED: 1} and progress.ended() == 2
    assert progress.to_go == 4 and not progress.running
    assert recorder.events[-2:] == [
        ("ended", "trial-000: stopped early at epoch 2"),
        ("ended", "trial-001: failed at epoch 1: CUDA out of memory"),
    ]


def test_a_minimising_objective_keeps_the_lowest_and_nan_is_never_best():
    progress = StudyProgress("val_loss", "min", planned_trials=2, epochs_per_trial=2)
    progress.epoch_ended("a", "t0", "", {"epoch": 0, "val_loss": 0.9})
    progress.epoch_ended("b", "t1", "", {"epoch": 0, "val_loss": math.nan})
    progress.epoch_ended("b", "t1", "", {"epoch": 1, "val_loss": 0.7})
    assert _best(progress) == {"": (0.7, "t1")}


def test_trials_of_an_earlier_session_count_as_ended_and_can_be_best():
    progress = StudyProgress("val_balanced_accuracy", "max", planned_trials=5, epochs_per_trial=4)
    progress.add("r0", TrialProgress("trial-000", "", state=TrialState.COMPLETED, epochs_done=4, objective=0.61))
    progress.add("r1", TrialProgress("trial-001", "", state=TrialState.PRUNED, epochs_done=1, objective=0.30))
    assert progress.to_go == 3 and progress.ended() == 2 and _best(progress) == {"": (0.61, "trial-000")}


def test_an_earlier_sessions_trial_that_ray_reports_again_is_counted_and_said_once():
    """A driver killed after a trial's end reached the store, before Ray saved its own state: on
    resume Ray reports the trial's last report and its end again (`4 done` of 3 planned, and a second
    'finished' line). A pruned or failed trial that Ray trains on instead is running until it ends."""
    recorder = Recorder()
    progress = StudyProgress("val_balanced_accuracy", "max", planned_trials=3, epochs_per_trial=4, listener=recorder)
    done = TrialProgress("trial-000", "if=10", state=TrialState.COMPLETED, epochs_done=4, objective=0.61)
    progress.add(trial_key("if=10", "trial-000"), done)
    pruned = TrialProgress("trial-001", "if=10", state=TrialState.PRUNED, epochs_done=1, objective=0.3)
    progress.add(trial_key("if=10", "trial-001"), pruned)
    again = (trial_key("if=10", "trial-000"), "trial-000", "if=10")
    progress.trial_started(*again)
    last = {**_epoch(3, 0.5), "selected_val_balanced_accuracy": 0.61, "epochs_completed": 4}  # its final report
    progress.epoch_ended(*again, last)
    progress.trial_ended(*again, TrialState.COMPLETED, None)
    assert recorder.events == [] and progress.ended() == 2 and progress.to_go == 1
    assert _best(progress) == {"if=10": (0.61, "trial-000")}
    trained_on = (trial_key("if=10", "trial-001"), "trial-001", "if=10")  # resumed from its rung's checkpoint
    progress.trial_started(*trained_on)
    progress.epoch_ended(*trained_on, _epoch(1, 0.35))
    assert [trial.name for trial in progress.running] == ["trial-001"] and progress.ended() == 1
    progress.epoch_ended(*trained_on, {**_epoch(3, 0.4), "selected_val_balanced_accuracy": 0.4, "epochs_completed": 4})
    progress.trial_ended(*trained_on, TrialState.COMPLETED, None)
    assert recorder.events == [
        ("epoch", "trial-001", 2),
        ("epoch", "trial-001", 4),
        ("ended", "trial-001: finished after 4 epochs"),
    ]
    assert progress.counts()[TrialState.COMPLETED] == 2 and progress.ended() == 2


def test_eta_is_the_epochs_left_at_the_rate_trained_so_far_without_the_start_up():
    progress = StudyProgress("val_balanced_accuracy", "max", planned_trials=3, epochs_per_trial=4)
    progress.started -= 600  # the driver started 10 minutes ago: Ray's start-up, data, ...
    progress.epoch_ended("a", "t0", "", _epoch(0, 0.5, seconds=10.0))
    # one running trial with 3 epochs left, two trials of 4 epochs to go: 11 epochs at 10 s an epoch
    # of training; the 10 minutes of start-up are not a rate (the first GPU study's ETA said 1h39m)
    assert progress.eta_seconds() == pytest.approx(110)
    progress.epoch_ended("b", "t1", "", _epoch(0, 0.5, seconds=10.0))
    # two at once now: 3 + 3 + 4 epochs left, at 10 s an epoch, two at a time
    assert progress.eta_seconds() == pytest.approx(50)


def test_no_eta_before_an_epoch_has_been_trained():
    progress = StudyProgress("val_balanced_accuracy", "max", planned_trials=3, epochs_per_trial=4)
    progress.trial_started("a", "t0", "")
    assert progress.eta_seconds() is None


def test_durations_read_as_a_person_would_write_them():
    assert [format_duration(s) for s in (5, 65, 3 * 3600 + 125)] == ["5s", "1m05s", "3h02m"]
    assert format_duration(None) == "unknown"


def test_plain_view_prints_an_epoch_line_at_most_every_interval_and_every_trial_end(capsys):
    view = PlainView("demo", min_interval_s=3600)
    progress = StudyProgress("val_balanced_accuracy", "max", planned_trials=2, epochs_per_trial=4, listener=view)
    view.started(progress)
    for epoch in range(4):
        progress.epoch_ended("a", "trial-000", "", _epoch(epoch, 0.1 * epoch))
    progress.trial_ended("a", "trial-000", "", TrialState.COMPLETED, None)
    lines = capsys.readouterr().out.splitlines()
    assert "study demo: 2 trials planned" in lines[0]
    assert len(lines) == 3  # the start, one epoch line (the rest fall within the interval), the end
    assert "trial-000: epoch 1/4, val_balanced_accuracy 0.0%, 100 images/s" in lines[1]
    assert "trial-000: finished after 4 epochs" in lines[2] and "1 done" in lines[2] and "1 to go" in lines[2]
    assert "best val_balanced_accuracy: 30.0% (trial-000)" in lines[2]


def test_live_view_shows_the_study_line_and_a_bar_per_running_trial():
    view = LiveView("demo")
    view.console = Console(file=io.StringIO(), width=150, record=True)
    progress = StudyProgress("val_balanced_accuracy", "max", planned_trials=4, epochs_per_trial=4, listener=view)
    view.started(progress)
    progress.epoch_ended("a", "trial-000 [IF 100]", "IF 100", _epoch(1, 0.42))
    progress.epoch_ended("b", "trial-001 [IF 100]", "IF 100", {**_epoch(0, 0.3), "gpu_memory_peak_mib": 2048.0})
    view.console.print(view._render())
    screen = view.console.export_text()
    assert "study demo: 0 done, 0 stopped early, 0 failed, 2 running, 2 to go" in screen
    assert "best val_balanced_accuracy: 42.0% (trial-000 [IF 100])" in screen
    assert screen.count("[IF 100]") == 3  # once per running trial and in the best: never twice in a row
    assert "trial-000" in screen and "epoch 2/4" in screen and "100 images/s" in screen
    assert "GPU 2.0 GiB" in screen
    progress.trial_ended("a", "trial-000 [IF 100]", "IF 100", TrialState.PRUNED, None)
    assert "trial-000 [IF 100]: stopped early at epoch 2\n" in view.console.export_text()


def test_an_ended_trial_says_how_it_ended():
    finished = TrialProgress("t", "", state=TrialState.COMPLETED, epochs_done=8)
    assert finished.describe() == "t: finished after 8 epochs"
    one = TrialProgress("t", "", state=TrialState.COMPLETED, epochs_done=1)
    assert one.describe() == "t: finished after 1 epoch"  # not "1 epochs"
    assert TrialProgress("t", "", state=TrialState.FAILED).describe() == "t: failed at epoch 0: no reason given"


def test_plain_view_counts_one_planned_trial_in_the_singular(capsys):
    view = PlainView("demo", min_interval_s=3600)
    view.started(StudyProgress("val_balanced_accuracy", "max", planned_trials=1, epochs_per_trial=4, listener=view))
    assert capsys.readouterr().out.rstrip().endswith("study demo: 1 trial planned")
