"""The CPU accounting of benchmarks/study_overhead.py and suite_cpu.py: what a process spends is
counted once, under its kind, including a process that starts and ends while the command runs."""

import collections
import sys

from benchmarks.study_overhead import profiled_run
from benchmarks.suite_cpu import suite_kind

# busy for 0.6 CPU-seconds, then idle a while, so that a sampler slowed by a loaded machine still
# sees its last CPU time before it ends
BUSY_CHILD = "import time; end = time.process_time() + 0.6\nwhile time.process_time() < end: pass\ntime.sleep(0.6)"


def test_a_busy_child_is_counted_under_its_kind_and_an_idle_parent_costs_little(tmp_path):
    # the child's mark is joined at run time, so that the parent's own command line does not hold it
    busy = f"import subprocess, sys; subprocess.run([sys.executable, '-c', {BUSY_CHILD!r}, 'busy-' + 'child'])"
    command = [sys.executable, "-c", f"{busy}\nimport time; time.sleep(0.5)", "parent"]

    def kind_of(argv: list[str]) -> str:
        return "child" if "busy-child" in argv else "parent" if "parent" in argv else "other"

    started = collections.Counter()
    wall, cpu = profiled_run(command, tmp_path, kind_of=kind_of, every_s=0.05, started=started)
    assert (started["parent"], started["child"]) == (1, 1), started  # the machine's other processes aside
    assert 0.55 <= cpu["child"] <= 1.0, cpu
    assert 0.0 < cpu["parent"] < 0.5, cpu  # start-up and a sleep
    assert wall >= 1.5  # the child's 0.6 s of work and 0.6 s of sleep, the parent's 0.5 s


def test_the_suites_processes_are_told_apart_by_program_script_and_module():
    python = "/home/me/smcl-tune/.venv/bin/python"  # a checkout whose folder is named as the tool
    assert suite_kind([python, "-m", "pytest", "-q", "-n", "2"]) == "pytest (in-process tests)"
    assert suite_kind([python, "-c", "import sys;exec(eval(sys.stdin.readline()))"]) == "pytest (in-process tests)"
    study = "/tmp/pytest-of-root/pytest-1/test_x0/tiny.yaml"  # what a test starts names the test's folder
    assert suite_kind([python, "-m", "smcl_tune.cli", "run", study]).startswith("smcl-tune")
    assert suite_kind([python, "/home/me/smcl-tune/.venv/bin/smcl-tune", "run", study]).startswith("smcl-tune")
    assert suite_kind(["ray::ImplicitFunc.train"]) == "Ray workers (trials)"
    assert suite_kind([python, "/home/me/smcl-tune/.venv/ray/_private/workers/default_worker.py"]) == (
        "Ray workers (trials)"
    )
    assert suite_kind(["/home/me/smcl-tune/.venv/ray/core/src/ray/raylet/raylet", "--node"]) == "Ray daemons"
    assert suite_kind([python, "-u", "/home/me/smcl-tune/.venv/ray/dashboard/agent.py"]) == "Ray daemons"
    assert suite_kind([python, "-m", "mlflow", "server", "--backend-store-uri", f"sqlite:///{study}"]) == (
        "MLflow, dashboards"
    )
    assert suite_kind([]) == "other"
