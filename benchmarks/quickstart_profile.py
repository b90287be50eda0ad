"""Profile `smcl-tune run studies/quickstart.yaml` on this machine (after install).

Runs the quickstart study from scratch in a temporary folder, samples the resident memory of
the whole process tree (driver, Ray, trial workers) every 0.5 s with psutil, and prints a table:
wall time, time inside trial training (summed over trials, from MLflow), the share of the
available trial slots spent training, and the peak memory of the process tree.

    .venv/bin/python benchmarks/quickstart_profile.py [--study studies/quickstart.yaml]
"""

from __future__ import annotations

import argparse
import contextlib
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil
from mlflow.tracking import MlflowClient

from smcl_tune.store.paths import default_tracking_uri
from smcl_tune.studyfile.study import load_study


def tree_rss_bytes(root: int) -> int:
    """Resident memory of `root` and all its descendants (Ray's daemons are children of the driver)."""
    try:
        process = psutil.Process(root)
        tree = [process, *process.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0
    total = 0
    for member in tree:
        with contextlib.suppress(psutil.NoSuchProcess):  # a worker that ended meanwhile
            total += member.memory_info().rss
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--study", default="studies/quickstart.yaml")
    parser.add_argument("--keep", help="run in this folder and keep it (default: a temporary folder)")
    arguments = parser.parse_args()
    study_file = Path(arguments.study).resolve()
    study = load_study(study_file)
    if arguments.keep:
        Path(arguments.keep).mkdir(parents=True, exist_ok=False)
    with (
        contextlib.nullcontext(arguments.keep)
        if arguments.keep
        else tempfile.TemporaryDirectory(prefix="smcl-quickstart-")
    ) as work:
        started = time.perf_counter()
        process = subprocess.Popen(
            [sys.executable, "-m", "smcl_tune.cli", "run", str(study_file)],
            cwd=work,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        peak = 0

        def sample() -> None:
            nonlocal peak
            while process.poll() is None:
                peak = max(peak, tree_rss_bytes(process.pid))
                time.sleep(0.5)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        output, _ = process.communicate()
        wall = time.perf_counter() - started
        sampler.join()
        client = MlflowClient(tracking_uri=default_tracking_uri(Path(work) / "smcl-runs"))
        experiment = client.get_experiment_by_name(study.name)
        runs = [
            r
            for r in client.search_runs([experiment.experiment_id], max_results=1000)
            if r.data.tags.get("smcl.role") != "study"
        ]
        trial_seconds = sum(r.data.metrics.get("trial_seconds", 0.0) for r in runs)
    slots = study.config.max_concurrent
    print(output.strip().split("\n\n")[-1])
    print()
    print(f"{'quantity':<44}{'value':>12}")
    print(f"{'exit code':<44}{process.returncode:>12}")
    print(f"{'wall time of smcl-tune run (s)':<44}{wall:>12.1f}")
    print(f"{'trials (MLflow child runs)':<44}{len(runs):>12}")
    print(f"{'time inside trials, summed (s)':<44}{trial_seconds:>12.1f}")
    print(f"{f'share of {slots} trial slots spent in trials':<44}{100 * trial_seconds / (slots * wall):>11.1f}%")
    print(f"{'peak memory of the process tree (MiB)':<44}{peak / 2**20:>12.0f}")


if __name__ == "__main__":
    main()
