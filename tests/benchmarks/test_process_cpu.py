"""The CPU accounting of benchmarks/study_overhead.py and suite_cpu.py: what a process spends is
counted once, under its kind, including a process that starts and ends while the command runs."""

import sys

from benchmarks.study_overhead import profiled_run
from benchmarks.suite_cpu import suite_kind

# busy for 0.6 CPU-seconds, then idle a while, so that a sampler slowed by a loaded machine still
# sees its last CPU time before it ends
BUSY_CHILD = "import time; end = time.process_time() + 0.6\nwhile time.process_time() < end: pass\ntime.sleep(0.6)"


def test_a_busy_child_is_counted_under_its_kind_and_an_idle_one_costs_nothing(tmp_path):
    busy = f"import subprocess, sys; subprocess.run([sys.executable, '-c', {BUSY_CHILD!r}, 'busy-child'])"
    command = [sys.executable, "-c", f"{busy}\nimport time; time.sleep(0.5)", "parent"]
    kinds = {"busy-child": "child", "parent": "parent"}

    def kind_of(command_line: str) -> str:
        return next((kind for mark, kind in kinds.items() if mark in command_line), "other")

    wall, cpu = profiled_run(command, tmp_path, kind_of=kind_of, every_s=0.05)
    assert 0.55 <= cpu["child"] <= 1.0, cpu
    assert cpu.get("parent", 0.0) < 0.5, cpu  # start-up and a sleep
    assert wall >= 1.0


def test_the_suites_processes_are_told_apart_by_their_command_lines():
    assert suite_kind(".venv/bin/python -m pytest -q -n 2") == "pytest (in-process tests)"
    assert suite_kind("python -c import sys;exec(eval(sys.stdin.readline()))") == "pytest (in-process tests)"
    # a study started by a test names the test's temporary folder, not pytest itself
    assert suite_kind("python -m smcl_tune.cli run /tmp/pytest-of-root/pytest-1/x/tiny.yaml").startswith("smcl-tune")
    assert suite_kind("ray::ImplicitFunc.train") == "Ray workers (trials)"
    assert suite_kind("/x/ray/core/src/ray/raylet/raylet --raylet_socket_name=/tmp/ray/s") == "Ray daemons"
    assert suite_kind("python -m mlflow server --backend-store-uri sqlite:////tmp/pytest-of-root/m.db") == (
        "MLflow, dashboards"
    )
