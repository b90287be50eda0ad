"""CIFAR's published archives and the files they unpack to, known without torch: the driver checks
and fetches them before Ray starts (fetch.py), and a trial finds them there.

The archives, their MD5 sums and their layout are those the CIFAR page publishes
(https://www.cs.toronto.edu/~kriz/cifar.html), which torchvision checks too.
"""

from __future__ import annotations

import hashlib
import pickle
from dataclasses import dataclass
from pathlib import Path

from smcl_tune.errors import DataSourceError

OFFICIAL_SITE = "https://www.cs.toronto.edu/~kriz/"
CHUNK_BYTES = 1 << 20
NOT_CIFARS = "not CIFAR's (another MD5: cut short, or other data)"  # a file of the folder that fails its check


_known_md5s: dict[tuple[str, int, int], str] = {}  # (path, size, mtime) -> MD5: a file is read once per process


def md5_of(path: Path) -> str:
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    if key not in _known_md5s:
        digest = hashlib.md5(usedforsecurity=False)
        with path.open("rb") as file:
            while chunk := file.read(CHUNK_BYTES):
                digest.update(chunk)
        _known_md5s[key] = digest.hexdigest()
    return _known_md5s[key]


@dataclass(frozen=True)
class CifarArchive:
    dataset: str
    filename: str
    md5: str
    size: int  # bytes
    folder: str  # what the archive unpacks to, under data.root
    files: tuple[str, ...]  # the folder's files a trial reads
    file_md5s: tuple[str, ...]  # each file's MD5 as the archive holds it (torchvision checks the same)
    meta_file: str
    names_key: str  # the class names in the meta file

    def url(self, mirror: str | None = None) -> str:
        return f"{(mirror or OFFICIAL_SITE).rstrip('/')}/{self.filename}"

    def missing(self, root: Path) -> list[str]:
        folder = root / self.folder
        return [name for name in self.files if not (folder / name).is_file()]

    def damaged(self, root: Path) -> list[str]:
        """The folder's files that are there but are not CIFAR's (another MD5): a copy cut short, or
        other data. DataSourceError naming a file that cannot be read."""
        folder = root / self.folder
        damaged = []
        for name, md5 in zip(self.files, self.file_md5s):
            path = folder / name
            try:
                if path.is_file() and md5_of(path) != md5:
                    damaged.append(name)
            except OSError as error:
                raise DataSourceError(f"{path}: cannot read it ({error.strerror or error})") from None
        return damaged

    def archive_whole(self, root: Path) -> bool:
        """The archive in `root`, CIFAR's own (so it is unpacked, not downloaded again)."""
        path = root / self.filename
        return path.is_file() and md5_of(path) == self.md5

    def whole(self, root: Path) -> bool:
        """Every file there, each CIFAR's own (about half a second for CIFAR's 180 MB)."""
        return not self.missing(root) and not self.damaged(root)


CIFAR_ARCHIVES = {
    "cifar10": CifarArchive(
        "cifar10",
        "cifar-10-python.tar.gz",
        "c58f30108f718f92721af3b95e74349a",
        170_498_071,
        "cifar-10-batches-py",
        (*(f"data_batch_{i}" for i in range(1, 6)), "test_batch", "batches.meta"),
        (
            "c99cafc152244af753f735de768cd75f",
            "d4bba439e000b95fd0a9bffe97cbabec",
            "54ebc095f3ab1f0389bbae665268c751",
            "634d18415352ddfa80567beed471001a",
            "482c414d41f54cd18b22e5b47cb7c3cb",
            "40351d587109b95175f43aff81a1287e",
            "5ff9c542aee3614f3951f8cda6e48888",
        ),
        "batches.meta",
        "label_names",
    ),
    "cifar100": CifarArchive(
        "cifar100",
        "cifar-100-python.tar.gz",
        "eb9058c3a382ffc7106e4002c42a8d85",
        169_001_437,
        "cifar-100-python",
        ("train", "test", "meta"),
        ("16019d7e3df5f24257cddd939b257f8d", "f0ef6b0ae62326f3e7ffdfab6717acfc", "7973b15100ade9c7d40fb424638fde48"),
        "meta",
        "fine_label_names",
    ),
}


def check_cifar(name: str, root: Path, download: bool) -> str | None:
    """Whether CIFAR's files of `name` are under `root`, whole: by name, then by their MD5 (read once
    per process, about a quarter of a second for CIFAR's 180 MB).

    Returns a note when they are missing and `download` will fetch them; raises DataSourceError
    when they are missing and nothing will.
    """
    archive = CIFAR_ARCHIVES[name]
    if root.exists() and not root.is_dir():
        raise DataSourceError(f"{root}: a file, not a folder; expected the folder that holds {archive.folder}")
    missing = archive.missing(root.resolve())
    folder = root.resolve() / archive.folder
    if not missing:
        damaged = archive.damaged(root.resolve())
        if not damaged:
            return None
        wrong = f"{folder}: {', '.join(damaged)} are {NOT_CIFARS}"
        if download:
            return f"{wrong}: the folder is moved aside and {name} fetched again before the study starts"
        raise DataSourceError(f"{wrong}; put CIFAR's own files there, or set data.download: true to fetch them again")
    if download:
        return f"{name} is not in {folder} yet: it is fetched there before the study starts (data.download: true)"
    raise DataSourceError(
        f"{root}: no {name} data; expected the folder {folder} with {', '.join(archive.files)} "
        f"(missing: {', '.join(missing)}); put the dataset there, set data.download: true, or run "
        "`smcl-tune prepare STUDY.yaml` where there is a network"
    )


# CIFAR-10's classes in label order, as its page lists them (CIFAR-100's 100 are read from its meta file)
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")


class _PlainUnpickler(pickle.Unpickler):
    """Reads a pickle of plain data only (CIFAR's meta file is a dict of lists of strings): a file
    that names a class or function, as one made to run code on load does, is refused."""

    def find_class(self, module: str, name: str):
        raise pickle.UnpicklingError(f"{module}.{name}: not plain data")


def cifar_class_names(name: str, root: Path) -> list[str] | None:
    """The class names of the meta file, once the data is there; before, CIFAR-10's published ones
    (None for CIFAR-100)."""
    archive = CIFAR_ARCHIVES[name]
    path = root / archive.folder / archive.meta_file
    try:
        with path.open("rb") as file:
            meta = _PlainUnpickler(file, encoding="latin1").load()  # CIFAR's own file, as torchvision reads it
        names = [str(label) for label in meta[archive.names_key]]
    except (OSError, pickle.UnpicklingError, EOFError, KeyError, TypeError, ValueError):
        return list(CIFAR10_CLASSES) if name == "cifar10" else None
    return names
