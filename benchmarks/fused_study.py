"""A study fused and unfused: the wall time of each, and how far apart their runs end.

Runs `smcl-tune run` on the study file twice, in fresh storage folders: once with
`resources.fuse: N` and once with 1, the other resources as the file has them (so each group of N
has what one unfused trial has). Prints the wall times, then, for every run name both studies
have, its validation objective and test top-1 in each. Baselines and confirmation runs are the
same configurations in both and comparable run for run; sampled trials are not (TPE and ASHA
depend on the order in which trials end), so for a searched study only the wall times compare.

    .venv/bin/python benchmarks/fused_study.py STUDY.yaml [--fuse 4] [--baselines-only SEEDS]
        [--output docs/results/fused_study_cpu.jsonl]

--baselines-only 4 turns the study into its baselines alone, each over seeds 0..3, under FIFO: a
study of fixed configurations. With --output, a row (study, fuse) already on file is not run again.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml


def _variant(study: dict, fuse: int, folder: Path, seeds: int | None) -> Path:
    study = json.loads(json.dumps(study))
    study["resources"] = {**study.get("resources", {}), "fuse": fuse}
    study["storage"] = str(folder / "smcl-runs")
    study.pop("tracking", None)
    if seeds is not None:
        study.update(num_trials=0, search={}, scheduler={"type": "fifo"})
        study.pop("confirm", None)
        study["baselines"] = [{**baseline, "seeds": list(range(seeds))} for baseline in study.get("baselines", [])]
        study["baselines"].append({"name": "smcl", "seeds": list(range(seeds))})
    path = folder / "study.yaml"
    path.write_text(yaml.safe_dump(study))
    return path


def _run(path: Path, name: str) -> dict:
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "smcl_tune.cli", "run", str(path)], capture_output=True, text=True, check=False
    )
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        sys.exit(f"{path}: exit {done.returncode}\n{done.stderr[-3000:]}")
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{path.parent / 'smcl-runs' / 'mlflow.db'}")
    experiment = client.get_experiment_by_name(name)
    runs = {}
    for run in client.search_runs([experiment.experiment_id], max_results=1000):
        if run.data.tags.get("smcl.role") == "study":
            continue
        metrics = run.data.metrics
        runs[run.info.run_name] = {
            "state": run.data.tags.get("smcl.state"),
            "val": metrics.get("selected_val_balanced_accuracy", metrics.get("val_balanced_accuracy")),
            "test_top1": metrics.get("test_top1"),
        }
    return {"seconds": seconds, "runs": runs}


def _cell(value) -> str:
    return "-" if value is None else f"{100 * value:.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("study", type=Path)
    parser.add_argument("--fuse", type=int, default=4)
    parser.add_argument("--baselines-only", type=int, metavar="SEEDS")
    parser.add_argument("--output", type=Path)
    arguments = parser.parse_args()
    if arguments.fuse < 2:
        parser.error(f"--fuse: at least 2 (the study runs unfused too), got {arguments.fuse}")
    study = yaml.safe_load(arguments.study.read_text())
    label = arguments.study.name + (
        "" if arguments.baselines_only is None else f" (baselines x {arguments.baselines_only} seeds, FIFO)"
    )
    on_file = []
    if arguments.output and arguments.output.exists():
        on_file = [json.loads(line) for line in arguments.output.read_text().splitlines() if line.strip()]
    outcomes = {}
    for fuse in (1, arguments.fuse):
        row = next((row for row in on_file if row["study"] == label and row["fuse"] == fuse), None)
        if row is None:
            with tempfile.TemporaryDirectory(prefix="fused-study-") as folder:
                path = _variant(study, fuse, Path(folder), arguments.baselines_only)
                row = {"study": label, "fuse": fuse, **_run(path, study["name"])}
            if arguments.output:
                arguments.output.parent.mkdir(parents=True, exist_ok=True)
                with arguments.output.open("a") as output:
                    output.write(json.dumps(row) + "\n")
        outcomes[fuse] = row
    plain, fused = outcomes[1], outcomes[arguments.fuse]
    resources = study.get("resources", {})
    print(
        f"{label}: max_concurrent {study.get('max_concurrent', 2)}, resources {resources} per trial (per group fused)"
    )
    print(f"wall time: unfused {plain['seconds']:.0f} s, fused at {arguments.fuse} {fused['seconds']:.0f} s")
    names = sorted(set(plain["runs"]) & set(fused["runs"]))
    print(f"{'run':<28}{'state':>20}{'val unfused':>13}{'val fused':>11}{'top-1 unfused':>15}{'top-1 fused':>13}")
    for name in names:
        mine, theirs = fused["runs"][name], plain["runs"][name]
        state = theirs["state"] if theirs["state"] == mine["state"] else f"{theirs['state']}/{mine['state']}"
        print(
            f"{name:<28}{state:>20}{_cell(theirs['val']):>13}{_cell(mine['val']):>11}"
            f"{_cell(theirs['test_top1']):>15}{_cell(mine['test_top1']):>13}"
        )
    differences = [
        abs(fused["runs"][name]["test_top1"] - plain["runs"][name]["test_top1"])
        for name in names
        if fused["runs"][name]["test_top1"] is not None and plain["runs"][name]["test_top1"] is not None
    ]
    if differences:
        print(f"largest test top-1 difference: {100 * max(differences):.1f} points over {len(differences)} runs")


if __name__ == "__main__":
    main()
