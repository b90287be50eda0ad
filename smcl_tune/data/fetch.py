"""A CIFAR archive fetched into `data.root` once: downloaded to a temporary name, its MD5 checked,
renamed, unpacked into a temporary folder, renamed again; so a killed fetch never leaves a half
archive or a half folder that passes as whole.

One process at a time per data folder: a lock file there (the `filelock` package, which torch
already depends on; an OS lock, so a killed holder frees it). The first process fetches, the
others wait and then find the files. On a cluster each node fetches into its own data folder; a
folder shared over NFS is locked as far as its NFS locks reach.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import socket
import tarfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

from smcl_tune.data.cifar_files import CHUNK_BYTES, CIFAR_ARCHIVES, NOT_CIFARS, CifarArchive, md5_of
from smcl_tune.errors import DataSourceError

log = logging.getLogger(__name__)

Progress = Callable[[int, "int | None"], None]  # bytes so far, bytes in all (None: not known)
CONNECT_TIMEOUT_S = 30.0


class FetchError(DataSourceError):
    """A dataset that could not be fetched (exit code 2, before anything starts)."""


def _advice(archive: CifarArchive, root: Path) -> str:
    return (
        f"put {archive.folder} (or {archive.filename}) in {root} by hand, or run `smcl-tune prepare STUDY.yaml` "
        "where there is a network (data.mirror: a URL that serves the same file)"
    )


def _fetch_error(url: str, archive: CifarArchive, root: Path, reason: object) -> FetchError:
    return FetchError(
        f"could not fetch {archive.dataset} from {urlsplit(url).netloc or url} into {root} ({reason}); "
        + _advice(archive, root)
    )


def _check_reachable(url: str, archive: CifarArchive, root: Path) -> None:
    """The archive's server answers, before the data folder and its lock file are made: a first run
    without a network leaves nothing behind (a failed download after this point leaves the folder,
    as other processes may be waiting on its lock)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return  # a mirror of another kind: the download says what it makes of it
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
        socket.create_connection((parts.hostname, port), timeout=CONNECT_TIMEOUT_S).close()
    except (OSError, ValueError) as error:
        raise _fetch_error(url, archive, root, error) from None


def _download(url: str, archive: CifarArchive, root: Path, progress: Progress | None) -> Path:
    """The archive at `url`, whole and checked, as root/filename. Its partial file goes however the
    download ends (an error, Ctrl-C or SIGTERM)."""
    target = root / archive.filename
    partial = root / f".{archive.filename}.part-{os.getpid()}"
    digest = hashlib.md5(usedforsecurity=False)
    try:
        try:
            with urllib.request.urlopen(url, timeout=CONNECT_TIMEOUT_S) as response, partial.open("wb") as output:
                total = int(response.headers.get("Content-Length") or 0) or None
                done = 0
                while chunk := response.read(CHUNK_BYTES):
                    output.write(chunk)
                    digest.update(chunk)
                    done += len(chunk)
                    if progress is not None:
                        progress(done, total)
        except (urllib.error.URLError, OSError, ValueError) as error:
            raise _fetch_error(url, archive, root, _reason(error)) from None
        if digest.hexdigest() != archive.md5:
            raise FetchError(
                f"{url}: the file fetched ({done} bytes) is not {archive.filename} (MD5 {digest.hexdigest()}, "
                f"expected {archive.md5}); nothing was kept; " + _advice(archive, root)
            )
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)
    return target


def _reason(error: BaseException) -> object:
    """An HTTP error names the address that answered it (a mirror without the file: 404 at its URL)."""
    if isinstance(error, urllib.error.HTTPError):
        return f"HTTP {error.code} {error.reason} at {error.url}"
    return getattr(error, "reason", None) or error


def _unpack(path: Path, archive: CifarArchive, root: Path) -> None:
    staging = root / f".{archive.folder}.unpacking-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    try:  # the staging folder goes however the unpacking ends (an error, Ctrl-C or SIGTERM)
        try:
            with tarfile.open(path) as tar:
                tar.extractall(staging, filter="data")
        except (tarfile.TarError, OSError, EOFError) as error:
            raise FetchError(f"{path}: cannot unpack it ({error}); delete it and fetch again") from None
        unpacked = staging / archive.folder
        missing = archive.missing(staging)
        if missing:
            raise FetchError(f"{path}: {archive.folder} in it lacks {', '.join(missing)}; delete it and fetch again")
        final = root / archive.folder
        if final.exists():  # a folder without all its files, or with files not CIFAR's: kept aside
            aside = root / f"{archive.folder}.incomplete-{int(time.time())}"
            log.warning("%s lacks some of its files or holds files that are not CIFAR's: moved to %s", final, aside)
            os.replace(final, aside)
        os.replace(unpacked, final)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def fetch_cifar(dataset: str, root: Path, mirror: str | None = None, progress: Progress | None = None) -> bool:
    """CIFAR-10 or CIFAR-100 in root, fetched if it is not there whole; True when this call fetched it."""
    archive = CIFAR_ARCHIVES[dataset]
    root = root.resolve()
    if archive.whole(root):
        return False
    try:
        return _fetch(archive, root, mirror, progress)
    except FetchError as error:
        found = _found_there(archive, root)
        if not found:
            raise
        raise FetchError(f"{found}; {error}") from None


def _found_there(archive: CifarArchive, root: Path) -> str | None:
    """What was in the data folder that is not CIFAR's, for the line of a fetch that failed."""
    found = []
    damaged = archive.damaged(root) if (root / archive.folder).is_dir() else []
    if damaged:
        found.append(f"{root / archive.folder}: {', '.join(damaged)} {NOT_CIFARS}")
    path = root / archive.filename
    if path.is_file() and not archive.archive_whole(root):
        found.append(f"{path}: not CIFAR's archive (MD5 {md5_of(path)}, expected {archive.md5})")
    return "; ".join(found) or None


def _fetch(archive: CifarArchive, root: Path, mirror: str | None, progress: Progress | None) -> bool:
    import filelock

    if not archive.archive_whole(root):  # else no download: no server asked
        _check_reachable(archive.url(mirror), archive, root)
    try:
        root.mkdir(parents=True, exist_ok=True)
        lock = filelock.FileLock(root / f".{archive.filename}.lock")
        lock.acquire(timeout=0.1)
    except filelock.Timeout:
        log.info("another process fetches %s into %s: waiting for it", archive.dataset, root)
        lock.acquire()
    except OSError as error:
        raise FetchError(f"{root}: cannot write the data folder ({error}); " + _advice(archive, root)) from None
    try:
        if archive.whole(root):
            return False  # another process fetched it meanwhile
        _remove_leftovers(archive, root)
        path = root / archive.filename
        if not archive.archive_whole(root):
            path = _download(archive.url(mirror), archive, root, progress)
        _unpack(path, archive, root)
        return True
    finally:
        lock.release()


def _remove_leftovers(archive: CifarArchive, root: Path) -> None:
    """What fetches killed outright (SIGKILL, a lost node) left: partial downloads and unpackings.
    Under the lock no other process writes them."""
    for partial in root.glob(f".{archive.filename}.part-*"):
        partial.unlink(missing_ok=True)
    for staging in root.glob(f".{archive.folder}.unpacking-*"):
        shutil.rmtree(staging, ignore_errors=True)
