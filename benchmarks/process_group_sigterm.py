"""How long `smcl-tune run` takes to exit when its whole process group gets SIGTERM (`timeout 60
smcl-tune run`, a service manager's stop): the local Ray it started dies with it, and the driver
then waits for Ray's GCS before it can end. Prints one row per run: the seconds from the signal to
the driver's exit, its exit code, and the study's state after, as `smcl-tune status` says it.

    .venv/bin/python benchmarks/process_group_sigterm.py [--after 22] [--runs 1] [--output FILE]

The study is the quickstart (studies/quickstart.yaml) in a fresh storage folder. With --output,
each run is appended to FILE as one JSON line (with the commit).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from smcl_tune.tracking.writer import git_commit

ROOT = Path(__file__).resolve().parents[1]


def _one_run(after_s: float) -> dict:
    with tempfile.TemporaryDirectory(prefix="sigterm-") as folder:
        study = yaml.safe_load((ROOT / "studies" / "quickstart.yaml").read_text())
        study["storage"] = str(Path(folder) / "smcl-runs")
        path = Path(folder) / "quickstart.yaml"
        path.write_text(yaml.safe_dump(study))
        with (Path(folder) / "driver.log").open("w") as log:
            driver = subprocess.Popen(
                [sys.executable, "-m", "smcl_tune.cli", "run", str(path)],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group, as `setsid` gives it
            )
            time.sleep(after_s)
            signalled = time.monotonic()
            os.killpg(driver.pid, signal.SIGTERM)
            code = driver.wait()
            seconds = time.monotonic() - signalled
        status = subprocess.run(
            [sys.executable, "-m", "smcl_tune.cli", "status", study["name"], "--storage", study["storage"]],
            capture_output=True,
            text=True,
        )
        status = (status.stdout or status.stderr).splitlines()
        tail = (Path(folder) / "driver.log").read_text().splitlines()[-3:]
        return {
            "exit_after_s": round(seconds, 2),
            "exit_code": code,
            "status_after": status[0] if status else "",
            "driver_tail": tail,
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--after", type=float, default=22.0, help="seconds from the start to the signal")
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--output", type=Path)
    arguments = parser.parse_args()
    print(f"{'run':>3}  {'signal at s':>11}  {'exit after s':>12}  {'exit code':>9}  status after")
    for run in range(arguments.runs):
        row = {
            "date": datetime.date.today().isoformat(),
            "commit": git_commit(),
            "signal_after_s": arguments.after,
            **_one_run(arguments.after),
        }
        print(
            f"{run:>3}  {arguments.after:>11.0f}  {row['exit_after_s']:>12.2f}  {row['exit_code']:>9}  "
            f"{row['status_after']}"
        )
        if arguments.output:
            with arguments.output.open("a") as output:
                output.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
