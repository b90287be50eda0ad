"""The leaderboard as Markdown: a heading, the shot groups as a list, and pipe tables.

The pipe table is written by hand (9 lines): DataFrame.to_markdown would save 5 of them, but it
needs tabulate (one more dependency), pads every cell and changes the text the command writes.
"""

from __future__ import annotations

import pandas as pd

from smcl_tune.report.captions import group_lines, title_line
from smcl_tune.report.display_frames import LEFT_ALIGNED, display_frame, sections_after_trials
from smcl_tune.report.leaderboard import Leaderboard


def markdown_table(frame: pd.DataFrame) -> str:
    columns = list(frame.columns)
    escape = lambda text: str(text).replace("|", "\\|")  # noqa: E731
    out = [
        "| " + " | ".join(columns) + " |",
        "|" + "|".join("---" if c in LEFT_ALIGNED else "---:" for c in columns) + "|",
    ]
    out += ["| " + " | ".join(escape(row[c]) for c in columns) + " |" for row in frame.to_dict("records")]
    return "\n".join(out)


def format_markdown(board: Leaderboard, reference: pd.DataFrame | None = None) -> str:
    lines = [f"## {title_line(board)}", "", *(f"- {line}" for line in group_lines(board))]
    parts = ["\n".join([*lines, "", markdown_table(display_frame(board))])]
    parts += [f"### {title}\n\n{markdown_table(frame)}" for title, frame in sections_after_trials(board, reference)]
    return "\n\n".join(parts) + "\n"
