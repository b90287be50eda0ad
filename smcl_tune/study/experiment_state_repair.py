"""Bring back the trial checkpoints that Ray's saved experiment state names but Ray already deleted.

With `CheckpointConfig(num_to_keep=1)` Ray deletes a trial's previous checkpoint as soon as it
registers the next one, and saves the experiment state, which names the checkpoint each trial
resumes from, only later in its loop. A driver killed in between (`kill -9`, a lost head node)
leaves a state that names a deleted checkpoint, and on resume Ray fails the trial three times over
("Could not recover from checkpoint as it does not exist on storage anymore"). The trial's newer
checkpoint is still there: it is moved to the name the state expects, so the trial goes on from
there rather than failing.

The storage may be a local folder or an object store (S3): both are read and written through a
pyarrow filesystem, where a checkpoint folder is moved by a rename, or by a copy and then a delete.

The experiment state is Ray's own file (`experiment_state-<time>.json`, the newest by name is the
one Ray restores); it is only read here, and anything unexpected in it leaves the folder as it is.
"""

from __future__ import annotations

import fnmatch
import json
import logging
from pathlib import Path
from typing import Any

import pyarrow.fs as pafs

from smcl_tune.store.probes import EXPERIMENT_STATE_FILES

log = logging.getLogger(__name__)

CHECKPOINT_PATTERN = "checkpoint_*"


def listing(fs: pafs.FileSystem, folder: str, pattern: str, kind: pafs.FileType) -> list[str]:
    """The base names of the entries of `folder` of `kind` that match `pattern`, sorted."""
    try:
        entries = fs.get_file_info(pafs.FileSelector(folder, allow_not_found=True))
    except OSError as error:
        log.warning("cannot list %s (%s): its checkpoints are not checked", folder, error)
        return []
    return sorted(
        entry.base_name for entry in entries if entry.type == kind and fnmatch.fnmatch(entry.base_name, pattern)
    )


def read_file(fs: pafs.FileSystem, path: str) -> bytes:
    with fs.open_input_stream(path) as stream:
        return stream.readall()


def ray_trials(experiment_state: bytes) -> list[tuple[Any, Any]]:
    """(trial, runtime) of each trial of Ray's experiment state file, each part decoded from the JSON
    text Ray keeps it in."""
    return [
        tuple(json.loads(part) if isinstance(part, str) else part for part in entry)
        for entry in json.loads(experiment_state)["trial_data"]
    ]


def _named_checkpoints(fs: pafs.FileSystem, state_file: str) -> list[tuple[str, str]]:
    """(trial folder, checkpoint folder) for every trial whose last result names a checkpoint."""
    try:
        trials = ray_trials(read_file(fs, state_file))
    except (OSError, ValueError, KeyError, TypeError) as error:
        log.warning("cannot read Ray's experiment state %s (%s): its checkpoints are not checked", state_file, error)
        return []
    named = []
    for parts in trials:
        try:
            trial, runtime = parts
            folder: Any = trial["relative_logdir"]
            checkpoint: Any = (runtime.get("last_result") or {}).get("checkpoint_dir_name")
        except (ValueError, KeyError, TypeError, AttributeError):
            continue
        if isinstance(folder, str) and isinstance(checkpoint, str) and folder and checkpoint:
            named.append((folder, checkpoint))
    return named


def _is_folder(fs: pafs.FileSystem, path: str) -> bool:
    return fs.get_file_info(path).type == pafs.FileType.Directory


def _move_folder(fs: pafs.FileSystem, source: str, target: str) -> None:
    if isinstance(fs, pafs.LocalFileSystem):
        fs.move(source, target)  # a rename
        return
    # an object store has no folders to rename: the copy is whole before the original goes
    pafs.copy_files(source, target, source_filesystem=fs, destination_filesystem=fs)
    fs.delete_dir(source)


def restore_missing_checkpoints(experiment_dir: Path | str, filesystem: pafs.FileSystem | None = None) -> list[Path]:
    """Where the checkpoint Ray's state names for a trial is gone, move its replacement to that
    name; the checkpoint folders brought back. `experiment_dir` is a local folder, or a path of
    `filesystem` (an S3 bucket's, say)."""
    fs = filesystem or pafs.LocalFileSystem()
    root = str(experiment_dir)
    states = listing(fs, root, EXPERIMENT_STATE_FILES, pafs.FileType.File)
    if not states:
        return []
    restored = []
    for folder, name in _named_checkpoints(fs, f"{root}/{states[-1]}"):
        trial_dir = f"{root}/{folder}"
        expected = f"{trial_dir}/{name}"
        if _is_folder(fs, expected) or not _is_folder(fs, trial_dir):
            continue
        replacement = _replacement(listing(fs, trial_dir, CHECKPOINT_PATTERN, pafs.FileType.Directory), name)
        if replacement is None:
            log.warning("trial folder %s has no checkpoint left: Ray will fail its restore", trial_dir)
            continue
        _move_folder(fs, f"{trial_dir}/{replacement}", expected)
        log.warning(
            "%s: Ray's saved state names %s, deleted before the driver stopped; resuming from %s instead",
            folder,
            name,
            replacement,
        )
        restored.append(Path(expected))
    return restored


def _replacement(surviving: list[str], missing: str) -> str | None:
    """The checkpoint that replaced `missing`: the first one after it. Ray registers a checkpoint (and
    deletes the one before) only after the driver has handled, and MLflow logged, that epoch's
    result; a later one on disk may hold epochs the driver never saw, which are trained again.
    Without one after it, the newest one before it."""
    later = [name for name in surviving if name > missing]
    if later:
        return later[0]
    return surviving[-1] if surviving else None
