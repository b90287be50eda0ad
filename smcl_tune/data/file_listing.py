"""The files of an image folder or of file lists, listed and checked without decoding an image and
without torch: what `validate` and the study driver check before the start, and what the sources
build their pools from (data/sources/image_folder.py, file_list.py)."""

from __future__ import annotations

import os
import zipfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from smcl_tune.data.image_files import ImageFiles
from smcl_tune.errors import DataSourceError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
MAX_ZIP_MEMBERS = 10_000_000  # more is not a dataset archive but a zip bomb of names
SPLITS = ("train", "val", "test")
LIST_ENCODING = "utf-8-sig"  # a byte-order mark (a spreadsheet's export) is not part of the first line's name


@dataclass
class ListedSplit:
    files: ImageFiles
    labels: list[int]
    header_size: tuple[int, int] | None = None  # (height, width) of its first image, once read


@dataclass(frozen=True)
class Listing:
    train: ListedSplit
    test: ListedSplit
    val: ListedSplit | None  # a validation split of the source's own
    class_names: list[str]

    def train_counts(self) -> list[int]:
        counts = Counter(self.train.labels)
        return [counts[label] for label in range(len(self.class_names))]


def _is_image(name: str) -> bool:
    """An image file's name; a hidden one (macOS's `._NAME.jpg` beside each image copied from its
    disks, an editor's backup) is not an image, as a hidden class folder is not a class."""
    base = name.rsplit("/", 1)[-1]
    return not base.startswith(".") and base.lower().endswith(IMAGE_EXTENSIONS)


def _list_folder(root: Path, split: str, seen: dict[str, str]) -> dict[str, list[str]]:
    """The split's class folders' images; `seen` maps each image's real path to its name, across
    the splits, so that one file reached twice (through a link) is refused."""
    folder = root / split
    real_split = os.path.realpath(folder)
    classes: dict[str, list[str]] = {}
    for class_dir in sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")):
        names = []
        walked = set()  # real paths: a link back up (a loop) or to a folder walked already adds nothing
        waiting = [str(class_dir)]  # depth first, in name order: of two links to one folder, the first is read
        while waiting:
            directory = waiting.pop()
            real = os.path.realpath(directory)
            if real in walked:
                continue
            if _holds(real, real_split):
                above = "the split folder itself" if real == real_split else f"a folder above {folder}"
                raise DataSourceError(
                    f"{directory}: a link to {real}, {above}: every class's images would count as {class_dir.name}'s"
                )
            walked.add(real)
            entries = _entries(directory)
            waiting.extend(entry.path for entry in reversed(entries) if entry.is_dir())
            for entry in entries:
                if not entry.is_dir() and _is_image(entry.name):
                    name = os.path.relpath(entry.path, root)
                    # a file's own link is resolved; the others lie where their folder really is
                    is_link = entry.is_symlink()
                    _check_once(
                        root, name, os.path.realpath(entry.path) if is_link else os.path.join(real, entry.name), seen
                    )
                    names.append(name)
        if not names:
            raise DataSourceError(f"{class_dir}: class folder holds no image files ({', '.join(IMAGE_EXTENSIONS)})")
        classes[class_dir.name] = sorted(names)
    if not classes:
        raise DataSourceError(f"{folder}: no class folders; expected {folder}/<class>/<image>")
    return classes


def _check_once(root: Path, name: str, real: str, seen: dict[str, str]) -> None:
    """One file, one place: a link that reaches an image listed already would count it twice, under
    a second class, or in training and test at once."""
    first = seen.setdefault(real, name)
    if first != name:
        raise DataSourceError(
            f"{root / name}: the same file as {root / first} (through a link); an image may be in one class "
            "of one split only"
        )


def _holds(outer: str, inner: str) -> bool:
    """Whether the real path `outer` is `inner` or a folder above it."""
    return inner == outer or inner.startswith(outer.rstrip(os.sep) + os.sep)


def _entries(directory: str) -> list[os.DirEntry]:
    """The folder's entries by name, hidden ones left out; a folder that cannot be listed is named,
    not skipped (as os.walk would)."""
    try:
        with os.scandir(directory) as listing:
            return sorted((entry for entry in listing if not entry.name.startswith(".")), key=lambda entry: entry.name)
    except OSError as error:
        raise DataSourceError(f"{directory}: cannot list the folder ({error.strerror})") from None


def _list_zip(archive: Path, split: str) -> tuple[dict[str, list[str]], zipfile.ZipFile]:
    """The classes' members, and the archive left open for the pool (its index read once)."""
    try:
        opened = zipfile.ZipFile(archive)
    except (OSError, EOFError, zipfile.BadZipFile) as error:
        raise DataSourceError(f"{archive}: not a readable zip archive ({error})") from None
    try:
        return _zip_classes(archive, split, opened.infolist()), opened
    except DataSourceError:
        opened.close()
        raise


def _zip_classes(archive: Path, split: str, members: list[zipfile.ZipInfo]) -> dict[str, list[str]]:
    if len(members) > MAX_ZIP_MEMBERS:
        raise DataSourceError(
            f"{archive}: {len(members):,} members, more than a dataset archive may hold ({MAX_ZIP_MEMBERS:,})"
        )
    classes: dict[str, list[str]] = {}
    for member in members:
        parts = member.filename.split("/")
        if len(parts) < 3 or parts[0] != split or not parts[1] or parts[1].startswith("."):
            continue
        names = classes.setdefault(parts[1], [])
        hidden = any(part.startswith(".") for part in parts[2:-1])
        if not member.is_dir() and not hidden and _is_image(member.filename):
            names.append(member.filename)
    if not classes:
        raise DataSourceError(f"{archive}: no members {split}/<class>/<image>")
    for name, files in classes.items():
        if not files:
            raise DataSourceError(f"{archive}: {split}/{name}/ holds no image files ({', '.join(IMAGE_EXTENSIONS)})")
        files.sort()
    return dict(sorted(classes.items()))


def _image_folder_split(root: Path, split: str, seen: dict[str, str]) -> tuple[ListedSplit, list[str]]:
    opened = None
    if (root / split).is_dir():
        container, classes = root, _list_folder(root, split, seen)
    elif (root / f"{split}.zip").is_file():
        container = root / f"{split}.zip"
        classes, opened = _list_zip(container, split)
    else:
        raise DataSourceError(
            f"{root}: no {split} split; expected a folder {root / split}/<class>/<image> "
            f"or an archive {root / split}.zip with members {split}/<class>/<image>"
        )
    names = [name for files in classes.values() for name in files]
    labels = [label for label, files in enumerate(classes.values()) for _ in files]
    return ListedSplit(ImageFiles(container, names, opened), labels), list(classes)


def image_folder_listing(root: Path, image_size: int | None = None) -> Listing:
    """`root/train/<class>/*` and `root/test/<class>/*`, or `root/train.zip` and `root/test.zip`
    holding those members; labels follow the sorted class names. Without `image_size`, the first
    training and test images must be of one size (their headers are read)."""
    if not root.is_dir():
        raise DataSourceError(
            f"{root}: {_no_folder(root, 'image')}; expected train/ and test/ class folders or train.zip and test.zip"
        )
    seen: dict[str, str] = {}  # real path -> name, across both splits
    train, train_classes = _image_folder_split(root, "train", seen)
    test, test_classes = _image_folder_split(root, "test", seen)
    if train_classes != test_classes:
        only_train = sorted(set(train_classes) - set(test_classes))
        only_test = sorted(set(test_classes) - set(train_classes))
        raise DataSourceError(
            f"{root}: train and test classes differ: only in train {only_train}, only in test {only_test}"
        )
    if image_size is None:
        train.header_size, test.header_size = train.files.header_size(0), test.files.header_size(0)
        if test.header_size != train.header_size:
            (train_h, train_w), (test_h, test_w) = train.header_size, test.header_size
            raise DataSourceError(
                f"{root}: the first training image is {train_w}x{train_h} ({train.files.describe(0)}), the first "
                f"test image {test_w}x{test_h} ({test.files.describe(0)}); images must be of one size, or set "
                "data.image_size to resize them all"
            )
    return Listing(train=train, test=test, val=None, class_names=train_classes)


def folder_and_zip_note(root: Path) -> str | None:
    """A note where a split is there both as a folder and as a zip archive: the folder is read."""
    both = [split for split in ("train", "test") if (root / split).is_dir() and (root / f"{split}.zip").is_file()]
    if not both:
        return None
    folders = " and ".join(f"{split}/" for split in both)
    archives = " and ".join(f"{split}.zip" for split in both)
    read = "the folders are read, the archives are not" if len(both) > 1 else "the folder is read, the archive is not"
    return f"{root}: holds {folders} and {archives}: {read}"


def _no_folder(root: Path, kind: str) -> str:
    """`image folder not found`, or, where the root is a file, that it is one."""
    return "a file, not a folder" if root.exists() else f"{kind} folder not found{_taken_from(root)}"


def _taken_from(root: Path) -> str:
    """Where a relative root that is not there was looked for."""
    return "" if root.is_absolute() else f" (a relative root is taken from the folder smcl-tune runs in, {Path.cwd()})"


def _read_list(path: Path) -> list[tuple[str, int, int]]:
    """(relative path, label, line number) of each non-blank line."""
    if not path.is_file():
        raise DataSourceError(f"{path}: list file not found; expected lines '<path relative to {path.parent}> <label>'")
    entries = []
    for number, line in enumerate(path.read_text(encoding=LIST_ENCODING).splitlines(), start=1):
        if not line.strip():
            continue
        parts = line.strip().rsplit(maxsplit=1)
        try:
            label = int(parts[1]) if len(parts) == 2 else -1
        except ValueError:
            label = -1
        if label < 0:
            raise DataSourceError(f"{path}:{number}: expected '<relative path> <integer label >= 0>', got {line!r}")
        entries.append((parts[0], label, number))
    if not entries:
        raise DataSourceError(f"{path}: list file is empty")
    return entries


def _check_entries(
    root: Path, path: Path, entries: list[tuple[str, int, int]], num_classes: int, named: bool = False
) -> None:
    for _name, label, number in entries:
        if label >= num_classes:
            why = f" ({root / 'classes.txt'} names {num_classes} classes)" if named else ""
            raise DataSourceError(f"{path}:{number}: label {label} is out of range 0..{num_classes - 1}{why}")
    missing = [(name, number) for name, _, number in entries if not (root / name).is_file()]
    if missing:
        name, number = missing[0]
        what = "a folder, not an image file" if (root / name).is_dir() else "image file not found"
        raise DataSourceError(f"{root / name}: {what} (listed in {path}:{number}; {len(missing)} listed files missing)")


def file_list_listing(root: Path) -> Listing:
    """ImageNet-LT style lists `train.txt`, `val.txt`, `test.txt` of `<path relative to root> <label>`;
    class names from `classes.txt` (one per line) if present, else `class_<id>`."""
    if not root.is_dir():
        raise DataSourceError(f"{root}: {_no_folder(root, 'list')}; expected train.txt, val.txt and test.txt in it")
    lists = {split: _read_list(root / f"{split}.txt") for split in SPLITS}
    names_file = root / "classes.txt"
    if names_file.is_file():
        class_names = _class_names(names_file)
    else:
        class_names = [f"class_{i}" for i in range(max(label for _, label, _ in lists["train"]) + 1)]
    for split, entries in lists.items():
        _check_entries(root, root / f"{split}.txt", entries, len(class_names), names_file.is_file())
    listed = {
        split: ListedSplit(ImageFiles(root, [name for name, _, _ in entries]), [label for _, label, _ in entries])
        for split, entries in lists.items()
    }
    listing = Listing(train=listed["train"], test=listed["test"], val=listed["val"], class_names=class_names)
    empty = [label for label, count in enumerate(listing.train_counts()) if count == 0]
    if empty:
        named = ", ".join(f"{label} ({class_names[label]})" for label in empty[:10])
        more = f" and {len(empty) - 10} more" if len(empty) > 10 else ""
        raise DataSourceError(f"{root / 'train.txt'}: classes without training images: {named}{more}")
    return listing


def _class_names(path: Path) -> list[str]:
    """One name per non-blank line, in label order; a name given twice is refused (two labels would
    share it in every report)."""
    names: dict[str, int] = {}
    for number, line in enumerate(path.read_text(encoding=LIST_ENCODING).splitlines(), start=1):
        name = line.strip()
        if name in names:
            raise DataSourceError(
                f"{path}:{number}: class name {name!r} is also on line {names[name]}; "
                "each class needs a name of its own"
            )
        if name:
            names[name] = number
    return list(names)


def _images(count: int) -> str:
    return f"{count} image" + ("" if count == 1 else "s")


def overlap_note(listing: Listing) -> str | None:
    """File lists are the user's: a note where they list an image twice, or in two splits (validation
    and test are meant to be held out of training); None where they do not."""
    splits = {"train": listing.train, "val": listing.val, "test": listing.test}
    listed = {split: [os.path.normpath(name) for name in files.files.names] for split, files in splits.items() if files}
    notes = []
    for split, names in listed.items():
        repeated = sorted(name for name, count in Counter(names).items() if count > 1)
        if repeated:
            notes.append(f"{split}.txt lists {_images(len(repeated))} more than once (first: {repeated[0]})")
    train = set(listed["train"])
    for split in ("val", "test"):
        shared = sorted(train.intersection(listed.get(split, [])))
        if shared:
            notes.append(f"{split}.txt and train.txt share {_images(len(shared))} (first: {shared[0]})")
    if not notes:
        return None
    return f"{listing.train.files.root}: " + "; ".join(notes) + ": a split that repeats training images is not held out"
