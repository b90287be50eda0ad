"""Bring back the trial checkpoints that Ray's saved experiment state names but Ray already deleted.

With `CheckpointConfig(num_to_keep=1)` Ray deletes a trial's previous checkpoint as soon as it
registers the next one, and saves the experiment state, which names the checkpoint each trial
resumes from, only later in its loop. A driver killed in between (`kill -9`, a lost head node)
leaves a state that names a deleted checkpoint, and on resume Ray fails the trial three times over
("Could not recover from checkpoint as it does not exist on storage anymore"). The trial's newer
checkpoint is still there: it is moved to the name the state expects, so the trial goes on from
there rather than failing.

The experiment state is Ray's own file (`experiment_state-<time>.json`, the newest by name is the
one Ray restores); it is only read here, and anything unexpected in it leaves the folder as it is.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

STATE_PATTERN = "experiment_state-*.json"
CHECKPOINT_PATTERN = "checkpoint_*"


def _named_checkpoints(state_file: Path) -> list[tuple[str, str]]:
    """(trial folder, checkpoint folder) for every trial whose last result names a checkpoint."""
    try:
        trial_data = json.loads(state_file.read_text())["trial_data"]
    except (OSError, ValueError, KeyError, TypeError) as error:
        log.warning("cannot read Ray's experiment state %s (%s): its checkpoints are not checked", state_file, error)
        return []
    named = []
    for entry in trial_data:
        try:
            trial, runtime = (json.loads(part) if isinstance(part, str) else part for part in entry)
            folder: Any = trial["relative_logdir"]
            checkpoint: Any = (runtime.get("last_result") or {}).get("checkpoint_dir_name")
        except (ValueError, KeyError, TypeError, AttributeError):
            continue
        if isinstance(folder, str) and isinstance(checkpoint, str) and folder and checkpoint:
            named.append((folder, checkpoint))
    return named


def restore_missing_checkpoints(experiment_dir: Path) -> list[Path]:
    """Where the checkpoint Ray's state names for a trial is gone, move its replacement to that
    name; the checkpoint folders brought back."""
    states = sorted(experiment_dir.glob(STATE_PATTERN))
    if not states:
        return []
    restored = []
    for folder, name in _named_checkpoints(states[-1]):
        trial_dir = experiment_dir / folder
        expected = trial_dir / name
        if expected.exists() or not trial_dir.is_dir():
            continue
        replacement = _replacement(trial_dir, name)
        if replacement is None:
            log.warning("trial folder %s has no checkpoint left: Ray will fail its restore", trial_dir)
            continue
        replacement.rename(expected)
        log.warning(
            "%s: Ray's saved state names %s, deleted before the driver stopped; resuming from %s instead",
            folder,
            name,
            replacement.name,
        )
        restored.append(expected)
    return restored


def _replacement(trial_dir: Path, missing: str) -> Path | None:
    """The checkpoint that replaced `missing`: the first one after it. Ray registers a checkpoint (and
    deletes the one before) only after the driver has handled, and MLflow logged, that epoch's
    result; a later one on disk may hold epochs the driver never saw, which are trained again.
    Without one after it, the newest one before it."""
    surviving = sorted(path for path in trial_dir.glob(CHECKPOINT_PATTERN) if path.is_dir())
    later = [path for path in surviving if path.name > missing]
    if later:
        return later[0]
    return surviving[-1] if surviving else None
