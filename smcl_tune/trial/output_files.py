"""What a trial writes beside its checkpoint, each file whole (a temporary name, then a rename):
the result file, the per-class accuracy table and the confusion matrix at its end, and the mask
gallery's picture once the gallery's epoch has ended. The study's driver logs these files as they are.
"""

from __future__ import annotations

from pathlib import Path

from smcl_tune.atomic_write import write_bytes_atomically
from smcl_tune.figures.class_accuracy import trial_files
from smcl_tune.figures.mask_gallery import MaskGallery, gallery_png
from smcl_tune.results import GALLERY_FILE, TrialResult, write_result


def write_trial_files(result: TrialResult, folder: Path) -> None:
    """The result file and, for a trial that was tested, its CSV and confusion matrix."""
    write_result(result, folder)
    for name, content in trial_files(result).items():
        write_bytes_atomically(folder / name, content.encode() if isinstance(content, str) else content)


def gallery_picture(
    gallery: MaskGallery | None, epochs_done: int, class_names: list[str], mask_source: str
) -> bytes | None:
    """The mask gallery once its epoch has ended (after `epochs_done` epochs), as PNG bytes; None
    before, and for methods that do not mask."""
    if gallery is None or epochs_done <= gallery.epoch:
        return None
    return gallery_png(gallery, class_names, mask_source)


def write_gallery(
    folder: Path, gallery: MaskGallery | None, epochs_done: int, class_names: list[str], mask_source: str
) -> None:
    """The mask gallery's picture in `folder`, written once, after the gallery's epoch has ended."""
    path = folder / GALLERY_FILE
    if path.exists():
        return
    picture = gallery_picture(gallery, epochs_done, class_names, mask_source)
    if picture is not None:
        write_bytes_atomically(path, picture)
