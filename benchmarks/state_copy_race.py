"""Ray's copy of the experiment state into a local storage, racing Ray's own saves.

Ray Tune's driver rewrites `experiment_state-*.json` in place in its staging folder, and saves the
searcher's state under a temporary name it then renames, while its background copy of that folder
into the storage may still run. Here a thread saves both as Ray does (the state's JSON as big as
a study of about one trial's), and the main thread copies the folder with Ray's own copy function,
N times, into a storage through each filesystem. After each copy, the storage's experiment state is
read back. Columns:
- `torn`: copies after which the storage's experiment state was not readable JSON (a driver killed
  then leaves a study that cannot be resumed);
- `vanished`: copies that failed because a file listed had been renamed away (Ray logs them).

    .venv/bin/python benchmarks/state_copy_race.py [--copies 300] [--output state_copy_race.jsonl]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import uuid
from pathlib import Path

if __package__ in (None, ""):  # run as a file: the package `benchmarks` is found from the repository root
    sys.path[0] = str(Path(__file__).resolve().parents[1])

import pyarrow.fs as pafs
from ray.train._internal.storage import _pyarrow_fs_copy_files

from smcl_tune.study.whole_file_filesystem import whole_file_storage

STATE = "experiment_state-2026-12-07_00-00-00.json"
SEARCHER = "searcher-state-2026-12-07_00-00-00.pkl"
FILESYSTEMS = {"pyarrow local (Ray's default)": pafs.LocalFileSystem, "smcl-tune whole-file": whole_file_storage}


def _race(make_filesystem, copies: int) -> dict:
    folder = Path(tempfile.mkdtemp(prefix="state-race-"))
    staging, storage = folder / "staging", folder / "storage"
    staging.mkdir(), storage.mkdir()
    state = {"trial_data": [["x" * 200, {"y": list(range(300))}] for _ in range(40)]}
    (staging / STATE).write_text(json.dumps(state))
    saving = threading.Event()
    saving.set()

    def save_as_ray_does() -> None:
        while saving.is_set():
            with open(staging / STATE, "w") as file:  # TuneController.save_to_dir
                json.dump(state, file)
            temporary = staging / f".{uuid.uuid4()}-tmp-{SEARCHER}"  # Searcher.save_to_dir
            temporary.write_bytes(b"\x80\x04N.")
            os.replace(temporary, staging / SEARCHER)

    counts = {"torn": 0, "vanished": 0}
    _pyarrow_fs_copy_files(str(staging), str(storage), destination_filesystem=make_filesystem())
    saver = threading.Thread(target=save_as_ray_does)
    saver.start()
    try:
        for _ in range(copies):
            try:
                _pyarrow_fs_copy_files(str(staging), str(storage), destination_filesystem=make_filesystem())
            except FileNotFoundError:
                counts["vanished"] += 1
            try:
                json.loads((storage / STATE).read_text())
            except ValueError:
                counts["torn"] += 1
    finally:
        saving.clear()
        saver.join()
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--copies", type=int, default=300)
    parser.add_argument("--output", type=Path)
    arguments = parser.parse_args()
    print(f"{arguments.copies} copies of a staging folder while Ray-style saves rewrite it")
    print(f"{'filesystem':<32} {'copies':>6} {'torn':>6} {'vanished':>8}")
    for name, make_filesystem in FILESYSTEMS.items():
        counts = _race(make_filesystem, arguments.copies)
        print(f"{name:<32} {arguments.copies:>6} {counts['torn']:>6} {counts['vanished']:>8}")
        if arguments.output:
            with arguments.output.open("a") as output:
                output.write(json.dumps({"filesystem": name, "copies": arguments.copies, **counts}) + "\n")


if __name__ == "__main__":
    main()
