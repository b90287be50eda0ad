"""What a trial writes beside its checkpoint, each file whole (a temporary name, then a rename):
the result file, the per-class accuracy table and the confusion matrix at its end, and the mask
gallery's picture once the gallery's epoch has ended. The study's driver logs these files as they are.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from smcl_tune.atomic_write import write_bytes_atomically
from smcl_tune.figures.class_accuracy import trial_files
from smcl_tune.figures.mask_gallery import gallery_png
from smcl_tune.results import GALLERY_FILE, TrialResult, write_result

if TYPE_CHECKING:
    from smcl_tune.trial.run import Trial


def write_trial_files(result: TrialResult, folder: Path) -> None:
    """The result file and, for a trial that was tested, its CSV and confusion matrix."""
    write_result(result, folder)
    for name, content in trial_files(result).items():
        write_bytes_atomically(folder / name, content.encode() if isinstance(content, str) else content)


def gallery_picture(trial: Trial) -> bytes | None:
    """The trial's mask gallery once its epoch has ended, as PNG bytes; None before, and for
    methods that do not mask."""
    gallery = trial.gallery
    if gallery is None or trial.epoch <= gallery.epoch:
        return None
    return gallery_png(gallery, trial.data.class_names, trial.settings.mask_source)


def write_gallery(trial: Trial, folder: Path) -> None:
    """The mask gallery's picture in `folder`, written once, after the gallery's epoch has ended."""
    path = folder / GALLERY_FILE
    if path.exists():
        return
    picture = gallery_picture(trial)
    if picture is not None:
        write_bytes_atomically(path, picture)
