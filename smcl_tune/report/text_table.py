"""The leaderboard as plain text: aligned columns under a dashed rule, for a terminal or a file."""

from __future__ import annotations

import textwrap

import pandas as pd

from smcl_tune.report.aligned_columns import aligned_columns
from smcl_tune.report.captions import BACKGROUND_HEADING, group_lines, title_line
from smcl_tune.report.display_frames import HEADINGS, LEFT_ALIGNED, display_frame, sections_after_trials
from smcl_tune.report.leaderboard import Leaderboard
from smcl_tune.report.table_width import fit_to_width, table_width

SEEDS_DROP_ORDER = ["medium", "many", "balanced", "seeds"]  # top-1 and few, the long-tailed pair, stay
FULL_TABLE_HINT = "`smcl-tune leaderboard STUDY --format csv`, or a pipe or a file, keeps every column"


def text_table(frame: pd.DataFrame) -> str:
    """A frame of display strings (display_frames.py) as aligned text."""
    return aligned_columns(list(frame.columns), frame.values.tolist(), LEFT_ALIGNED)


def _drop_order(board: Leaderboard) -> list[str]:
    """The trials' table's columns a narrow terminal loses first: timings and last-epoch figures,
    then the searched parameters past the first three, epochs, the first three searched; the
    background head share, the mechanism SMCL claims; then medium and balanced accuracy and the
    state (a failed trial's reason can be long), so that top-1, few and many stay with the objective
    the rows are ranked by, which goes last."""
    searched = list(board.searched)
    return [
        "wall s",
        "last few",
        "last top-1",
        *reversed(searched[3:]),
        "epochs",
        *reversed(searched[:3]),
        BACKGROUND_HEADING,
        HEADINGS["test_medium"],
        HEADINGS["test_balanced_accuracy"],
        "state",
        HEADINGS["test_many"],
        "val objective",
    ]


def format_text(board: Leaderboard, reference: pd.DataFrame | None = None, width: int | None = None) -> str:
    """The leaderboard as text; with `width` (a terminal's), the trials' table leaves out its least
    important columns until it fits, and a line under it names them."""
    trials = display_frame(board)
    left_out = []
    if width is not None:
        trials, dropped = fit_to_width(trials, width, _drop_order(board))
        if dropped:
            left_out = [f"left out to fit {width} columns: {', '.join(dropped)}", f"({FULL_TABLE_HINT})"]
    captions = [title_line(board), *group_lines(board, background=BACKGROUND_HEADING in trials.columns)]
    if width is not None:  # a terminal: the captions wrap at its width, as the table fits it
        captions = [textwrap.fill(line, width, subsequent_indent="  ") for line in captions]
    parts = ["\n".join([*captions, "", text_table(trials), *left_out])]
    for title, frame in sections_after_trials(board, reference):
        lines = []
        if width is not None and "seeds" in frame.columns:  # the tables over seeds fit as the trials' does
            frame, dropped = fit_to_width(frame, width, SEEDS_DROP_ORDER)
            if dropped:
                lines = [f"left out to fit {width} columns: {', '.join(dropped)}", f"({FULL_TABLE_HINT})"]
        if width is not None and "comparable" in frame.columns:
            frame, lines = _fit_published(frame, width)
        if width is not None:  # a section's title wraps as the captions do
            title = textwrap.fill(title, width, subsequent_indent="  ")
        parts.append("\n".join([f"{title}\n", text_table(frame), *lines]))
    return "\n\n".join(parts)


def _fit_published(frame: pd.DataFrame, width: int) -> tuple[pd.DataFrame, list[str]]:
    """Published results on a terminal: where the table is wider, each row's reasons for not being
    comparable become a numbered note under it (rows with the same reasons share one), and the
    sources are left out if it is still too wide."""
    if table_width(frame) <= width:
        return frame, []
    prefix = "not comparable: "
    reasons = list(dict.fromkeys(value.removeprefix(prefix) for value in frame["comparable"] if value != "yes"))
    numbered = {reason: index for index, reason in enumerate(reasons, start=1)}
    frame = frame.assign(
        comparable=[
            "yes" if value == "yes" else f"no ({numbered[value.removeprefix(prefix)]})" for value in frame["comparable"]
        ]
    )
    frame, dropped = fit_to_width(frame, width, ["source"])
    lines = [
        textwrap.fill(f"({index}) {reason}", width, subsequent_indent="    ") for reason, index in numbered.items()
    ]
    if dropped:
        lines += [f"left out to fit {width} columns: {', '.join(dropped)}", f"({FULL_TABLE_HINT})"]
    return frame, lines
