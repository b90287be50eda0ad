"""The leaderboard a run leaves behind: built from the store, its CSV and HTML logged to the study's run."""

from __future__ import annotations

import tempfile
from pathlib import Path

from smcl_tune.atomic_write import StorageFull, is_storage_full, storage_full_message
from smcl_tune.errors import EmptyStudy
from smcl_tune.report.csv_table import format_csv
from smcl_tune.report.html import format_html
from smcl_tune.report.leaderboard import Leaderboard, load_leaderboard
from smcl_tune.tracking.writer import log_report_files


def publish_leaderboard(tracking_uri: str, study: str, artifact_root: Path | None = None) -> Leaderboard | None:
    """The study's leaderboard, also logged as `leaderboard/STUDY.csv` and `.html`; None before any trial.
    A full storage is StorageFull, naming `artifact_root` (where a local store keeps its files, else
    the working folder) and the size of the two files: the same command logs them again."""
    try:
        board = load_leaderboard(tracking_uri, study)
    except EmptyStudy:
        return None
    with tempfile.TemporaryDirectory() as folder:
        files = [Path(folder) / f"{study}.csv", Path(folder) / f"{study}.html"]
        files[0].write_text(format_csv(board))
        files[1].write_text(format_html(board))
        try:
            log_report_files(tracking_uri, study, files)
        except Exception as error:
            if not is_storage_full(error):
                raise
            needed = sum(file.stat().st_size for file in files)
            where = artifact_root or Path.cwd()
            raise StorageFull(storage_full_message(where, needed, "the leaderboard's CSV and HTML")) from None
    return board
