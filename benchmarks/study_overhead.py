"""The CPU a small study spends outside its training: `smcl-tune run` of the test suite's tiny study
(3 SMCL trials of 3 epochs on 5 classes of 16-px synthetic images, one trial at a time), from its
start to its leaderboard, with a Ray of its own.

Every process on the machine is sampled every 0.1 s (psutil); each one's CPU time (user and system)
that the run added is summed by kind: the driver (`smcl-tune run`), the trial workers (Ray's actors),
and Ray's own daemons. A study of the suite is mostly such costs, not training.

    .venv/bin/python benchmarks/study_overhead.py [--runs 3] [--out docs/results/study_overhead.jsonl]
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import psutil

if __package__ in (None, ""):  # run as a file: the packages are found from the repository root
    sys.path[0] = str(Path(__file__).resolve().parents[1])

from tests.conftest import _tiny_config  # the suite's own tiny study, not a copy of it
from tests.fixtures.studies import tiny_study_trial, write_tiny_study


def program_script_module(argv: list[str]) -> tuple[str, str, str]:
    """The base names of a command line's program and script (its first argument that is not an
    option), and the module of `-m MODULE`: what a process is, whatever folders its paths name."""
    program, script, module = (Path(argv[0]).name if argv else ""), "", ""
    arguments = iter(argv[1:])
    for argument in arguments:
        if argument == "-m":
            module = next(arguments, "")
            break
        if argument == "-c":
            break
        if argument in ("-X", "-W"):  # an option with a value: python -X importtime ...
            next(arguments, None)
        elif not argument.startswith("-"):
            script = Path(argument).name
            break
    return program, script, module


def process_kind(argv: list[str]) -> str:
    program, script, module = program_script_module(argv)
    if script == "smcl-tune" or module.startswith("smcl_tune"):
        return "driver"
    if program.startswith(("ray::ImplicitFunc", "ray::IDLE")) or script == "default_worker.py":
        return "trial workers"  # Ray's worker processes: the trials' actors, and idle ones Ray started
    if argv:
        return "Ray daemons"
    return "other"  # kernel threads


def profiled_run(
    command: list[str],
    cwd: Path,
    kind_of: Callable[[list[str]], str] = process_kind,
    every_s: float = 0.1,
    check: bool = True,
    started: collections.Counter[str] | None = None,
) -> tuple[float, dict[str, float]]:
    """Wall seconds of `command` and the CPU seconds each kind of process (`kind_of` its command
    line) added meanwhile, sampled every `every_s`: a process that lived less is missed. `started`,
    if given, counts the processes of each kind that started meanwhile."""
    seen: dict[tuple[int, float], tuple[float, float, str]] = {}  # (pid, start) -> (first, last, kind)
    older: set[tuple[int, float]] = set()  # the processes of the sample before the command started

    def sample() -> None:
        for process in psutil.process_iter(["pid", "create_time", "cmdline", "cpu_times"]):
            info = process.info
            if info["cpu_times"] is None:
                continue
            cpu = info["cpu_times"].user + info["cpu_times"].system
            key = (info["pid"], info["create_time"])
            # a process older than the command counts from the first sample, a newer one from its
            # start; its kind by the last command line it had (a Ray worker renames itself once it
            # runs an actor; an exited process waiting to be reaped has none)
            first = seen[key][0] if key in seen else (cpu if key in older else 0.0)
            argv = info["cmdline"] or []
            kind = seen[key][2] if not argv and key in seen else kind_of(argv)
            seen[key] = (first, cpu, kind)

    for process in psutil.process_iter(["pid", "create_time"]):
        older.add((process.info["pid"], process.info["create_time"]))
    sample()
    started_at = time.time()
    with tempfile.TemporaryFile("w+") as errors:  # a pipe that nobody reads would block a talkative command
        process = subprocess.Popen(command, cwd=cwd, stdout=subprocess.DEVNULL, stderr=errors, text=True)
        while process.poll() is None:
            sample()
            time.sleep(every_s)
        sample()
        wall = time.time() - started_at
        if check and process.returncode != 0:
            errors.seek(0)
            raise SystemExit(f"{' '.join(command)} exited with {process.returncode}:\n{errors.read()[-3000:]}")
    by_kind: dict[str, float] = collections.Counter()
    for (pid, created), (first, last, kind) in seen.items():
        if pid != os.getpid():
            by_kind[kind] += last - first
            if started is not None and (pid, created) not in older:
                started[kind] += 1
    return wall, dict(by_kind)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="runs of the study, each from scratch (3)")
    parser.add_argument("--out", type=Path, help="append each run as a JSON line to this file")
    parser.add_argument("--label", default="", help="a name for this code in the JSON lines")
    arguments = parser.parse_args()
    entry = Path(sys.executable).parent / "smcl-tune"
    runs = []
    for _ in range(arguments.runs):
        with tempfile.TemporaryDirectory() as folder:
            study = write_tiny_study(tiny_study_trial(_tiny_config), Path(folder))
            wall, cpu = profiled_run([str(entry), "run", str(study)], Path(folder))
        runs.append({"label": arguments.label, "wall_s": wall, "cpu_s": cpu, "load": os.getloadavg()[0]})
        if arguments.out:
            with arguments.out.open("a") as out:
                out.write(json.dumps(runs[-1]) + "\n")
    kinds = ("driver", "trial workers", "Ray daemons")
    print(f"`smcl-tune run` of the suite's tiny study (3 trials x 3 epochs), its own Ray; median of {len(runs)} runs")
    print(f"{'wall s':>7}{'CPU s':>7}" + "".join(f"{kind:>15}" for kind in kinds))
    total = statistics.median(sum(run["cpu_s"].values()) for run in runs)
    medians = [statistics.median(run["cpu_s"].get(kind, 0.0) for run in runs) for kind in kinds]
    wall = statistics.median(run["wall_s"] for run in runs)
    print(f"{wall:>7.1f}{total:>7.1f}" + "".join(f"{value:>15.1f}" for value in medians))
    print("(CPU s: user and system time the run's processes added, all cores; the kinds are their medians)")
    for run in runs:
        spent = ", ".join(f"{kind} {run['cpu_s'].get(kind, 0.0):.1f}" for kind in kinds)
        print(f"run: wall {run['wall_s']:.1f} s, {spent}")


if __name__ == "__main__":
    main()
