"""A study's local storage as Ray sees it: every file Ray writes there is whole or absent.

Ray stages the experiment's state (trial states, the searcher's state) in a local folder and copies
it into the storage with pyarrow after every trial checkpoint; trial checkpoints reach it the same
way. pyarrow writes over a file in place, so a driver killed during a copy left a truncated state
file, and the study could not be resumed. Through this filesystem each file is written beside its
destination under a temporary name and renamed over it when its stream is closed; a killed copy
leaves the previous version, and a hidden `.NAME.<random>.partial` file (atomic_write's
naming) that nothing reads; a write the disk refuses leaves nothing. (Files are replaced one at a
time: a kill between two leaves one new and one old, each whole.)

Whole is not enough for the experiment state, which Ray's driver rewrote in place in the staging
folder while its background copy may be reading it: the copy took a torn file (a prefix of the
JSON), and a driver killed before the next copy left a study that could not be resumed. A study's
fit now saves it whole (whole_state_saves); should a Ray save it otherwise, a copy of the
experiment state that is not readable JSON (store/probes) still does not replace the previous
version here, and the next copy brings the new one. (Ray's other state files are written under a
temporary name and renamed: a copy finds them whole, or not at all.)
"""

from __future__ import annotations

import fnmatch
import logging
import os
from pathlib import Path

import pyarrow
from pyarrow import fs

from smcl_tune.atomic_write import PARTIAL_SUFFIX, open_partial
from smcl_tune.store.probes import EXPERIMENT_STATE_FILES, experiment_state_problem

log = logging.getLogger(__name__)


def _torn_experiment_state(path: str, copy: str) -> str | None:
    """What is wrong with `copy`, the new version of `path`, if `path` is an experiment state."""
    if not fnmatch.fnmatch(os.path.basename(path), EXPERIMENT_STATE_FILES):
        return None
    return experiment_state_problem(Path(copy).read_bytes())


class _WholeOrAbsent:
    """A binary file written under a temporary name and renamed to `path` on close; a write that
    failed (a full disk) leaves `path` as it was."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._file, self.temporary = open_partial(Path(path))  # closed (and renamed) by close()

    @property
    def closed(self) -> bool:
        return self._file.closed

    def write(self, data) -> int:
        try:
            return self._file.write(data)
        except BaseException:
            self._abandon()  # pyarrow's copy never closes a stream whose write failed
            raise

    def _abandon(self) -> None:
        self._file.close()
        Path(self.temporary).unlink(missing_ok=True)

    def flush(self) -> None:
        self._file.flush()

    def tell(self) -> int:
        return self._file.tell()

    def close(self) -> None:
        if self._file.closed:
            return
        try:
            self._file.close()
        except BaseException:
            self._abandon()
            raise
        torn = _torn_experiment_state(self.path, self.temporary)
        if torn is not None:
            Path(self.temporary).unlink(missing_ok=True)
            log.debug("%s: a copy read while Ray rewrote it (%s); the previous version is kept", self.path, torn)
            return
        os.replace(self.temporary, self.path)


class WholeFileHandler(fs.FileSystemHandler):
    """The local filesystem, with writes that replace a file only once the new version is whole."""

    def __init__(self) -> None:
        self._local = fs.LocalFileSystem()

    def __eq__(self, other) -> bool:
        return isinstance(other, WholeFileHandler)

    def __ne__(self, other) -> bool:
        return not self == other

    def __reduce__(self):  # Ray sends the storage to every trial's worker
        return WholeFileHandler, ()

    def get_type_name(self) -> str:
        return "smcl-tune-local"

    def normalize_path(self, path: str) -> str:
        return self._local.normalize_path(path)

    def get_file_info(self, paths: list[str]) -> list[fs.FileInfo]:
        return self._local.get_file_info(paths)

    def get_file_info_selector(self, selector: fs.FileSelector) -> list[fs.FileInfo]:
        return self._local.get_file_info(selector)

    def create_dir(self, path: str, recursive: bool) -> None:
        self._local.create_dir(path, recursive=recursive)

    def delete_dir(self, path: str) -> None:
        self._local.delete_dir(path)

    def delete_dir_contents(self, path: str, missing_dir_ok: bool = False) -> None:
        self._local.delete_dir_contents(path, missing_dir_ok=missing_dir_ok)

    def delete_root_dir_contents(self) -> None:
        raise OSError("smcl-tune never empties the root folder")

    def delete_file(self, path: str) -> None:
        self._local.delete_file(path)

    def move(self, src: str, dest: str) -> None:
        self._local.move(src, dest)

    def copy_file(self, src: str, dest: str) -> None:
        target = _WholeOrAbsent(dest)
        try:
            with self._local.open_input_stream(src) as source:
                while chunk := source.read(1 << 20):
                    target.write(chunk)
        except BaseException:
            target._abandon()
            raise
        target.close()

    def open_input_stream(self, path: str) -> pyarrow.NativeFile:
        return self._local.open_input_stream(path)

    def open_input_file(self, path: str) -> pyarrow.NativeFile:
        return self._local.open_input_file(path)

    def open_output_stream(self, path: str, metadata) -> pyarrow.NativeFile:
        return pyarrow.PythonFile(_WholeOrAbsent(path), mode="w")

    def open_append_stream(self, path: str, metadata) -> pyarrow.NativeFile:
        return self._local.open_append_stream(path, metadata=metadata)


def whole_file_storage() -> fs.PyFileSystem:
    """The filesystem a study with a local storage hands Ray (`RunConfig.storage_filesystem`)."""
    return fs.PyFileSystem(WholeFileHandler())


def is_local(filesystem: fs.FileSystem | None) -> bool:
    """Whether Ray's storage filesystem is this node's own disk (plain, or through this module)."""
    if isinstance(filesystem, fs.LocalFileSystem):
        return True
    return isinstance(filesystem, fs.PyFileSystem) and isinstance(filesystem.handler, WholeFileHandler)


def remove_partial_copies(folder: Path) -> int:
    """Before a study resumes (nothing writes to its storage yet): the unfinished copies that killed
    writers left in `folder`; how many there were."""
    partial = [path for path in folder.rglob(f".*{PARTIAL_SUFFIX}") if path.is_file()]
    for path in partial:
        path.unlink(missing_ok=True)
    if partial:
        log.info("%s: removed %d unfinished copies left by a killed run", folder, len(partial))
    return len(partial)
