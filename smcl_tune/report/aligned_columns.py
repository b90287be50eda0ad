"""Plain-text tables: columns as wide as their widest cell, under a dashed rule (no pandas, so a
command that prints one starts fast)."""

from __future__ import annotations

from collections.abc import Collection, Sequence

COLUMN_GAP = 2  # spaces between two columns


def aligned_columns(header: Sequence[str], rows: Sequence[Sequence[str]], left: Collection[str] = ()) -> str:
    """`rows` of cells under `header`; the columns named in `left` are aligned left, the others right."""
    widths = [max([len(name), *(len(row[index]) for row in rows)]) for index, name in enumerate(header)]

    def line(cells: Sequence[str]) -> str:
        aligned = [
            cell.ljust(width) if name in left else cell.rjust(width) for name, cell, width in zip(header, cells, widths)
        ]
        return (" " * COLUMN_GAP).join(aligned).rstrip()

    rule = (" " * COLUMN_GAP).join("-" * width for width in widths)
    return "\n".join([line(header), rule, *(line(row) for row in rows)])
