"""The HTML study report: one self-contained file with the tables and plotly figures.

Figures: many-shot vs few-shot accuracy of every trial with the Pareto front; the objective
against each searched hyperparameter; hyperparameter importance (Optuna's fANOVA on the stored
study); learning curves of the top trials; per-class accuracy of the best trial against its
training count (the long-tail curve).
"""

from __future__ import annotations

import html
import logging
import math

import optuna
import pandas as pd
import plotly.graph_objects as go
import plotly.io as pio

from smcl_tune.leaderboard import Leaderboard
from smcl_tune.report_tables import comparison_frame, display_frame, group_lines, title_line

log = logging.getLogger(__name__)

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; font-size: 0.85em; margin-bottom: 2em; }
th, td { border-bottom: 1px solid #ddd; padding: 0.25em 0.6em; text-align: right; }
th { background: #f3f3f3; }
td:nth-child(2), td:nth-child(3), th:nth-child(2), th:nth-child(3) { text-align: left; }
.note { color: #666; font-size: 0.9em; }
.figure { margin-bottom: 1.5em; }
"""


def pareto_front(points: pd.DataFrame, x: str, y: str) -> pd.DataFrame:
    """Rows not dominated in (x, y), both maximised, sorted by x."""
    ordered = points.sort_values([x, y], ascending=[False, False])
    front, best_y = [], -math.inf
    for index, row in ordered.iterrows():
        if row[y] > best_y:
            front.append(index)
            best_y = row[y]
    return points.loc[front].sort_values(x)


def _percent(series: pd.Series) -> pd.Series:
    return 100 * pd.to_numeric(series, errors="coerce")


def many_few_figure(board: Leaderboard) -> go.Figure | None:
    points = board.trials.dropna(subset=["test_many", "test_few"])
    if points.empty:
        return None
    figure = go.Figure()
    figure.add_scatter(x=_percent(points["test_many"]), y=_percent(points["test_few"]), mode="markers",
                       text=points["trial"], name="trials", marker={"size": 9})
    front = pareto_front(points, "test_many", "test_few")
    figure.add_scatter(x=_percent(front["test_many"]), y=_percent(front["test_few"]), mode="lines+markers",
                       text=front["trial"], name="Pareto front", marker={"size": 12, "symbol": "diamond"})
    figure.update_layout(title="Many-shot vs few-shot test accuracy", xaxis_title="many-shot accuracy (%)",
                         yaxis_title="few-shot accuracy (%)")
    return figure


def hyperparameter_figures(board: Leaderboard) -> list[go.Figure]:
    figures = []
    for name in board.searched:
        column = f"param.{name}"
        if column not in board.trials:
            continue
        values = pd.to_numeric(board.trials[column], errors="coerce")
        shown = board.trials.assign(_value=values.where(values.notna(), board.trials[column]))
        shown = shown.dropna(subset=["objective", "_value"])
        if shown.empty:
            continue
        figure = go.Figure()
        for state, members in shown.groupby("state"):
            figure.add_scatter(x=members["_value"], y=_percent(members["objective"]), mode="markers",
                               text=members["trial"], name=state)
        figure.update_layout(title=f"{board.metric} against {name}", xaxis_title=name,
                             yaxis_title=f"{board.metric} (%)")
        figures.append(figure)
    return figures


def importance_figure(board: Leaderboard) -> tuple[go.Figure | None, str]:
    """fANOVA importances from the stored Optuna study, or why there are none."""
    if not board.optuna_storage:
        return None, "no Optuna storage recorded for this study"
    try:
        study = optuna.load_study(study_name=board.study, storage=board.optuna_storage)
        complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
        if len(complete) < 2:
            return None, f"hyperparameter importance needs at least 2 finished trials, the study has {len(complete)}"
        target = (lambda trial: trial.values[0]) if len(study.directions) > 1 else None
        importances = optuna.importance.get_param_importances(
            study, evaluator=optuna.importance.FanovaImportanceEvaluator(seed=0), target=target)
    except Exception as error:  # noqa: BLE001 - a report still renders without this plot
        log.warning("hyperparameter importance unavailable: %s", error)
        return None, f"hyperparameter importance unavailable: {error}"
    names = list(importances)[::-1]
    figure = go.Figure(go.Bar(x=[importances[n] for n in names], y=names, orientation="h"))
    figure.update_layout(title=f"Hyperparameter importance for {board.metric} (fANOVA, finished trials)",
                         xaxis_title="importance (share of variance)")
    return figure, ""


def curves_figure(board: Leaderboard) -> go.Figure | None:
    if not board.curves:
        return None
    figure = go.Figure()
    for trial, curve in board.curves.items():
        figure.add_scatter(x=curve["epoch"], y=_percent(curve[board.metric]), mode="lines+markers", name=trial)
    figure.update_layout(title=f"Learning curves of the top trials ({board.metric})", xaxis_title="epoch",
                         yaxis_title=f"{board.metric} (%)")
    return figure


def long_tail_figure(board: Leaderboard) -> go.Figure | None:
    per_class = board.best_per_class
    if per_class is None or per_class.empty:
        return None
    best = board.best()
    figure = go.Figure(go.Scatter(x=per_class["train_count"], y=_percent(per_class["test_accuracy"]),
                                  mode="markers", text=per_class["class_name"], name="classes"))
    figure.update_layout(title=f"Per-class test accuracy of the best trial ({best['trial']}) against its training count",
                         xaxis_title="training images of the class", yaxis_title="test accuracy (%)",
                         xaxis_type="log")
    return figure


def _figure_html(figure: go.Figure, include_js: bool) -> str:
    figure.update_layout(height=420, margin={"l": 60, "r": 20, "t": 50, "b": 50})
    body = pio.to_html(figure, full_html=False, include_plotlyjs="inline" if include_js else False)
    return f'<div class="figure">{body}</div>'


def _page(title: str, body: list[str]) -> str:
    head = ('<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head><body>")
    return "\n".join([head, *body, "</body></html>"])


def comparison_html(boards: list[Leaderboard]) -> str:
    """Several studies side by side: the best trial of each and the differences to the first."""
    table = comparison_frame(boards).to_html(index=False, border=0, na_rep="")
    names = ", ".join(board.study for board in boards)
    return _page(f"{names}: smcl-tune comparison", [
        f"<h1>{html.escape(names)}</h1>",
        "<p>Best finished trial of each study (test metrics of the epoch selected on validation, %), "
        "then each study minus the first, per shot group.</p>", table])


def format_html(board: Leaderboard) -> str:
    """The whole report as one HTML page; plotly.js is inlined once, nothing is fetched."""
    figures: list[go.Figure] = []
    notes: list[str] = []
    for figure in (many_few_figure(board), *hyperparameter_figures(board)):
        if figure is not None:
            figures.append(figure)
    importance, why = importance_figure(board)
    if importance is not None:
        figures.append(importance)
    else:
        notes.append(why)
    for figure in (curves_figure(board), long_tail_figure(board)):
        if figure is not None:
            figures.append(figure)
    table = display_frame(board).to_html(index=False, border=0, classes="leaderboard", na_rep="")
    return _page(f"{board.study}: smcl-tune leaderboard", [
        f"<h1>{html.escape(board.study)}</h1>", f"<p>{html.escape(title_line(board))}</p>",
        "<ul>" + "".join(f"<li>{html.escape(line)}</li>" for line in group_lines(board)) + "</ul>",
        table, "<h2>Plots</h2>",
        *(f'<p class="note">{html.escape(note)}</p>' for note in notes),
        *(_figure_html(figure, include_js=index == 0) for index, figure in enumerate(figures)),
    ])
