"""Fitting a text table to a terminal: leave out the least important columns until it fits."""

from __future__ import annotations

import pandas as pd

COLUMN_GAP = 2  # spaces between two columns of a text table


def column_widths(frame: pd.DataFrame) -> dict[str, int]:
    """Each column's width in characters: its heading or its longest cell."""
    return {c: max(len(c), *(len(v) for v in frame[c])) if len(frame) else len(c) for c in frame.columns}


def table_width(frame: pd.DataFrame) -> int:
    """Characters in the widest line of the table."""
    widths = column_widths(frame)
    return sum(widths.values()) + COLUMN_GAP * max(len(widths) - 1, 0)


def fit_to_width(frame: pd.DataFrame, width: int, drop_order: list[str]) -> tuple[pd.DataFrame, list[str]]:
    """`frame` less the first columns of `drop_order` it needs to lose to be at most `width`
    characters wide, and those columns' names; when even all of them do not suffice, they all go."""
    dropped = []
    for column in drop_order:
        if table_width(frame) <= width:
            break
        if column in frame.columns:
            frame = frame.drop(columns=[column])
            dropped.append(column)
    return frame, dropped
