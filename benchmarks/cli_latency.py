"""How fast `smcl-tune` answers: the median wall time and peak memory of 5 runs per command.

Runs the installed `smcl-tune` entry point (beside this Python) in a subprocess, so the code timed
is whatever PYTHONPATH points at: compare two checkouts with

    PYTHONPATH=/path/to/before .venv/bin/python benchmarks/cli_latency.py
    PYTHONPATH=/path/to/after  .venv/bin/python benchmarks/cli_latency.py

`status` and `leaderboard` read a study store of --trials trials filled by report_speed.py's
`fill_store` in a temporary folder; `status (all)` lists every study of a store that holds --studies
studies (the first of --trials trials, the others of 10). `validate (JPEG folder)` validates
studies/cifar10_lt_jpeg.yaml against the CIFAR-10 JPEG copy (../shared/data/cifar10-jpeg, 60,000
files in two zips), when it is there. The goals (issues 25 and 36) are for an unloaded machine.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
QUICKSTART = ROOT / "studies" / "quickstart.yaml"
JPEG_STUDY = ROOT / "studies" / "cifar10_lt_jpeg.yaml"
CIFAR10_JPEG = ROOT.parent / "shared" / "data" / "cifar10-jpeg"
GOALS = {  # s, unloaded
    "--help": 0.5,
    "validate": 1.5,
    "validate (JPEG folder)": 1.5,
    "status": 1.5,
    "status (all)": 1.5,
    "leaderboard": 3.0,
}


def timed_run(command: list[str], cwd: Path) -> tuple[float, float]:
    """Wall seconds and peak resident MiB of one run (the child's own rusage, from wait4)."""
    started = time.perf_counter()
    process = subprocess.Popen(command, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    error = process.stderr.read().decode(errors="replace")
    process.stderr.close()
    if process.returncode != 0:
        raise SystemExit(f"{' '.join(command)} exited with {process.returncode}:\n{error}")
    return seconds, usage.ru_maxrss / 1024  # ru_maxrss is in KiB on Linux


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=100, help="trials in the study store (100)")
    parser.add_argument("--runs", type=int, default=5, help="runs per command (5)")
    parser.add_argument("--studies", type=int, default=10, help="studies in the store `status (all)` lists (10)")
    arguments = parser.parse_args()
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    entry = Path(sys.executable).parent / "smcl-tune"
    with tempfile.TemporaryDirectory() as folder:
        storage = Path(folder) / "store"
        storage.mkdir()
        # Filled in a child process: this one stays small, since a child's peak memory counts what it forked from.
        fill = (
            f"import report_speed as r, pathlib; folder = pathlib.Path({str(storage)!r}); "
            f"r.fill_store(folder, {arguments.trials}); "
            f"[r.fill_store(folder, 10, f'other-{{index}}') for index in range({arguments.studies - 1})]"
        )
        # by this checkout's code (PYTHONPATH may name an older one, which only the timed commands run)
        own = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
        subprocess.run(
            [sys.executable, "-c", fill], cwd=Path(__file__).parent, check=True, capture_output=True, env=own
        )
        store = ["--storage", str(storage)]
        commands = {
            "--help": [str(entry), "--help"],
            "validate": [str(entry), "validate", str(QUICKSTART)],
            "status": [str(entry), "status", "bench", *store],
            "status (all)": [str(entry), "status", *store],
            "leaderboard": [str(entry), "leaderboard", "bench", *store],
        }
        if (CIFAR10_JPEG / "train.zip").is_file():
            study = yaml.safe_load(JPEG_STUDY.read_text())
            study["trial"]["data"]["root"] = str(CIFAR10_JPEG.resolve())
            jpeg_study = Path(folder) / JPEG_STUDY.name
            jpeg_study.write_text(yaml.safe_dump(study))
            commands["validate (JPEG folder)"] = [str(entry), "validate", str(jpeg_study)]
        rows = []
        for name, command in commands.items():
            runs = [timed_run(command, Path(folder)) for _ in range(arguments.runs)]
            seconds = statistics.median(run[0] for run in runs)
            memory = max(run[1] for run in runs)
            rows.append((name, seconds, min(run[0] for run in runs), memory, GOALS[name]))
    print(f"smcl-tune from {os.environ.get('PYTHONPATH') or 'the installed package'}; {arguments.runs} runs each")
    print(f"status and leaderboard of a study with {arguments.trials} trials; load average {os.getloadavg()[0]:.1f}")
    # Formatted here, not by the product's table code: this script times whichever checkout
    # PYTHONPATH names, an older one included, and imports none of it itself.
    print(f"{'command':<24}{'median s':>10}{'fastest s':>11}{'peak MiB':>10}{'goal s':>8}")
    for name, seconds, fastest, memory, goal in rows:
        print(f"{name:<24}{seconds:>10.2f}{fastest:>11.2f}{memory:>10.0f}{goal:>8.1f}")


if __name__ == "__main__":
    main()
