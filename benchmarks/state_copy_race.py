"""Ray's copy of the experiment state into a storage, racing Ray's own saves.

Ray Tune's driver rewrites `experiment_state-*.json` in its staging folder at every save
(`TuneController.save_to_dir`), while its background copy of that folder into the storage may
still run. Here a thread calls Ray's own `save_to_dir` (on a stand-in of its controller holding a
study of 40 trials' state) again and again, and the main thread copies the folder with Ray's own
copy function N times, after a first copy (Ray's first save and copy run before any other). After
each copy the storage's experiment state is read back. Rows: Ray's save as it is or made whole
(smcl_tune/study/whole_state_saves.py), into a folder through pyarrow's local filesystem (as an
object store takes a copy: whatever was read) or smcl-tune's whole-file one
(smcl_tune/study/whole_file_filesystem.py). A local study runs the last row. Columns:
- `torn`: copies after which the storage's experiment state was not readable JSON (a driver killed
  then left a study that could not be resumed);
- `vanished`: copies that failed because a file they listed had been renamed away (a temporary of
  the whole save, were it written in the staging folder; the stand-in saves no searcher state, whose
  temporaries Ray writes there too).

    .venv/bin/python benchmarks/state_copy_race.py [--copies 300] [--output state_copy_race.jsonl]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import tempfile
import threading
from pathlib import Path
from types import SimpleNamespace

if __package__ in (None, ""):  # run as a file: the package `benchmarks` is found from the repository root
    sys.path[0] = str(Path(__file__).resolve().parents[1])

import pyarrow.fs as pafs
from ray.train._internal.storage import _pyarrow_fs_copy_files
from ray.tune.execution.tune_controller import TuneController

from smcl_tune.study.whole_file_filesystem import whole_file_storage
from smcl_tune.study.whole_state_saves import whole_experiment_state_saves

STATE = "experiment_state-2026-12-07_00-00-00.json"
DESTINATIONS = {"pyarrow local": pafs.LocalFileSystem, "whole-file": whole_file_storage}


class RayDriver:
    """What TuneController.save_to_dir reads of its controller: a study of 40 trials' state (64 kB)."""

    experiment_state_file_name = STATE

    def __init__(self, staging: Path) -> None:
        self._storage = SimpleNamespace(experiment_driver_staging_path=str(staging))
        self._start_time = 0.0
        self._session_str = "2026-12-07_00-00-00"
        self._search_alg = self._callbacks = SimpleNamespace(save_to_dir=lambda *_, **__: None)

    def _get_trial_checkpoints(self) -> dict:
        return {index: {"trial": "x" * 1500} for index in range(40)}

    def __getstate__(self) -> dict:
        return {"runner": "state"}


def torn_copies(folder: Path, copies: int, destination: str = "pyarrow local", whole_saves: bool = False) -> dict:
    """`copies` copies of a staging folder that Ray's save_to_dir rewrites meanwhile, into `folder`'s
    storage through `destination`: how many left a torn state there, and how many met a rename."""
    staging, storage = folder / "staging", folder / "storage"
    staging.mkdir(parents=True), storage.mkdir(parents=True)
    driver = RayDriver(staging)
    counts = {"torn": 0, "vanished": 0}
    with whole_experiment_state_saves() if whole_saves else contextlib.nullcontext():
        TuneController.save_to_dir(driver)
        _pyarrow_fs_copy_files(str(staging), str(storage), destination_filesystem=DESTINATIONS[destination]())
        saving = threading.Event()
        saving.set()

        def save_again_and_again() -> None:
            while saving.is_set():
                TuneController.save_to_dir(driver)

        saver = threading.Thread(target=save_again_and_again)
        saver.start()
        try:
            for _ in range(copies):
                try:
                    _pyarrow_fs_copy_files(
                        str(staging), str(storage), destination_filesystem=DESTINATIONS[destination]()
                    )
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
    print(f"{arguments.copies} copies of Ray's staging folder while Ray's save_to_dir rewrites it")
    print(f"{'save':<12} {'storage':<14} {'copies':>6} {'torn':>6} {'vanished':>8}")
    with tempfile.TemporaryDirectory(prefix="state-race-") as folder:
        for whole_saves in (False, True):
            for destination in DESTINATIONS:
                run = Path(folder) / f"{whole_saves}-{destination}"
                counts = torn_copies(run, arguments.copies, destination, whole_saves)
                save = "whole" if whole_saves else "Ray's"
                print(f"{save:<12} {destination:<14} {arguments.copies:>6} {counts['torn']:>6} {counts['vanished']:>8}")
                if arguments.output:
                    row = {"save": save, "storage": destination, "copies": arguments.copies, **counts}
                    with arguments.output.open("a") as output:
                        output.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
