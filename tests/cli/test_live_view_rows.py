"""The live view's rows of running trials name each trial whole: a condition's brackets are text,
not rich markup (they were dropped, so trials of two conditions looked the same)."""

import io

from rich.console import Console

from smcl_tune.cli.live_view import LiveView
from smcl_tune.store.progress import StudyProgress, TrialProgress


def test_a_running_trials_row_keeps_its_condition_and_its_group():
    progress = StudyProgress("val_balanced_accuracy", "max", planned_trials=2, epochs_per_trial=5)
    for key, condition in (("a", "imbalance_factor=5"), ("b", "imbalance_factor=10")):
        trial = TrialProgress(f"trial-001 [{condition}]", condition, epochs_done=2, epochs_planned=5)
        trial.fused_group = "g0/1" if key == "a" else ""
        progress.add(key, trial)
    view = LiveView("f10")
    view.started(progress)
    screen = io.StringIO()
    Console(file=screen, width=160, color_system=None).print(view._render())
    lines = screen.getvalue().splitlines()
    assert any(line.startswith("trial-001 [imbalance_factor=5] (g0/1) ") for line in lines), lines
    assert any(line.startswith("trial-001 [imbalance_factor=10] ") for line in lines), lines
