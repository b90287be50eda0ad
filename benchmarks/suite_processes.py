"""Where the suite's CPU goes, by kind of process: `make test` (or any command) run while every
process on the machine is sampled (psutil, every 0.5 s), and the CPU each kind added summed, with
how many processes of each kind started. A process that lived less than a sample is missed.

    .venv/bin/python benchmarks/suite_processes.py [--out docs/results/suite_processes.jsonl] [-- make test]

On a 2-core machine the suite is bound by its CPU, so the suite's time falls with what its
processes spend, whichever kind they are.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a file: the packages are found from the repository root
    sys.path[0] = str(Path(__file__).resolve().parents[1])

from benchmarks.study_overhead import process_kind as study_process_kind
from benchmarks.study_overhead import profiled_run, program_script_module

RAY_DAEMONS = ("gcs_server", "raylet", "dashboard.py", "agent.py", "main.py", "log_monitor.py", "monitor.py")
SERVERS = ("mlflow", "moto_server", "postgres", "sshd", "optuna-dashboard", "uvicorn", "gunicorn", "huey_consumer")


def suite_process_kind(argv: list[str]) -> str:
    """A process of the suite, by its program, script or module (not by its arguments, which name
    the tests' temporary folders)."""
    program, script, module = program_script_module(argv)
    if script == "pytest" or module == "pytest" or any("exec(eval(sys.stdin.readline()))" in a for a in argv):
        return "pytest and its workers"  # the last: pytest-xdist's workers, started by execnet
    if "chrom" in program:
        return "Chromium"
    if any(name in (program, script, module) or module.startswith(f"{name}.") for name in SERVERS):
        return "servers (MLflow, moto, PostgreSQL, sshd, dashboards)"
    kind = study_process_kind(argv)
    if kind == "driver" or program == "smcl-tune":
        return "smcl-tune commands (drivers, status, ...)"
    if kind == "Ray daemons" and not (program in RAY_DAEMONS or script in RAY_DAEMONS):
        return f"other ({script or module or program})"
    return kind


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="append the run as a JSON line to this file")
    parser.add_argument("--label", default="", help="a name for this code in the JSON line")
    parser.add_argument("command", nargs="*", default=["make", "test"], help="the command (make test)")
    arguments = parser.parse_args()
    starts: collections.Counter[str] = collections.Counter()
    wall, by_kind = profiled_run(
        arguments.command, Path.cwd(), kind_of=suite_process_kind, every_s=0.5, check=False, started=starts
    )
    total = sum(by_kind.values())
    print(f"{' '.join(arguments.command)}: wall {wall:.1f} s, CPU {total:.0f} s (user and system, all processes)")
    print(f"{'CPU s':>8} {'share':>6} {'started':>8}  kind")
    for kind, cpu in sorted(by_kind.items(), key=lambda item: -item[1]):
        print(f"{cpu:>8.1f} {100 * cpu / total:>5.1f}% {starts.get(kind, 0):>8}  {kind}")
    if arguments.out:
        row = {"label": arguments.label, "wall_s": wall, "cpu_s": by_kind, "started": dict(starts)}
        row["load"] = os.getloadavg()[0]
        with arguments.out.open("a") as out:
            out.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
