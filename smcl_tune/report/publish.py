"""The leaderboard a run leaves behind: built from the store, its CSV and HTML logged to the study's run."""

from __future__ import annotations

import tempfile
from pathlib import Path

from smcl_tune.errors import EmptyStudy
from smcl_tune.report.csv_table import format_csv
from smcl_tune.report.html import format_html
from smcl_tune.report.leaderboard import Leaderboard, load_leaderboard
from smcl_tune.tracking.writer import log_report_files


def publish_leaderboard(tracking_uri: str, study: str) -> Leaderboard | None:
    """The study's leaderboard, also logged as `leaderboard/STUDY.csv` and `.html`; None before any trial."""
    try:
        board = load_leaderboard(tracking_uri, study)
    except EmptyStudy:
        return None
    with tempfile.TemporaryDirectory() as folder:
        files = [Path(folder) / f"{study}.csv", Path(folder) / f"{study}.html"]
        files[0].write_text(format_csv(board))
        files[1].write_text(format_html(board))
        log_report_files(tracking_uri, study, files)
    return board
