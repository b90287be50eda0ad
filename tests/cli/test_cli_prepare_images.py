"""An image folder before the study runs: `smcl-tune prepare` reads every image, so a file a trial
could not use is named (it said "its data is in place" for files it never opened); `validate` says
which of a folder and a zip of one split it reads."""

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import yaml
from PIL import Image, PngImagePlugin

from tests.fixtures.terminal import read_until_closed


def _folder(root: Path) -> Path:
    for split in ("train", "test"):
        for name, count in {"ant": 12, "bee": 6}.items():
            for index in range(count):
                path = root / split / name / f"{index:04d}.png"
                path.parent.mkdir(parents=True, exist_ok=True)
                Image.new("RGB", (8, 8), (40 * index % 256, 90, 200)).save(path)
    return root


def _study(folder: Path, root: Path) -> Path:
    trial = {
        "data": {"source": "image_folder", "root": str(root), "n_max": 10, "imbalance_factor": 2, "val_per_class": 1},
        "model": {"architecture": "tiny_cnn"},
        "method": {"name": "ce"},
        "training": {"epochs": 1, "device": "cpu"},
    }
    study = {"name": "folder", "trial": trial, "num_trials": 0, "baselines": [{"name": "ce"}]}
    path = folder / "folder.yaml"
    path.write_text(yaml.safe_dump(study))
    return path


def _prepare(path: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "smcl_tune.cli", "prepare", str(path)], cwd=path.parent, capture_output=True, text=True
    )


def test_prepare_reads_every_image_of_a_folder_and_says_how_many(tmp_path):
    root = _folder(tmp_path / "images")
    done = _prepare(_study(tmp_path, root))
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        f"image_folder: 36 images in {root}, each read",
        "study 'folder': its data is in place",
    ]
    assert f"reading the images of {root}: 36 of 36 images" in done.stderr


@pytest.mark.parametrize("zipped", [False, True])
def test_prepare_names_images_a_trial_could_not_use_in_one_line(tmp_path, zipped):
    root = _folder(tmp_path / "images")
    cut = root / "train" / "ant" / "0003.png"
    cut.write_bytes(cut.read_bytes()[:-30])  # cut short: its header reads, its pixels do not
    (root / "train" / "bee" / "0001.png").write_text("not an image")
    Image.new("RGB", (9, 8)).save(root / "test" / "bee" / "0002.png")  # another size, without data.image_size
    if zipped:
        zips = tmp_path / "zipped"
        zips.mkdir()
        for split in ("train", "test"):
            with zipfile.ZipFile(zips / f"{split}.zip", "w") as archive:
                for path in sorted((root / split).rglob("*.png")):
                    archive.write(path, path.relative_to(root).as_posix())
        root = zips
    else:
        (root / "train" / "bee" / "0005.png").unlink()
        (root / "train" / "bee" / "0005.png").symlink_to(root / "gone.png")  # a broken link
    done = _prepare(_study(tmp_path, root))
    assert done.returncode == 2, done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("smcl-tune:")]
    assert len(errors) == 1 and "Traceback" not in done.stderr
    where = (lambda name: f"{root / name.split('/')[0]}.zip:{name}") if zipped else (lambda name: str(root / name))
    failed = 4 if not zipped else 3  # the broken link is not a file a zip can hold
    assert errors[0].startswith(
        f"smcl-tune: {tmp_path / 'folder.yaml'}: trial.data.root: {failed} of 36 images cannot be used: "
        f"{where('train/ant/0003.png')}: cannot read the image ("
    )
    assert (
        f"{where('train/bee/0001.png')}: cannot read the image (not an image format PIL knows, or damaged)" in errors[0]
    )
    if zipped:
        assert f"{where('test/bee/0002.png')}: image is 9x8 but the pool's images are 8x8" in errors[0]
    else:
        assert f"{where('train/bee/0005.png')}: image file not found" in errors[0]
        assert errors[0].endswith("; and 1 more")
    assert "its data is in place" not in done.stdout


def test_validate_notes_a_split_there_as_a_folder_and_as_a_zip_and_reads_the_folder(tmp_path):
    """Unzipping train.zip beside itself leaves both: the folder was read without a word."""
    root = _folder(tmp_path / "images")
    for split in ("train", "test"):
        with zipfile.ZipFile(root / f"{split}.zip", "w") as archive:
            archive.writestr(f"{split}/ant/0000.png", b"")
    done = subprocess.run(
        [sys.executable, "-m", "smcl_tune.cli", "validate", str(_study(tmp_path, root))],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    note = f"# {root}: holds train/ and test/ and train.zip and test.zip: the folders are read, the archives are not"
    assert note in done.stdout.splitlines()
    assert _prepare(_study(tmp_path, root)).returncode == 0  # the archives' empty member is never read


def test_an_image_pil_refuses_with_a_value_error_is_one_line_too(tmp_path):
    """A PNG whose text chunk unpacks past PIL's limit: PIL raises ValueError, which was a traceback."""
    root = _folder(tmp_path / "images")
    text = PngImagePlugin.PngInfo()
    text.add_text("comment", "x" * (2 << 20), zip=True)  # 2 MiB, 2 KiB packed
    Image.new("RGB", (8, 8)).save(root / "test" / "ant" / "0004.png", pnginfo=text)
    done = _prepare(_study(tmp_path, root))
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr[-2000:]
    assert done.stderr.splitlines()[-1].endswith(
        f"1 of 36 images cannot be used: {root / 'test' / 'ant' / '0004.png'}: cannot read the image "
        "(Decompressed data too large for PngImagePlugin.MAX_TEXT_CHUNK)"
    )


def test_the_progress_bar_fits_a_narrow_terminal(tmp_path):
    """A line wider than the terminal wraps, and `\\r` then redraws only its last part: a stack of half-lines."""
    import fcntl
    import os
    import pty
    import struct
    import termios

    path = _study(tmp_path, _folder(tmp_path / "a-folder-with-a-long-name-to-make-the-progress-line-long"))
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 40, 0, 0))  # 24 rows, 40 columns
    env = {key: value for key, value in os.environ.items() if key not in ("COLUMNS", "LINES")}
    process = subprocess.Popen(
        [sys.executable, "-m", "smcl_tune.cli", "prepare", str(path)],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=follower,
        env=env,
    )
    os.close(follower)
    written = read_until_closed(leader)
    assert process.wait(timeout=120) == 0
    drawn = [part.removesuffix("\x1b[K") for part in written.decode().split("\r") if part.strip()]
    assert drawn and drawn[0].startswith("[") and all(len(part) < 40 for part in drawn), drawn
