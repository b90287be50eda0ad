"""The HTML study report: one self-contained file with the tables and the plotly figures."""

from __future__ import annotations

import base64
import html

import pandas as pd
import plotly.graph_objects as go
import plotly.io as pio

from smcl_tune.report.captions import group_lines, title_line
from smcl_tune.report.comparison import (
    compared,
    comparison_frame,
    comparison_rule,
    different_data_note,
    per_factor_words,
)
from smcl_tune.report.display_frames import display_frame, sections_after_trials
from smcl_tune.report.leaderboard import Leaderboard
from smcl_tune.report.plots import (
    curves_figures,
    hyperparameter_figures,
    importance_figures,
    long_tail_figures,
    many_few_figure,
)

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; font-size: 0.85em; margin-bottom: 2em; }
table.dataframe { display: block; max-width: 100%; overflow-x: auto; }  /* a wide table scrolls, not cut */
th, td { border-bottom: 1px solid #ddd; padding: 0.25em 0.6em; text-align: right; }
th { background: #f3f3f3; }
td:nth-child(2), td:nth-child(3), th:nth-child(2), th:nth-child(3) { text-align: left; }
.note { color: #666; font-size: 0.9em; }
.figure { margin-bottom: 1.5em; }
"""


def _figure_html(figure: go.Figure, include_js: bool) -> str:
    figure.update_layout(height=420, margin={"l": 60, "r": 20, "t": 50, "b": 50})
    body = pio.to_html(figure, full_html=False, include_plotlyjs="inline" if include_js else False)
    return f'<div class="figure">{body}</div>'


def _page(title: str, body: list[str]) -> str:
    head = (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head><body>"
    )
    return "\n".join([head, *body, "</body></html>"])


def comparison_html(boards: list[Leaderboard]) -> str:
    """Several studies side by side: the best trial of each and the differences to the first."""
    groups = compared(boards)
    table = comparison_frame(groups).to_html(index=False, border=0, na_rep="")
    names = ", ".join(board.study for board in boards)
    return _page(
        f"{names}: smcl-tune comparison",
        [
            f"<h1>{html.escape(names)}</h1>",
            f"<p>Best finished trial of each study{per_factor_words(groups)} (test metrics of "
            f"{html.escape(comparison_rule(boards))}, %), then each study minus the first, per shot group.</p>",
            table,
            *(f'<p class="note">{html.escape(note)}</p>' for note in [different_data_note(groups)] if note),
        ],
    )


def format_html(board: Leaderboard, reference: pd.DataFrame | None = None) -> str:
    """The whole report as one HTML page; plotly.js is inlined once, nothing is fetched."""
    figures: list[go.Figure] = [
        figure for figure in (many_few_figure(board), *hyperparameter_figures(board)) if figure is not None
    ]
    importances, notes = importance_figures(board)
    figures += importances
    figures += curves_figures(board)
    figures += long_tail_figures(board)
    table = display_frame(board).to_html(index=False, border=0, classes="leaderboard", na_rep="")
    sections = []
    for title, frame in sections_after_trials(board, reference):  # titled as the text table's
        sections += [f"<h2>{html.escape(title)}</h2>", frame.to_html(index=False, border=0, classes="seeds")]
    return _page(
        f"{board.study}: smcl-tune leaderboard",
        [
            f"<h1>{html.escape(board.study)}</h1>",
            f"<p>{html.escape(title_line(board))}</p>",
            "<ul>" + "".join(f"<li>{html.escape(line)}</li>" for line in group_lines(board)) + "</ul>",
            table,
            *sections,
            "<h2>Plots</h2>",
            *(f'<p class="note">{html.escape(note)}</p>' for note in notes),
            *(_figure_html(figure, include_js=index == 0) for index, figure in enumerate(figures)),
            *_gallery_html(board),
        ],
    )


def _gallery_html(board: Leaderboard) -> list[str]:
    """Each condition's mask gallery (of its best-ranked trial that masks), the note once, over the first."""
    galleries = [pictures.gallery for pictures in board.pictures if pictures.gallery is not None]
    page = []
    for index, (name, picture) in enumerate(galleries):
        page.append(f"<h2>The masks of {html.escape(name)}</h2>")
        if index == 0:
            page.append(
                '<p class="note">From its first masking epoch; the picture\'s title says which composition. With '
                "<code>erase</code> (the paper's reading): the image, its saliency map, the mask removed (its salient "
                "box, or its map over the threshold), the erased image and its soft label. With <code>paste</code>: "
                "the head image, the minor-class image, the saliency map the mask comes from, the mask, and the "
                "composite with its soft label. Does the mask find the object?</p>"
            )
        page.append(
            f'<img class="gallery" alt="mask gallery of {html.escape(name)}" '
            f'src="data:image/png;base64,{base64.b64encode(picture).decode()}">'
        )
    return page
