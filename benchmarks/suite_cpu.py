"""Where the test suite's CPU goes: `make test` (or another command) run with every process on the
machine sampled every 0.5 s, its CPU time (user and system) summed by kind. The suite is bound by
the CPU of a 2-core machine, not by its waits (docs/RESULTS.md), so its time falls only with these.

    .venv/bin/python -m benchmarks.suite_cpu [--log /tmp/suite.log] [-- make test]

A process that lives under 0.5 s is missed (a quick `smcl-tune --help`); the table says how much
CPU the machine spent in all, from /proc/stat, beside what the kinds account for.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import shlex
import sys
from pathlib import Path

from benchmarks.study_overhead import profiled_run, program_script_module

ROOT = Path(__file__).resolve().parents[1]
RAY_DAEMON_SCRIPTS = ("dashboard.py", "agent.py", "log_monitor.py", "monitor.py", "runtime_env_agent.py")
MLFLOW_AND_DASHBOARDS = ("mlflow", "uvicorn", "gunicorn", "huey", "optuna-dashboard", "optuna_dashboard")
SERVERS = ("chrom", "sshd", "postgres", "moto_server", "tmux")


def suite_kind(argv: list[str]) -> str:
    """A process's kind by its program, script and module (not by the folders its arguments name:
    what the tests start names their temporary folders, /tmp/pytest-of-...)."""
    program, script, module = program_script_module(argv)
    if not argv:
        return "other"  # kernel threads
    if script == "smcl-tune" or module.startswith("smcl_tune"):
        return "smcl-tune (CLI, study drivers)"
    if program.startswith(("ray::ImplicitFunc", "ray::IDLE")) or script == "default_worker.py":
        return "Ray workers (trials)"
    if (
        program in ("raylet", "gcs_server")
        or program.startswith("ray::")
        or script in RAY_DAEMON_SCRIPTS
        or module.startswith("ray.")
    ):
        return "Ray daemons"
    if any(name.startswith(MLFLOW_AND_DASHBOARDS) for name in (program, script, module)):
        return "MLflow, dashboards"
    if any(server in program or server in script for server in SERVERS):
        return "browsers, servers"
    # an xdist worker is started by execnet: `python -c "import sys;exec(eval(sys.stdin.readline()))"`
    if module in ("pytest", "xdist") or script == "pytest" or any("exec(eval(sys.stdin" in part for part in argv):
        return "pytest (in-process tests)"
    return "other"


def machine_cpu_s() -> float:
    user, nice, system = (int(value) for value in Path("/proc/stat").read_text().split()[1:4])
    return (user + nice + system) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--log", type=Path, default=Path("/tmp/suite_cpu.log"), help="the command's output")
    parser.add_argument("--out", type=Path, help="append the table's row as a JSON line to this file")
    parser.add_argument("command", nargs="*", default=["make", "test"])
    arguments = parser.parse_args()
    command = ["bash", "-c", f"{shlex.join(arguments.command)} > {shlex.quote(str(arguments.log))} 2>&1"]
    before = machine_cpu_s()
    started: collections.Counter[str] = collections.Counter()
    wall, by_kind = profiled_run(command, ROOT, kind_of=suite_kind, every_s=0.5, check=False, started=started)
    machine = machine_cpu_s() - before
    print(f"{shlex.join(arguments.command)}: wall {wall:.0f} s, machine CPU {machine:.0f} s (/proc/stat)")
    print(f"{'kind':<34}{'CPU s':>8}{'share':>8}{'started':>9}")
    for kind, seconds in sorted(by_kind.items(), key=lambda item: -item[1]):
        print(f"{kind:<34}{seconds:>8.0f}{seconds / machine:>8.0%}{started[kind]:>9}")
    print(f"{'(all kinds)':<34}{sum(by_kind.values()):>8.0f}{sum(by_kind.values()) / machine:>8.0%}")
    print("(started: the processes of each kind that started while the command ran, seen by a sample)")
    print(f"output: {arguments.log}; last line: {arguments.log.read_text().strip().splitlines()[-1:]}")
    if arguments.out:
        with arguments.out.open("a") as out:
            row = {"command": arguments.command, "wall_s": wall, "machine_cpu_s": machine, "cpu_s": by_kind}
            row["started"] = dict(started)
            out.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    sys.exit(main())
