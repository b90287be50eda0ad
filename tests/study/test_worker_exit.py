"""A SystemExit that Python cannot propagate (Ray's SIGTERM during garbage collection) prints nothing."""

import subprocess
import sys

import pytest

HOOK = "from smcl_tune.study.worker_exit import quiet_exit_during_cleanup\nquiet_exit_during_cleanup()"

RAISE_INSIDE_WEAKREF_CALLBACK = """
import weakref
{setup}
class Thing:
    pass

def stop(_):
    raise {error}

thing = Thing()
watcher = weakref.ref(thing, stop)
del thing
print("went on")
"""


def _run(setup: str, error: str = "SystemExit(1)") -> subprocess.CompletedProcess:
    code = RAISE_INSIDE_WEAKREF_CALLBACK.format(setup=setup, error=error)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)


def test_without_the_hook_python_prints_a_traceback():
    finished = _run(setup="")
    assert "Traceback" in finished.stderr and "SystemExit" in finished.stderr


def test_with_the_hook_the_exit_passes_quietly():
    finished = _run(setup=HOOK)
    assert finished.stderr == ""
    assert finished.stdout == "went on\n"


def test_other_errors_in_cleanup_are_still_printed():
    finished = _run(setup=HOOK, error="ValueError('a real bug')")
    assert "a real bug" in finished.stderr


def _trial_then_the_hook(config):
    """The study's trainable, as Ray runs it in a trial's worker, then which unraisable hook that worker has."""
    import sys

    from ray import tune

    from smcl_tune.study.trainable import train_study_trial

    train_study_trial(config)
    tune.report({"val_balanced_accuracy": 0.0, "hook": sys.unraisablehook.__name__})


@pytest.mark.ray
@pytest.mark.slow
def test_the_trainable_installs_the_hook_in_the_worker_that_runs_a_trial(shared_ray, tmp_path):
    from ray import tune

    from smcl_tune.study.trial_spec import SEARCH, TRIAL_SPEC, TrialSpec
    from smcl_tune.studyfile.conditions import Condition

    refused = TrialSpec(
        Condition("", {}), SEARCH, "trial-000", "trial-000", refusal="a refused sample: it ends at once"
    )
    tuner = tune.Tuner(
        _trial_then_the_hook,
        param_space={TRIAL_SPEC: refused},
        run_config=tune.RunConfig(storage_path=str(tmp_path), name="hook", verbose=0),
    )
    (result,) = tuner.fit()
    assert result.error is None, result.error
    assert result.metrics["hook"] == "_quiet_about_exits"  # not Python's default: quiet_exit_during_cleanup ran
