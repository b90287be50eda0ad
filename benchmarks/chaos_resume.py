"""Fault injection: kill the driver of a small study at seeded random moments, resume it each
time with the same command, and count what was lost.

The study is the quickstart's trial (synthetic benchmark, small CNN) with a FIFO scheduler, so
that an uninterrupted run trains a known number of epochs. Each kill is a SIGKILL of the
driver's whole process group (the driver and the local Ray it started: what a crash of the
machine leaves behind), at one of three kinds of moment, in turn:
  - random: a seeded delay after the start;
  - checkpoint: the moment a new trial checkpoint file appears in the storage;
  - between trials: the moment a trial's result file appears (one trial ends, the next starts).
After the kills, the same command runs the study to its end. Goal: nothing lost, exactly one
MLflow run per trial, nothing left RUNNING, at most one epoch redone per kill and running trial.

    .venv/bin/python benchmarks/chaos_resume.py [--kills 10] [--seed 0] [--keep FOLDER] [--output FILE]

With --output, the table's figures are appended to FILE as one JSON line (with the commit).
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import optuna
import yaml
from mlflow.tracking import MlflowClient

from smcl_tune.tracking.writer import git_commit

ROOT = Path(__file__).resolve().parents[1]
EPOCHS = 6
SEARCH_TRIALS = 6
BASELINES = 1
MODES = ("random", "checkpoint", "between trials")


def write_study(folder: Path, name: str) -> Path:
    study = yaml.safe_load((ROOT / "studies" / "quickstart.yaml").read_text())
    study.update(name=name, num_trials=SEARCH_TRIALS, scheduler={"type": "fifo"}, storage=str(folder / "smcl-runs"))
    study["trial"]["training"]["epochs"] = EPOCHS
    study["trial"]["method"].update(mask_start_epoch=1, mask_end_epoch=EPOCHS - 1)
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(study))
    return path


def start(study: Path, log: Path) -> subprocess.Popen:
    with log.open("a") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "smcl_tune.cli", "run", str(study)],
            cwd=study.parent,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def kill_group(process: subprocess.Popen) -> None:
    with contextlib.suppress(ProcessLookupError):  # it may have ended on its own
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def _files(storage: Path, pattern: str) -> set[Path]:
    return set(storage.glob(pattern))


def wait_for_moment(process: subprocess.Popen, mode: str, storage: Path, delay: float, timeout: float = 300) -> str:
    """Return when the kill moment has come, or 'ended' if the study ended first."""
    deadline = time.monotonic() + timeout
    pattern = {"checkpoint": "*/*/checkpoint_*/trial.pt", "between trials": "*/*/checkpoint_*/result.json"}.get(mode)
    seen = _files(storage, pattern) if pattern else set()
    started = time.monotonic()
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return "ended"
        if pattern is None:
            if time.monotonic() - started >= delay:
                return mode
        elif _files(storage, pattern) - seen:
            return mode
        time.sleep(0.02)
    return "timeout"


def study_counts(folder: Path, name: str) -> dict:
    storage = folder / "smcl-runs"
    client = MlflowClient(tracking_uri=f"sqlite:///{storage / 'mlflow.db'}")
    experiment = client.get_experiment_by_name(name)
    runs = [
        run
        for run in client.search_runs([experiment.experiment_id], max_results=1000)
        if run.data.tags.get("smcl.role") != "study"
    ]
    per_trial = collections.Counter(run.data.tags.get("smcl.trial_key") for run in runs)
    finished = {run.data.tags.get("smcl.trial_key") for run in runs if run.data.tags.get("smcl.state") == "completed"}
    epochs = sum(len(client.get_metric_history(run.info.run_id, "loss")) for run in runs)
    optuna_study = optuna.load_study(study_name=name, storage=f"sqlite:///{storage / name / 'optuna.db'}")
    states = collections.Counter(trial.state.name for trial in optuna_study.get_trials())
    return {
        "runs": len(runs),
        "per_trial": per_trial,
        "finished": len(finished),
        "epochs": epochs,
        "running": sum(run.info.status == "RUNNING" for run in runs),
        "optuna": dict(sorted(states.items())),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--keep", help="work in this folder and keep it (default: a temporary folder)")
    parser.add_argument("--output", type=Path, help="append the figures to this JSON lines file")
    arguments = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    rng = random.Random(arguments.seed)
    commit = git_commit()  # the code that runs: taken before a change made while it runs
    with tempfile.TemporaryDirectory(prefix="smcl-chaos-") as temporary:
        work = Path(arguments.keep or temporary)
        work.mkdir(parents=True, exist_ok=True)

        plain_folder = work / "uninterrupted"
        plain_folder.mkdir()
        began = time.monotonic()
        plain = start(write_study(plain_folder, "chaos"), plain_folder / "driver.log")
        plain_code = plain.wait()
        plain_wall = time.monotonic() - began
        reference = study_counts(plain_folder, "chaos")

        chaos_folder = work / "killed"
        chaos_folder.mkdir()
        study = write_study(chaos_folder, "chaos")
        log = chaos_folder / "driver.log"
        kills: list[str] = []
        began = time.monotonic()
        while len(kills) < arguments.kills:
            mode = MODES[len(kills) % len(MODES)]
            driver = start(study, log)
            moment = wait_for_moment(driver, mode, chaos_folder / "smcl-runs", delay=rng.uniform(3.0, 25.0))
            if moment == "ended":
                print(f"the study ended before kill {len(kills) + 1}; {len(kills)} kills in all", flush=True)
                break
            kill_group(driver)
            kills.append(moment)
            print(f"kill {len(kills)}: {moment} at {time.monotonic() - began:.0f} s", flush=True)
        final = start(study, log)
        final_code = final.wait()
        chaos_wall = time.monotonic() - began
        counts = study_counts(chaos_folder, "chaos")

    expected = SEARCH_TRIALS + BASELINES
    per_trial = counts["per_trial"].values()
    running_slots = 2  # the quickstart's max_concurrent
    print(
        f"\nchaos resume: quickstart trial, FIFO, {expected} trials x {EPOCHS} epochs, {len(kills)} SIGKILLs of the "
        f"driver's process group (seed {arguments.seed})"
    )
    print(f"{'quantity':<52}{'value':>16}")
    rows = [
        ("kills (random / checkpoint write / between trials)", " / ".join(str(kills.count(mode)) for mode in MODES)),
        ("exit code of the last run (uninterrupted run)", f"{final_code} ({plain_code})"),
        ("trials expected", expected),
        ("trials finished", counts["finished"]),
        ("trials lost", expected - counts["finished"]),
        ("MLflow runs per trial (min / max)", f"{min(per_trial)} / {max(per_trial)}"),
        ("MLflow runs left RUNNING", counts["running"]),
        ("Optuna trials by state", ", ".join(f"{k} {v}" for k, v in counts["optuna"].items())),
        ("epochs trained, logged (uninterrupted run)", f"{counts['epochs']} ({reference['epochs']})"),
        ("epochs redone per kill", f"{(counts['epochs'] - reference['epochs']) / max(1, len(kills)):.2f}"),
        (f"  goal: at most one per kill and running trial ({running_slots})", f"<= {running_slots}"),
        ("wall time, s (uninterrupted run)", f"{chaos_wall:.0f} ({plain_wall:.0f})"),
    ]
    for label, value in rows:
        print(f"{label:<52}{value!s:>16}")
    if arguments.output:
        record = {"commit": commit, "seed": arguments.seed, "kills": kills, "exit_codes": [final_code, plain_code]}
        record |= {"expected": expected, "reference": reference, "killed": counts}
        record |= {"wall_s": [round(chaos_wall, 1), round(plain_wall, 1)]}
        with arguments.output.open("a") as out:
            out.write(json.dumps(record, default=dict) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
