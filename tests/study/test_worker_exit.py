"""A SystemExit that Python cannot propagate (Ray's SIGTERM during garbage collection) prints nothing."""

import subprocess
import sys

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
