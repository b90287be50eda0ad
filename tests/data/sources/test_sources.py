"""load_source: synthetic, CIFAR via torchvision, image folders (plain and zipped), file lists."""

import pickle
import re
import time
import zipfile
from pathlib import Path

import pytest
import torch
from PIL import Image
from pydantic import ValidationError

from smcl_tune.config import DataConfig
from smcl_tune.data.pool import TensorPool
from smcl_tune.data.sources import load_source
from smcl_tune.errors import DataSourceError

CLASSES = {"dog": 2, "cat": 3, "ant": 2}  # sorted: ant=0, cat=1, dog=2


def colour(split: str, name: str, index: int) -> tuple[int, int, int]:
    """A distinct solid colour per image, so a decoded image shows which file it came from."""
    return (10 + 60 * list(CLASSES).index(name), 20 * index, 200 if split == "train" else 100)


def save_png(path: Path, rgb: tuple[int, int, int], size: tuple[int, int] = (8, 8)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, rgb).save(path)


def make_folder(root: Path) -> Path:
    for split in ("train", "test"):
        for name, count in CLASSES.items():
            for index in range(count):
                save_png(root / split / name / f"{index:04d}.png", colour(split, name, index))
    return root


def make_zips(root: Path, folder: Path) -> Path:
    root.mkdir()
    for split in ("train", "test"):
        with zipfile.ZipFile(root / f"{split}.zip", "w") as archive:
            archive.writestr(f"{split}/", "")
            for path in sorted((folder / split).rglob("*.png")):
                archive.write(path, path.relative_to(folder).as_posix())
    return root


@pytest.fixture
def folder(tmp_path):
    return make_folder(tmp_path / "folder")


def folder_config(root: Path, **extra) -> DataConfig:
    return DataConfig(source="image_folder", root=str(root), **extra)


def assert_folder_pools(source) -> None:
    assert source.class_names == ["ant", "cat", "dog"]
    assert source.val is None
    assert source.train.labels.tolist() == [0, 0, 1, 1, 1, 2, 2]
    images = source.train.load(torch.tensor([6, 2, 0]))
    assert images.shape == (3, 3, 8, 8) and images.dtype == torch.uint8
    expected = [colour("train", "dog", 1), colour("train", "cat", 0), colour("train", "ant", 0)]
    assert [tuple(image[:, 4, 4].tolist()) for image in images] == expected
    assert len(source.test) == 7 and tuple(source.test.load(torch.tensor([0]))[0, :, 0, 0].tolist()) == colour(
        "test", "ant", 0
    )


def test_image_folder_labels_follow_sorted_class_names(folder):
    assert_folder_pools(load_source(folder_config(folder)))


def test_hidden_files_beside_the_images_are_not_images_in_a_folder_or_a_zip(folder, tmp_path):
    # copied from a macOS disk: `._NAME` beside each image (not an image), and a hidden folder
    (folder / "test" / "cat" / "._0001.png").write_bytes(b"\x00\x05\x16\x07 AppleDouble, not a png")
    save_png(folder / "train" / "dog" / ".thumbnails" / "0000.png", (0, 0, 0))
    zipped = make_zips(tmp_path / "zipped", folder)  # its members: every *.png of the folder, hidden ones too
    with zipfile.ZipFile(zipped / "test.zip") as archive:
        assert "test/cat/._0001.png" in archive.namelist()
    for root in (folder, zipped):
        assert_folder_pools(load_source(folder_config(root)))  # 7 training and 7 test images, all readable


def test_image_folder_reads_zip_archives(folder, tmp_path):
    assert_folder_pools(load_source(folder_config(make_zips(tmp_path / "zipped", folder))))


def test_image_folder_resizes_to_image_size(folder, tmp_path):
    save_png(folder / "train" / "cat" / "big.png", (1, 2, 3), size=(20, 12))
    for root in (folder, make_zips(tmp_path / "zipped", folder)):
        source = load_source(folder_config(root, image_size=16))
        assert source.train.image_size == (16, 16)
        assert source.train.load(torch.arange(len(source.train))).shape == (8, 3, 16, 16)


def test_image_of_another_size_without_image_size_names_the_file(folder):
    save_png(folder / "train" / "dog" / "odd.png", (1, 2, 3), size=(9, 8))
    train = load_source(folder_config(folder)).train
    with pytest.raises(DataSourceError, match=r"odd.png.*data.image_size"):
        train.load(torch.arange(len(train)))


@pytest.mark.parametrize("zipped", [False, True])
def test_pool_pickles_and_loads_after_unpickling(folder, tmp_path, zipped):
    root = make_zips(tmp_path / "zipped", folder) if zipped else folder
    train = load_source(folder_config(root)).train
    before = train.load(torch.tensor([1, 4]))
    restored = pickle.loads(pickle.dumps(train))
    assert torch.equal(restored.load(torch.tensor([1, 4])), before)


@pytest.mark.parametrize("zipped", [False, True])
def test_unreadable_image_is_named_with_a_reason_a_user_can_read(folder, tmp_path, zipped):
    (folder / "train" / "cat" / "0001.png").write_bytes(b"not a png")
    root = make_zips(tmp_path / "zipped", folder) if zipped else folder
    train = load_source(folder_config(root)).train
    where = f"{root / 'train.zip'}:train/cat/0001.png" if zipped else str(folder / "train" / "cat" / "0001.png")
    reason = "cannot read the image (not an image format PIL knows, or damaged)"
    with pytest.raises(DataSourceError, match=re.escape(f"{where}: {reason}")) as refused:
        train.load(torch.tensor([3]))
    assert "BytesIO" not in str(refused.value)


def test_unreadable_first_image_fails_in_load_source(folder):
    (folder / "train" / "ant" / "0000.png").write_bytes(b"")
    with pytest.raises(DataSourceError, match=r"ant.0000.png"):
        load_source(folder_config(folder))


def test_missing_root_is_named(tmp_path):
    with pytest.raises(DataSourceError, match=re.escape(str(tmp_path / "absent"))):
        load_source(folder_config(tmp_path / "absent"))


def test_missing_test_split_is_named(folder):
    for path in sorted((folder / "test").rglob("*"), reverse=True):
        path.unlink() if path.is_file() else path.rmdir()
    (folder / "test").rmdir()
    with pytest.raises(DataSourceError, match=r"no test split.*test\.zip"):
        load_source(folder_config(folder))


def test_empty_class_folder_is_named(folder):
    (folder / "train" / "bee").mkdir()
    with pytest.raises(DataSourceError, match=re.escape(str(folder / "train" / "bee"))):
        load_source(folder_config(folder))


def test_split_without_class_folders_is_named(folder, tmp_path):
    empty = tmp_path / "empty"
    (empty / "train").mkdir(parents=True)
    (empty / "test").mkdir()
    with pytest.raises(DataSourceError, match=re.escape(str(empty / "train"))):
        load_source(folder_config(empty))


def test_differing_class_sets_are_reported(folder):
    save_png(folder / "test" / "bee" / "0000.png", (1, 2, 3))
    with pytest.raises(DataSourceError, match=r"only in test \['bee'\]") as error:
        load_source(folder_config(folder))
    assert str(folder) in str(error.value)


def test_zip_errors_name_the_archive(folder, tmp_path):
    zipped = make_zips(tmp_path / "zipped", folder)
    with zipfile.ZipFile(zipped / "train.zip", "a") as archive:
        archive.writestr("train/bee/", "")
    with pytest.raises(DataSourceError, match=r"train\.zip: train/bee/ holds no image"):
        load_source(folder_config(zipped))
    (zipped / "train.zip").write_bytes(b"garbage")
    with pytest.raises(DataSourceError, match=r"train\.zip: not a readable zip"):
        load_source(folder_config(zipped))


def test_tensor_pool_resizes_on_load():
    images = torch.randint(0, 256, (5, 3, 32, 32), dtype=torch.uint8)
    pool = TensorPool(images, torch.arange(5), size=16)
    loaded = pool.load(torch.tensor([3, 1]))
    assert pool.image_size == (16, 16) and loaded.shape == (2, 3, 16, 16) and loaded.dtype == torch.uint8
    assert torch.equal(TensorPool(images, torch.arange(5)).load(torch.tensor([3, 1])), images[[3, 1]])


def make_file_lists(root: Path, with_names: bool = False) -> Path:
    lines = {
        "train": [("a/0.png", 0), ("a/1.png", 0), ("b/my image.png", 1), ("c/0.png", 2)],
        "val": [("v/0.png", 1), ("v/1.png", 2)],
        "test": [("t/0.png", 0), ("t/1.png", 1), ("t/2.png", 2)],
    }
    for split, entries in lines.items():
        for position, (name, label) in enumerate(entries):
            save_png(root / name, (label * 50, position * 30, 7), size=(10 + position, 6))
        (root / f"{split}.txt").write_text("".join(f"{name} {label}\n" for name, label in entries) + "\n")
    if with_names:
        (root / "classes.txt").write_text("apple\nbanana\ncherry\n")
    return root


def list_config(root: Path, image_size: int | None = 12) -> DataConfig:
    return DataConfig(source="file_list", root=str(root), image_size=image_size)


def test_file_lists_give_train_val_and_test(tmp_path):
    source = load_source(list_config(make_file_lists(tmp_path)))
    assert source.class_names == ["class_0", "class_1", "class_2"]
    assert source.train.labels.tolist() == [0, 0, 1, 2]
    assert source.val is not None and source.val.labels.tolist() == [1, 2]
    assert source.test.labels.tolist() == [0, 1, 2]
    images = source.train.load(torch.tensor([2, 0]))
    assert images.shape == (2, 3, 12, 12) and tuple(images[0, :, 6, 6].tolist()) == (50, 60, 7)


def test_file_lists_take_class_names_from_classes_txt(tmp_path):
    assert load_source(list_config(make_file_lists(tmp_path, with_names=True))).class_names == [
        "apple",
        "banana",
        "cherry",
    ]


def test_file_lists_require_image_size(tmp_path):
    with pytest.raises(ValidationError, match="image_size: required for source 'file_list'"):
        list_config(make_file_lists(tmp_path), image_size=None)


def test_missing_list_file_is_named(tmp_path):
    (make_file_lists(tmp_path) / "val.txt").unlink()
    with pytest.raises(DataSourceError, match=re.escape(str(tmp_path / "val.txt"))):
        load_source(list_config(tmp_path))


def test_malformed_line_names_file_and_line_number(tmp_path):
    root = make_file_lists(tmp_path)
    (root / "train.txt").write_text("a/0.png 0\n\na/1.png zero\n")
    with pytest.raises(DataSourceError, match=r"train\.txt:3: expected"):
        load_source(list_config(root))


def test_label_out_of_range_names_file_and_line(tmp_path):
    root = make_file_lists(tmp_path)
    (root / "test.txt").write_text("t/0.png 0\nt/1.png 3\n")
    with pytest.raises(DataSourceError, match=r"test\.txt:2: label 3 is out of range 0\.\.2"):
        load_source(list_config(root))


def test_lists_that_repeat_an_image_or_share_one_with_training_get_a_note_at_the_check(tmp_path):
    from smcl_tune.data.source_shape import check_trial_data

    root = make_file_lists(tmp_path)
    assert check_trial_data(list_config(root))[0] is None  # held-out lists: nothing to say
    (root / "val.txt").write_text("v/0.png 1\na/1.png 0\n")  # a training image among the validation ones
    with (root / "train.txt").open("a") as lines:
        lines.write("./c/0.png 2\n")  # the same image twice, written two ways
    assert check_trial_data(list_config(root))[0] == (
        f"{root}: train.txt lists 1 image more than once (first: c/0.png); val.txt and train.txt share 1 image "
        "(first: a/1.png): a split that repeats training images is not held out"
    )


def test_a_label_past_the_classes_txt_names_that_file(tmp_path):
    root = make_file_lists(tmp_path, with_names=True)
    (root / "classes.txt").write_text("apple\nbanana\n")  # three classes are labelled
    message = re.escape(f"train.txt:4: label 2 is out of range 0..1 ({root / 'classes.txt'} names 2 classes)")
    with pytest.raises(DataSourceError, match=message):
        load_source(list_config(root))


def test_a_relative_list_folder_not_found_says_where_it_was_taken_from(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    message = re.escape(
        f"lists: list folder not found (a relative root is taken from the folder smcl-tune runs in, {tmp_path})"
    )
    with pytest.raises(DataSourceError, match=message):
        load_source(list_config(Path("lists")))


def test_missing_listed_image_is_named(tmp_path):
    root = make_file_lists(tmp_path)
    (root / "t" / "1.png").unlink()
    with pytest.raises(DataSourceError, match=re.escape(str(root / "t" / "1.png"))):
        load_source(list_config(root))


def test_cifar10_without_data_names_the_root(tmp_path):
    with pytest.raises(DataSourceError, match=rf"{re.escape(str(tmp_path))}.*cifar-10-batches-py.*data.download: true"):
        load_source(DataConfig(source="cifar10", root=str(tmp_path), download=False))


def test_synthetic_source_uses_n_max_as_pool_size():
    source = load_source(DataConfig(n_max=40, num_classes=4, subset_seed=3))
    assert torch.bincount(source.train.labels).tolist() == [40] * 4
    assert source.val is not None and len(source.test) == 400
    with pytest.raises(ValidationError, match=r"data.synthetic.image_size"):
        DataConfig(image_size=64)
    with pytest.raises(ValidationError, match="at most 100 classes"):
        DataConfig(num_classes=101)


def test_real_cifar10_jpeg_zips(cifar10_jpeg):
    start = time.perf_counter()
    source = load_source(folder_config(cifar10_jpeg))
    assert time.perf_counter() - start < 10
    assert len(source.train) == 50_000 and len(source.test) == 10_000
    assert torch.bincount(source.train.labels).tolist() == [5000] * 10
    assert source.class_names[0] == "airplane" and source.class_names[-1] == "truck"
    indices = torch.randperm(50_000, generator=torch.Generator().manual_seed(0))[:20]
    images = source.train.load(indices)
    assert images.shape == (20, 3, 32, 32) and images.dtype == torch.uint8
    assert images.float().std() > 10


def test_a_zip_bomb_member_is_refused_before_it_is_read(tmp_path, folder):
    zipped = make_zips(tmp_path / "zipped", folder)
    with zipfile.ZipFile(zipped / "train.zip", "a", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("train/ant/bomb.png", b"\0" * (65 * 2**20))  # 65 MiB of zeros, a few KB deflated
    assert (zipped / "train.zip").stat().st_size < 2**20
    source = load_source(folder_config(zipped))
    bomb = source.train.files.names.index("train/ant/bomb.png")
    with pytest.raises(DataSourceError, match=r"train\.zip:train/ant/bomb\.png: 65 MiB uncompressed"):
        source.train.load(torch.tensor([bomb]))


def test_a_corrupt_deflate_stream_is_the_sources_own_error_naming_the_file(tmp_path, folder):
    zipped = tmp_path / "deflated"
    zipped.mkdir()
    for split in ("train", "test"):
        with zipfile.ZipFile(zipped / f"{split}.zip", "w", compression=zipfile.ZIP_DEFLATED) as archive:
            for path in sorted((folder / split).rglob("*.png")):
                archive.write(path, path.relative_to(folder).as_posix())
    raw = bytearray((zipped / "train.zip").read_bytes())
    with zipfile.ZipFile(zipped / "train.zip") as archive:
        member = archive.infolist()[1]
    start = member.header_offset + 30 + len(member.filename) + len(member.extra)
    raw[start + 2 : start + 12] = b"\xff" * 10  # garble the compressed bytes of one image
    (zipped / "train.zip").write_bytes(bytes(raw))
    source = load_source(folder_config(zipped, image_size=8))
    with pytest.raises(DataSourceError, match=re.escape(f"train.zip:{member.filename}: cannot read the image")):
        source.train.load(torch.tensor([source.train.files.names.index(member.filename)]))


def test_every_source_a_config_can_name_has_a_reader_and_a_path_check():
    """A source added to DataConfig.source without its reader (or its check) would be refused
    by neither validation nor the registry until a trial started."""
    from typing import get_args

    from smcl_tune.data.source_shape import SHAPES
    from smcl_tune.data.sources import SOURCES

    names = set(get_args(DataConfig.model_fields["source"].annotation))
    assert set(SOURCES) == names
    assert set(SHAPES) == names


@pytest.mark.parametrize("zipped", [False, True])
def test_a_16_bit_greyscale_png_keeps_its_tones_not_white(folder, tmp_path, zipped):
    """PIL's convert("RGB") clipped a 16-bit PNG's values to 255: all but its darkest tones white."""
    import numpy as np

    ramp = np.linspace(0, 65535, 64, dtype=np.uint16).reshape(8, 8)
    Image.fromarray(ramp).save(folder / "train" / "ant" / "0000.png")
    assert Image.open(folder / "train" / "ant" / "0000.png").mode.startswith("I;16")
    root = make_zips(tmp_path / "zipped", folder) if zipped else folder
    image = load_source(folder_config(root)).train.load(torch.tensor([0]))[0]
    expected = torch.from_numpy(np.rint(ramp / 257).astype(np.uint8))
    assert torch.equal(image, expected.expand(3, 8, 8))
    assert (image == 255).float().mean() < 0.05  # it was 0.98 white


def test_first_images_of_two_sizes_name_both_files_width_by_height(folder):
    """The odd image may be either: the refusal named the test image, and wrote (height, width)."""
    save_png(folder / "train" / "ant" / "0000.png", (1, 2, 3), size=(12, 8))  # width 12, height 8
    with pytest.raises(DataSourceError) as refused:
        load_source(folder_config(folder))
    assert str(refused.value) == (
        f"{folder}: the first training image is 12x8 ({folder / 'train' / 'ant' / '0000.png'}), the first test "
        f"image 8x8 ({folder / 'test' / 'ant' / '0000.png'}); images must be of one size, or set data.image_size "
        "to resize them all"
    )


def test_a_class_name_given_twice_in_classes_txt_names_both_lines(tmp_path):
    root = make_file_lists(tmp_path, with_names=True)
    (root / "classes.txt").write_text("apple\nbanana\n\napple\n")
    with pytest.raises(DataSourceError) as refused:
        load_source(list_config(root))
    assert str(refused.value) == (
        f"{root / 'classes.txt'}:4: class name 'apple' is also on line 1; each class needs a name of its own"
    )


def test_a_class_without_training_images_is_named_by_its_name_too(tmp_path):
    root = make_file_lists(tmp_path, with_names=True)
    (root / "train.txt").write_text("a/0.png 0\nc/0.png 2\n")
    with pytest.raises(DataSourceError) as refused:
        load_source(list_config(root))
    assert str(refused.value) == f"{root / 'train.txt'}: classes without training images: 1 (banana)"


def test_a_linked_folder_inside_a_class_folder_is_read_and_a_link_loop_ends(folder, tmp_path):
    """Images kept on another disk and linked into a class folder were skipped without a word."""
    elsewhere = tmp_path / "elsewhere"
    save_png(elsewhere / "more.png", (9, 9, 9))
    (folder / "train" / "cat" / "linked").symlink_to(elsewhere, target_is_directory=True)
    (folder / "train" / "cat" / "loop").symlink_to(folder / "train" / "cat", target_is_directory=True)
    (folder / "train" / "cat" / "again").symlink_to(elsewhere, target_is_directory=True)  # one folder, read once
    train = load_source(folder_config(folder)).train
    assert train.files.names == [
        "train/ant/0000.png",
        "train/ant/0001.png",
        "train/cat/0000.png",
        "train/cat/0001.png",
        "train/cat/0002.png",
        "train/cat/again/more.png",
        "train/dog/0000.png",
        "train/dog/0001.png",
    ]


@pytest.mark.parametrize("target", ["split", "root"])
def test_a_link_in_a_class_folder_to_a_folder_above_it_is_refused(folder, target):
    """It would label every class's images as that class."""
    up = folder / "train" if target == "split" else folder
    (folder / "train" / "cat" / "all").symlink_to(up, target_is_directory=True)
    with pytest.raises(DataSourceError) as refused:
        load_source(folder_config(folder))
    above = "the split folder itself" if target == "split" else f"a folder above {folder / 'train'}"
    assert str(refused.value) == (
        f"{folder / 'train' / 'cat' / 'all'}: a link to {up}, {above}: every class's images would count as cat's"
    )


@pytest.mark.parametrize("link", ["another class's folder", "a test image"])
def test_a_link_that_reaches_an_image_listed_already_is_refused(folder, link):
    """It gave those images a second class, or put test images into training, without a word."""
    if link == "a test image":
        (folder / "train" / "cat" / "zz.png").symlink_to(folder / "test" / "cat" / "0001.png")
        first, second = (
            folder / "train" / "cat" / "zz.png",
            folder / "test" / "cat" / "0001.png",
        )  # train is listed first
    else:
        (folder / "train" / "cat" / "ants").symlink_to(folder / "train" / "ant", target_is_directory=True)
        first, second = folder / "train" / "ant" / "0000.png", folder / "train" / "cat" / "ants" / "0000.png"
    with pytest.raises(DataSourceError) as refused:
        load_source(folder_config(folder))
    assert str(refused.value) == (
        f"{second}: the same file as {first} (through a link); an image may be in one class of one split only"
    )


def test_a_folder_in_a_class_folder_that_cannot_be_listed_is_named(folder, monkeypatch):
    """os.walk skipped it without a word. (Its mode cannot refuse root, who runs CI: the listing is refused here.)"""
    import os

    locked = folder / "train" / "cat" / "locked"
    save_png(locked / "0.png", (1, 1, 1))
    scandir = os.scandir

    def refusing(path="."):
        if str(path) == str(locked):
            raise PermissionError(13, "Permission denied", str(path))
        return scandir(path)

    monkeypatch.setattr(os, "scandir", refusing)
    with pytest.raises(DataSourceError) as refused:
        load_source(folder_config(folder))
    assert str(refused.value) == f"{locked}: cannot list the folder (Permission denied)"


def test_list_files_saved_with_a_byte_order_mark_read_as_without(tmp_path):
    """It became part of the first class's name and the first image's path ('image file not found')."""
    root = make_file_lists(tmp_path, with_names=True)
    for name in ("classes.txt", "train.txt"):
        (root / name).write_bytes(b"\xef\xbb\xbf" + (root / name).read_bytes())
    source = load_source(list_config(root))
    assert source.class_names == ["apple", "banana", "cherry"]
    assert source.train.files.names[0] == "a/0.png"


def test_a_listed_folder_and_an_empty_image_say_what_they_are(tmp_path):
    root = make_file_lists(tmp_path)
    (root / "train.txt").write_text("a/0.png 0\na 0\nb/my image.png 1\nc/0.png 2\n")
    with pytest.raises(DataSourceError) as refused:
        load_source(list_config(root))
    assert str(refused.value) == (
        f"{root / 'a'}: a folder, not an image file (listed in {root / 'train.txt'}:2; 1 listed files missing)"
    )
    (root / "train.txt").write_text("a/0.png 0\nb/my image.png 1\nc/0.png 2\n")
    (root / "a" / "0.png").write_bytes(b"")
    with pytest.raises(
        DataSourceError, match=re.escape(f"{root / 'a' / '0.png'}: cannot read the image (an empty file)")
    ):
        load_source(list_config(root)).train.load(torch.tensor([0]))
