"""The study record: the file that ties a study's saved state to one study file, checked before a
study starts and written when it does."""

from __future__ import annotations

import copy
import itertools
import json
from pathlib import Path
from typing import Any

from smcl_tune.atomic_write import write_bytes_atomically
from smcl_tune.config import FORMER_DEFAULTS, flat_fields, trial_config_changes
from smcl_tune.errors import ConfigError
from smcl_tune.layout import STATE_FILE
from smcl_tune.store.paths import StudyPaths
from smcl_tune.studyfile.study import Study, redact_uri

# The layout of a study's saved state, kept in its record. 1 (a record without "format"): before a
# trial's TrialSpec travelled in its Ray config; Ray's saved Tuner of such a study names classes
# that no longer exist, so Tuner.restore fails deep inside Ray, after Ray started and MLflow was
# written. Raise it whenever a change leaves a saved study unresumable.
RECORD_FORMAT = 3
# Format 2 is format 3's state before Ray wrote the storage through study/whole_file_filesystem.py
# (called atomic_storage.py then): this smcl-tune resumes it (Tuner.restore takes the filesystem it
# is given), and the run rewrites the record as 3, whose pickles name that module (moved_modules.py
# keeps its old name): an smcl-tune of format 2 refuses it rather than fail.
RESUMABLE_FORMATS = (2, RECORD_FORMAT)


def run_settings(study: Study, paths: StudyPaths) -> dict[str, Any]:
    """What a resumed study keeps from its first run, whatever the study file says now: Ray
    restores its run and tune configuration as they were saved."""
    return {
        "tracking_uri": redact_uri(paths.tracking_uri),
        "experiment": paths.experiment,
        "max_concurrent": study.config.max_concurrent,
    }


def _read_record(paths: StudyPaths) -> dict[str, Any]:
    try:
        known = json.loads(paths.record_file.read_text())
    except (OSError, ValueError) as error:
        raise ConfigError(
            f"{paths.record_file}: the study record is unreadable ({error}); run again with --restart to discard "
            "the study's state"
        ) from None
    if not isinstance(known, dict):
        raise ConfigError(f"{paths.record_file}: the study record is not a JSON object; run again with --restart")
    return known


def study_record_of(paths: StudyPaths) -> dict[str, Any] | None:
    """The study's record, in its database (optuna.storage on a server) or its storage folder;
    None when the study has none yet."""
    if paths.database_url is not None:
        from smcl_tune.store.database_record import StudyTable

        with StudyTable(paths.database_url) as table:
            return table.record(paths.study_name)
    return _read_record(paths) if paths.record_file.exists() else None


def check_storage(paths: StudyPaths) -> None:
    """The storage is a folder, or can be made one: no file stands where it or a folder above it goes."""
    root = paths.local_root.absolute()
    existing = _nearest_existing(root)
    if existing.is_dir():
        return
    if existing == root:
        raise ConfigError(f"storage: {paths.local_root} is a file, not a folder; point storage at a folder")
    raise ConfigError(
        f"storage: {paths.local_root} cannot be made: {existing} is a file, not a folder; point storage at a folder"
    )


def _nearest_existing(root: Path) -> Path:
    """`root` or the nearest folder above it that exists (ConfigError when one cannot be looked into)."""
    for folder in (root, *root.parents):
        try:
            folder.stat()
        except (FileNotFoundError, NotADirectoryError):
            continue
        except OSError as error:
            raise ConfigError(f"storage: {root}: cannot look into {folder.parent} ({error.strerror})") from None
        return folder
    return root  # not even the file system's root answers


def check_owned(study: Study, paths: StudyPaths) -> None:
    """--restart deletes `storage/NAME`: only when it lies inside the storage and its record proves
    it holds this study."""
    folder = paths.record_dir
    if not (folder.exists() or folder.is_symlink()):
        return
    if folder.is_symlink() or folder.resolve().parent != paths.local_root.resolve():
        raise ConfigError(f"--restart: {folder} does not lie inside the storage {paths.local_root}; not deleting it")
    if not paths.record_file.is_file():
        raise ConfigError(
            f"--restart: {folder} holds no study record ({STATE_FILE}), so it is not study '{study.name}''s state; "
            "not deleting it: move it away, or choose another study name or storage"
        )
    recorded = _read_record(paths).get("name") if paths.record_file.stat().st_size else study.name
    if recorded not in (None, study.name):
        raise ConfigError(f"--restart: {folder} holds study '{recorded}', not '{study.name}'; not deleting it")


def _check_no_others_folder(study: Study, paths: StudyPaths) -> None:
    """A new study writes into `storage/NAME` and --restart later deletes it: a folder already there
    with something in it and no record is another's (a user's files), and is not taken over."""
    folder = paths.record_dir
    try:
        taken = folder.is_dir() and any(folder.iterdir())  # an empty one, or a link to one, is the user's offer
    except OSError as error:
        raise ConfigError(f"storage: cannot look into {folder} ({error.strerror})") from None
    if taken:
        raise ConfigError(
            f"{folder} already holds files and no study record ({STATE_FILE}), so it is not study '{study.name}''s "
            "state; not writing into it: move it away, or choose another study name or storage"
        )


def check_study_record(study: Study, paths: StudyPaths, restart: bool) -> dict[str, Any] | None:
    """Before anything starts: the storage is a folder; --restart deletes only this study's own
    state; a study another smcl-tune started, a changed study file, or changed run settings, under
    an existing name are refused."""
    check_storage(paths)
    if restart:
        if paths.database_url is None:
            check_owned(study, paths)
        return None
    known = study_record_of(paths)
    if known is None:
        if paths.database_url is None:
            _check_no_others_folder(study, paths)
        return None
    check_record_format(study, paths, known.get("format", 1))  # before anything else it says is compared
    if known.get("fingerprint") not in study.fingerprints() and not _pins_what_it_started_with(study, known):
        raise ConfigError(
            f"study '{study.name}' already exists in {paths.record_place} with a different study file "
            f"(it was started from {known.get('source')}); rename the study, or run again with --restart "
            "to discard it and start over"
        )
    check_resolved_trial(study, paths, known.get("resolved_trial"))
    for key, value in run_settings(study, paths).items():
        if key in known.get("settings", {}) and known["settings"][key] != value:
            raise ConfigError(
                f"study '{study.name}': {key} was {known['settings'][key]!r} when the study started and is {value!r} "
                "now; a resumed study keeps its first run's setting: put it back, or run with --restart"
            )
    return known


def _pins_what_it_started_with(study: Study, known: dict[str, Any]) -> bool:
    """Whether the study file is the one the study started from, but for trial values it now sets to
    what they were then (defaults since changed, as check_resolved_trial asks): without those
    settings, its fingerprint is the recorded one."""
    recorded = flat_fields(known.get("resolved_trial") or {})
    pinned = [key for key, value in flat_fields(study.config.trial).items() if _pins(key, value, recorded)]
    for count in range(1, len(pinned) + 1):  # a few keys at most: those FORMER_DEFAULTS names
        for keys in itertools.combinations(pinned, count):
            if known.get("fingerprint") in study.fingerprints(_without(study.config.trial, keys)):
                return True
    return False


def _pins(key: str, value: Any, recorded: dict[str, Any]) -> bool:
    """Whether the study file's `key: value` sets a former default of smcl-tune's, as the study started with it."""
    return value in FORMER_DEFAULTS.get(key, ()) and recorded.get(key) == value


def _without(tree: dict[str, Any], dotted_keys: tuple[str, ...]) -> dict[str, Any]:
    """`tree` without the dotted keys, and without the sections that leaves empty."""
    pruned = copy.deepcopy(tree)
    for dotted in dotted_keys:
        *sections, leaf = dotted.split(".")
        chain = [pruned]
        for section in sections:
            chain.append(chain[-1][section])
        del chain[-1][leaf]
        for parent, section in zip(reversed(chain[:-1]), reversed(sections), strict=True):
            if parent[section]:
                break
            del parent[section]
    return pruned


def check_resolved_trial(study: Study, paths: StudyPaths, recorded: dict[str, Any] | None) -> None:
    """The study file's trial, with every default filled in, is what the study started with: a
    changed default of smcl-tune (a new saliency, say) would otherwise make a resumed study mix two
    methods without a word. A record from before this check has none to compare."""
    if recorded is None:
        return
    changes = trial_config_changes(recorded, study.base_trial.model_dump(mode="json"), prefix="trial.")
    if not changes:
        return
    raise ConfigError(
        f"study '{study.name}' in {paths.record_place} started with other defaults than this smcl-tune's "
        f"({changes}); a resumed study keeps what it started with: set these values in the study file as "
        "they were, or run with --restart to start it over under the new defaults"
    )


def check_record_format(study: Study, paths: StudyPaths, recorded: object) -> None:
    """A study whose state another smcl-tune saved is refused: this one cannot resume it."""
    if recorded in RESUMABLE_FORMATS:
        return
    by = "a newer" if isinstance(recorded, int) and recorded > RECORD_FORMAT else "an older"
    raise ConfigError(
        f"study '{study.name}' in {paths.record_place} was started by {by} smcl-tune and cannot be resumed by this "
        "one; nothing was changed: give the study a new name (or another storage) to start it afresh beside the old "
        "one, or run again with --restart to discard the old state"
    )


def write_study_record(study: Study, paths: StudyPaths) -> None:
    """The record, written atomically: a crash never leaves it empty or cut short."""
    record = {
        "format": RECORD_FORMAT,
        "name": study.name,
        "fingerprint": study.fingerprint(),
        "source": str(study.source) if study.source else None,
        "settings": run_settings(study, paths),
        "resolved_trial": study.base_trial.model_dump(mode="json"),
    }
    if paths.database_url is not None:
        from smcl_tune.store.database_record import StudyTable

        with StudyTable(paths.database_url) as table:
            table.write_record(paths.study_name, record)
        return
    paths.record_dir.mkdir(parents=True, exist_ok=True)
    write_bytes_atomically(paths.record_file, json.dumps(record).encode())
