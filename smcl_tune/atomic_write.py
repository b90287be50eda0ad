"""Files that others read are written whole: to a temporary name in the same folder, then renamed
over the old one. A storage that fills up mid-write leaves the old file as it was, no temporary
file behind, and a `StorageFull` error that names the storage and the space the write needed."""

from __future__ import annotations

import errno
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from smcl_tune.errors import StudyUnavailable, error_chain

# "No space left", "quota exceeded", "file too large" (a size limit: RLIMIT_FSIZE, a filesystem's cap)
FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})
FULL_TEXTS = ("no space left on device", "database or disk is full", "disk quota exceeded", "file too large")


class StorageFull(StudyUnavailable):
    """A write that found its storage full. Nothing half-written is left; the same command goes on
    once space is freed."""

    def __reduce__(self):  # Ray carries a trial's error to the driver pickled
        return (type(self), self.args)


def is_storage_full(error: BaseException | None) -> bool:
    """Whether `error`, or an error it was raised from, is a full storage (sqlite, pyarrow and Ray
    each wrap it their own way)."""
    for link in error_chain(error):
        if isinstance(link, StorageFull):
            return True
        if isinstance(link, OSError) and link.errno in FULL_ERRNOS:
            return True
        if any(text in str(link).lower() for text in FULL_TEXTS):
            return True
    return False


def mount_point(path: Path) -> Path:
    """The mount point of the filesystem that holds `path` (or would hold it)."""
    path = Path(os.path.abspath(path))
    while not path.exists() and path != path.parent:
        path = path.parent
    while not os.path.ismount(path):
        path = path.parent
    return path


def megabytes(size: float) -> str:
    return f"{size / 2**20:.1f} MB"


def storage_full_message(path: Path, needed: int | None = None, what: str | None = None) -> str:
    """One line: the storage that holds `path`, what it has free, what the write of `what` (default:
    the file's name) needed, what to do."""
    mount = mount_point(path)
    usage = shutil.disk_usage(mount)
    need = f"; writing {what or path.name} needs {megabytes(needed)}" if needed else ""
    return (
        f"{mount}: the storage is full ({megabytes(usage.free)} free of {megabytes(usage.total)}){need}; "
        f"the study stopped and left nothing half-written: free space on {mount} and run the same command "
        "again to go on"
    )


class _SizeCounter:
    """A write-only sink that only counts bytes: how much a writer would write."""

    def __init__(self) -> None:
        self.size = 0

    def write(self, data) -> int:
        self.size += len(data)
        return len(data)

    def flush(self) -> None:
        pass


def size_of(write: Callable[[BinaryIO], object]) -> int | None:
    counter = _SizeCounter()
    try:
        write(counter)  # type: ignore[arg-type]
    except Exception:  # a writer that needs a real file: the size stays unknown
        return None
    return counter.size


PARTIAL_SUFFIX = ".partial"


def open_partial(path: Path) -> tuple[BinaryIO, str]:
    """A new hidden file beside `path` (`.NAME.<random>.partial`), open for writing, and its name."""
    path = Path(path)
    descriptor, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=PARTIAL_SUFFIX, dir=path.parent)
    return os.fdopen(descriptor, "wb"), temporary


def write_atomically(path: Path, write: Callable[[BinaryIO], object]) -> Path:
    """`write(file)` into a temporary file beside `path`, then rename it to `path`."""
    path = Path(path)
    temporary = None
    try:
        file, temporary = open_partial(path)
        with file:
            write(file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException as error:
        if temporary is not None:
            Path(temporary).unlink(missing_ok=True)
        if isinstance(error, Exception) and is_storage_full(error):
            raise StorageFull(storage_full_message(path, size_of(write))) from None
        raise
    return path


def write_bytes_atomically(path: Path, data: bytes) -> Path:
    return write_atomically(path, lambda file: file.write(data))
