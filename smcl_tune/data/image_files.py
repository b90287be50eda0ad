"""Image files in a folder or a zip archive, opened one at a time: what a pool decodes and what a
check before the start reads the header of. Without torch, so that `validate` and the study driver
check an image folder or a file list without loading it."""

from __future__ import annotations

import io
import os
import zipfile
import zlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

from smcl_tune.errors import DataSourceError

if TYPE_CHECKING:
    from PIL import Image

MAX_IMAGE_FILE_BYTES = 64 * 2**20  # one image file, uncompressed: a zip member above this is refused
MAX_IMAGE_PIXELS = 50_000_000  # one decoded image (about 150 MB as uint8 RGB)


class ImageFiles:
    """`names`: paths relative to `root` (a folder) or member names of the zip archive `root`;
    `archive`: that archive already open (its index is read once). Pickles without its open zip
    handle."""

    def __init__(self, root: str | Path, names: list[str], archive: zipfile.ZipFile | None = None) -> None:
        if not names:
            raise DataSourceError(f"{root}: no images")
        self.root = Path(root)
        self.is_zip = self.root.is_file()
        self.names = names
        self._archive = archive
        self._archive_pid = os.getpid() if archive is not None else None

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_archive"] = None
        state["_archive_pid"] = None
        return state

    def describe(self, index: int) -> str:
        """The file of image `index`, as a user would look for it."""
        return f"{self.root}:{self.names[index]}" if self.is_zip else str(self.root / self.names[index])

    def header_size(self, index: int) -> tuple[int, int]:
        """(height, width) of image `index`, from its header alone."""
        width, height = self.open(index, decode=False).size
        return height, width

    def _zip(self) -> zipfile.ZipFile:
        # A handle inherited through fork shares its file offset with the parent: reopen per process.
        if self._archive is None or self._archive_pid != os.getpid():
            self._archive = zipfile.ZipFile(self.root)
            self._archive_pid = os.getpid()
        return self._archive

    def _read_member(self, index: int) -> bytes:
        archive = self._zip()
        size = archive.getinfo(self.names[index]).file_size  # a member never yields more than it declares
        if size > MAX_IMAGE_FILE_BYTES:
            raise DataSourceError(
                f"{self.describe(index)}: {size / 2**20:.0f} MiB uncompressed, more than an image file may be "
                f"({MAX_IMAGE_FILE_BYTES / 2**20:.0f} MiB)"
            )
        return archive.read(self.names[index])

    def _is_empty(self, index: int) -> bool:
        if self.is_zip:
            return self._zip().getinfo(self.names[index]).file_size == 0
        return (self.root / self.names[index]).stat().st_size == 0

    def open(self, index: int, decode: bool | str = True, expected_size: tuple[int, int] | None = None) -> Image.Image:
        """Image `index`, decoded or (`decode=False`) its header read. `expected_size`: (height,
        width) its header must have, checked before it is decoded."""
        from PIL import Image  # here: `validate` of a synthetic or CIFAR study never opens an image

        try:
            if self.is_zip:
                image = Image.open(io.BytesIO(self._read_member(index)))
            else:
                image = Image.open(self.root / self.names[index])
            if image.size[0] * image.size[1] > MAX_IMAGE_PIXELS:
                raise DataSourceError(
                    f"{self.describe(index)}: {image.size[0]}x{image.size[1]} pixels, more than an image may have "
                    f"({MAX_IMAGE_PIXELS:,})"
                )
            if expected_size is not None and image.size != (expected_size[1], expected_size[0]):
                raise DataSourceError(
                    f"{self.describe(index)}: image is {image.size[0]}x{image.size[1]} but the pool's images are "
                    f"{expected_size[1]}x{expected_size[0]}; set data.image_size to resize all images"
                )
            if decode == "draft":  # a JPEG decodes at 1/8 scale, every byte still read: a file cut short fails
                image.draft("RGB", (1, 1))
            if decode:
                image.load()
            return image
        except DataSourceError:  # ours, above (a ValueError too): already worded
            raise
        except FileNotFoundError:
            raise DataSourceError(f"{self.describe(index)}: image file not found") from None
        except Image.UnidentifiedImageError:  # PIL's text names a zip member's buffer as <_io.BytesIO object at 0x...>
            why = "an empty file" if self._is_empty(index) else "not an image format PIL knows, or damaged"
            raise DataSourceError(f"{self.describe(index)}: cannot read the image ({why})") from None
        # ValueError, SyntaxError: PIL's words for a damaged header or chunk (a PNG text chunk too large)
        except (
            OSError,
            KeyError,
            EOFError,
            ValueError,
            SyntaxError,
            zlib.error,
            zipfile.BadZipFile,
            Image.DecompressionBombError,
        ) as error:
            raise DataSourceError(f"{self.describe(index)}: cannot read the image ({error})") from None
