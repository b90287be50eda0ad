"""The data stage of `smcl-tune run` and `smcl-tune prepare`: each condition's CIFAR data fetched
once, in the driver, before Ray starts, with its progress shown; a fetch that fails is one line."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import TextIO

PLAIN_EVERY_S = 5.0  # a line this often when the output is not a terminal
BAR_WIDTH = 30
MIB = 1 << 20


class FetchProgress:
    """A bar redrawn in place on a terminal; elsewhere (a log, a pipe) a line every few seconds.
    `unit`: MiB (amounts in bytes), or a count's name (images)."""

    def __init__(self, what: str, stream: TextIO, unit: str = "MiB") -> None:
        self.what = what
        self.unit = unit
        self.stream = stream
        self.terminal = stream.isatty()
        self.started = time.monotonic()
        self.shown_at = 0.0
        self.done = 0

    def __call__(self, done: int, total: int | None) -> None:
        self.done = done
        now = time.monotonic()
        if self.terminal or now - self.shown_at >= PLAIN_EVERY_S or done == total:
            self.shown_at = now
            self._show(done, total, now - self.started)

    def _amount(self, amount: float) -> str:
        return f"{amount / MIB:.1f}" if self.unit == "MiB" else f"{amount:,.0f}"

    def _show(self, done: int, total: int | None, elapsed: float) -> None:
        speed = done / elapsed if elapsed > 0 else 0.0
        text = f"{self.what}: {self._amount(done)}"
        if total:
            left = (total - done) / speed if speed > 0 else float("inf")
            text += f" of {self._amount(total)} {self.unit}, {self._amount(speed)} {self.unit}/s, {left:.0f} s left"
            if self.terminal:
                filled = int(BAR_WIDTH * done / total)
                text = f"[{'#' * filled}{'.' * (BAR_WIDTH - filled)}] {text}"
        else:
            text += f" {self.unit}, {self._amount(speed)} {self.unit}/s"
        if self.terminal:  # within the terminal's width: a wrapped line would not be redrawn in place
            self.stream.write(f"\r{text[: self._columns() - 1]}\033[K")
        else:
            self.stream.write(f"{text}\n")
        self.stream.flush()

    def _columns(self) -> int:
        try:
            return os.get_terminal_size(self.stream.fileno()).columns
        except (OSError, ValueError, AttributeError):
            return 80

    def finish(self) -> None:
        if self.terminal and self.done:
            self.stream.write("\n")
            self.stream.flush()


def searches_the_source(study) -> bool:
    """Whether the study searches where its data comes from: then each trial checks its own."""
    return any(path in ("data.root", "data.source") for path in study.config.search)


def fetched_datasets(study, fetch_all: bool) -> list[tuple[str, Path, str | None]]:
    """(dataset, root, mirror) of each CIFAR dataset the study's conditions read, once each: those
    with data.download, or all of them (`prepare`)."""
    if searches_the_source(study):
        return []  # a searched source is checked by each trial
    found: list[tuple[str, Path, str | None]] = []
    for condition in study.conditions:
        data = study.trial_config(condition.overrides).data
        if data.source in ("cifar10", "cifar100") and (data.download or fetch_all):
            entry = (data.source, Path(data.root or "").resolve(), data.mirror)
            if entry not in found:
                found.append(entry)
    return found


def prepare_data(study, fetch_all: bool = False, stream: TextIO | None = None) -> list[str]:
    """Fetch what the study's CIFAR conditions need; a line for each dataset."""
    from smcl_tune.data.cifar_files import CIFAR_ARCHIVES
    from smcl_tune.data.fetch import fetch_cifar

    stream = stream or sys.stderr
    lines = []
    for dataset, root, mirror in fetched_datasets(study, fetch_all):
        archive = CIFAR_ARCHIVES[dataset]
        if archive.whole(root):  # each file CIFAR's own: a copy cut short or other data is fetched again
            lines.append(f"{dataset}: in {root / archive.folder}, checked")
            continue
        print(f"fetching {dataset} ({archive.size / MIB:.0f} MiB) from {archive.url(mirror)} into {root}", file=stream)
        progress = FetchProgress(dataset, stream)
        try:
            fetched = fetch_cifar(dataset, root, mirror, progress)
        finally:
            progress.finish()
        verb = "fetched and checked" if fetched else "fetched by another process"
        lines.append(f"{dataset}: {verb}, in {root / archive.folder}")
    return lines


def checked_images(study, stream: TextIO | None = None) -> list[str]:
    """Decode every image of each image-folder or file-list source the study's conditions read, once
    each (`prepare`), with its progress shown; a line for each. A file that cannot be used is a
    ConfigError naming the field and the files."""
    from smcl_tune.data.image_check import check_images, refusal
    from smcl_tune.errors import ConfigError

    if searches_the_source(study):
        return []  # a searched source is checked by each trial
    stream = stream or sys.stderr
    lines: list[str] = []
    checked: list[tuple[str, Path, int | None]] = []
    for condition in study.conditions:
        data = study.trial_config(condition.overrides).data
        entry = (data.source, Path(data.root or "").resolve(), data.image_size)
        if data.source not in ("image_folder", "file_list") or entry in checked:
            continue
        checked.append(entry)
        progress = FetchProgress(f"reading the images of {entry[1]}", stream, unit="images")
        try:
            check = check_images(data, progress)
        finally:
            progress.finish()
        if check.failed:
            in_condition = f" (condition {condition.label})" if condition.label else ""
            raise ConfigError(f"{study.source}: trial.data.root{in_condition}: {refusal(check)}")
        lines.append(f"{data.source}: {check.images:,} images in {entry[1]}, each read")
    return lines


def check_job_data(study) -> None:
    """Under a Ray job, refuse a CIFAR dataset still to fetch into Ray's session folder (a relative
    data.root is taken from the job's working folder there): Ray deletes it after the job, every job
    would fetch it again, and the other nodes' trials would each fetch their own."""
    from smcl_tune.data.cifar_files import CIFAR_ARCHIVES
    from smcl_tune.errors import ConfigError
    from smcl_tune.study.job_storage import ray_job_id, ray_session_folder

    job = ray_job_id()
    if job is None:
        return
    where = f"{study.source}: " if study.source else ""
    for dataset, root, _ in fetched_datasets(study, fetch_all=False):
        session = ray_session_folder(root)
        if session is not None and not CIFAR_ARCHIVES[dataset].whole(root):
            raise ConfigError(
                f"{where}trial.data.root: {dataset} would be fetched into {root}, inside Ray's session folder "
                f"{session}, which Ray deletes after job {job} (and every job would fetch it again); set it to an "
                "absolute path on a folder every node shares (e.g. /mnt/shared/data) and fetch it there once with "
                "smcl-tune prepare"
            )


def checked_data(data, where: str, prefix: str = "", condition: str = "") -> list[str]:
    """`check_trial_data` of a trial's data config: its notes (on the source, then on the subset's
    counts, which name the condition); its refusal naming the file (`where`) and the field,
    `data.root` for a path, `data` for counts (prefix: `trial.` in a study file)."""
    from smcl_tune.data.source_shape import check_trial_data
    from smcl_tune.errors import ConfigError, DataCountError, DataSourceError

    in_condition = f" (condition {condition})" if condition else ""
    try:
        source_note, counts_note = check_trial_data(data)
    except DataSourceError as error:
        field = f"{prefix}data" if isinstance(error, DataCountError) else f"{prefix}data.root"
        raise ConfigError(f"{where}: {field}{in_condition}: {error}") from None
    if counts_note and condition:
        counts_note = f"condition {condition}: {counts_note}"
    return [note for note in (source_note, counts_note) if note]
