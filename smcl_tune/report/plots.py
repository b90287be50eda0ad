"""Plotly figures of a study's leaderboard, for the HTML report.

Many-shot vs few-shot accuracy of every trial with the Pareto front; the objective against each
searched hyperparameter; hyperparameter importance (Optuna's fANOVA on the stored study, with the
number of completed trials it rests on); learning curves of the top trials; per-class accuracy of
the best trial against its training count (the long-tail curve). Baselines and confirmed
configurations are labelled and have markers of their own (`highlights.py`); in the many- vs
few-shot plot, labels that would overlap move into the hover text and the legend.
"""

from __future__ import annotations

import itertools
import logging
import math

import optuna
import pandas as pd
import plotly.colors
import plotly.graph_objects as go
import sqlalchemy.exc

from smcl_tune.errors import StudyUnavailable
from smcl_tune.report.cells import named_trial
from smcl_tune.report.highlights import (
    HIGHLIGHTED_KINDS,
    KIND_WORDS,
    MARKER_SIZE,
    MARKERS,
    Highlight,
    error_bar,
    highlights,
)
from smcl_tune.report.leaderboard import ConditionPictures, Leaderboard
from smcl_tune.results import OBJECTIVE_DECIMALS, TrialState, tie_rounded
from smcl_tune.store.database import optuna_storage
from smcl_tune.store.progress import INTERRUPTED
from smcl_tune.store.sqlite_copy import sqlite_path
from smcl_tune.studyfile.conditions import plain_param_names

log = logging.getLogger(__name__)

# Below this many completed trials fANOVA's ranking is not to be trusted: on the quickstart's 7 it
# ranked saliency_threshold first (0.59) while optuna-dashboard's evaluator ranked temperature first.
IMPORTANCE_MIN_TRIALS = 10

# A label's box as a fraction of the axes' span: plotly's 12 px text in its default figure (450 px
# high, a plot area of some 270-320 by 700-800 px beside the legend) is a line about 5% of the height
# and a character about 1% of the width. Both err large: a label hidden needlessly is still in the
# hover text and the legend, one drawn over another cannot be read.
LABEL_HEIGHT = 0.06
LABEL_CHAR_WIDTH = 0.01

# In the hyperparameter plots a condition has one colour; its trials' states differ by marker.
STATE_SYMBOLS = {
    TrialState.COMPLETED: "circle",
    TrialState.PRUNED: "triangle-down",
    TrialState.FAILED: "x",
    TrialState.RUNNING: "circle-open",
    INTERRUPTED: "square-open",
}

Interval = tuple[float, float, float]  # mean, 95% interval low and high (Highlight.value)


def pareto_front(points: pd.DataFrame, x: str, y: str) -> pd.DataFrame:
    """Rows not dominated in (x, y), both maximised, sorted by x; values equal to 9 decimals are
    equal (a mean over three seeds of 0.8 is 0.8000000000000002)."""
    rounded = points[[x, y]].apply(pd.to_numeric, errors="coerce").round(OBJECTIVE_DECIMALS)
    ordered = rounded.sort_values([x, y], ascending=[False, False], kind="stable")
    front, best_y = [], -math.inf
    for index, row in ordered.iterrows():
        if row[y] > best_y:
            front.append(index)
            best_y = row[y]
    return points.loc[front].sort_values(x)


def _percent(series: pd.Series) -> pd.Series:
    return 100 * pd.to_numeric(series, errors="coerce")


def _highlight_marker(highlight: Highlight, colour: str | None = None) -> dict:
    """Its kind's symbol; in a study of several conditions, its condition's colour (plotly's next
    one otherwise, which may be another condition's)."""
    marker = {"size": MARKER_SIZE, "symbol": MARKERS[highlight.kind], "line": {"width": 1, "color": "#222"}}
    return {**marker, "color": colour} if colour else marker


def condition_colours(board: Leaderboard) -> dict[str, str]:
    """One colour per condition, in the study's order (plotly's own palette), so that a condition's
    trials, its Pareto front and its points of every state share it; {} for a study of one condition."""
    if not board.grouped:
        return {}
    labels = [*board.conditions, *(c for c in board.trials["condition"].unique() if c not in board.conditions)]
    palette = plotly.colors.qualitative.Plotly
    return {label: palette[index % len(palette)] for index, label in enumerate(labels)}


def many_few_figure(board: Leaderboard) -> go.Figure | None:
    points = board.trials.dropna(subset=["test_many", "test_few"])
    if points.empty:
        return None
    figure = go.Figure()
    colours = condition_colours(board)
    marked = highlights(points)
    # a Pareto front per condition: trials of another imbalance factor trade many against few on other data
    for condition, members in points.groupby("condition", sort=False) if colours else [("", points)]:
        suffix, colour = (f" [{condition}]", colours[condition]) if colours else ("", None)
        search = members[~members["kind"].isin(HIGHLIGHTED_KINDS)]
        figure.add_scatter(
            x=_percent(search["test_many"]),
            y=_percent(search["test_few"]),
            mode="markers",
            text=search["trial"],
            name=f"search trials{suffix}",
            marker={"size": 9, "color": colour},
        )
        front = pareto_front(
            _drawn_points(
                search, [highlight for highlight in marked if not colours or highlight.condition == condition]
            ),
            "test_many",
            "test_few",
        )
        figure.add_scatter(  # under the baselines' and confirmed configurations' markers, open: they show through
            x=_percent(front["test_many"]),
            y=_percent(front["test_few"]),
            mode="lines+markers",
            text=front["trial"],
            name=f"Pareto front{suffix}",
            marker={"size": 14, "symbol": "diamond-open", "color": colour},
            line={"color": colour},
        )
    many = [highlight.value("test_many") for highlight in marked]
    few = [highlight.value("test_few") for highlight in marked]
    spans = _axis_span(_percent(points["test_many"]), many), _axis_span(_percent(points["test_few"]), few)
    centres = [(100 * x[0], 100 * y[0], highlight.label) for highlight, x, y in zip(marked, many, few)]
    unlabelled = colliding_labels(centres, *spans)
    for index, highlight in enumerate(marked):
        _add_many_few_highlight(
            figure, highlight, many[index], few[index], index not in unlabelled, colours.get(highlight.condition)
        )
    figure.update_layout(
        title="Many-shot vs few-shot test accuracy",
        xaxis_title="many-shot accuracy (%)",
        yaxis_title="few-shot accuracy (%)",
    )
    return figure


def _drawn_points(search: pd.DataFrame, marked: list[Highlight]) -> pd.DataFrame:
    """The points the plot draws: each search trial, and each baseline and confirmed configuration
    at its mean over its seeds (a single seed of theirs is not drawn, so no front runs through it)."""
    means = [
        {"trial": highlight.label, **{column: highlight.value(column)[0] for column in ("test_many", "test_few")}}
        for highlight in marked
    ]
    return pd.concat([search[["trial", "test_many", "test_few"]], pd.DataFrame(means)], ignore_index=True)


def colliding_labels(labels: list[tuple[float, float, str]], x_span: float, y_span: float) -> set[int]:
    """Indices of the labels (x, y, text), each centred above its point, whose boxes overlap another's:
    closer in x than half their widths together and in y than a line's height."""
    colliding = set()
    for (i, (x1, y1, text1)), (j, (x2, y2, text2)) in itertools.combinations(enumerate(labels), 2):
        half_widths = LABEL_CHAR_WIDTH * x_span * (len(text1) + len(text2)) / 2
        if abs(x1 - x2) < half_widths and abs(y1 - y2) < LABEL_HEIGHT * y_span:
            colliding |= {i, j}
    return colliding


def _axis_span(points: pd.Series, intervals: list[Interval]) -> float:
    """The span (in %) of the points and the highlights' intervals, which plotly's autorange takes in;
    1 when they are all one value (every gap on the axis is then 0, and any span will do)."""
    values = [*points.dropna(), *(100 * value for interval in intervals for value in interval)]
    finite = [value for value in values if math.isfinite(value)]
    return (max(finite, default=0.0) - min(finite, default=0.0)) or 1.0


def _add_many_few_highlight(
    figure: go.Figure, highlight: Highlight, many: Interval, few: Interval, labelled: bool, colour: str | None
) -> None:
    """A highlight's marker, its label on the plot where `labelled`, always in its hover text and the legend."""
    figure.add_scatter(
        x=[100 * many[0]],
        y=[100 * few[0]],
        error_x=error_bar(*many),
        error_y=error_bar(*few),
        mode="markers+text" if labelled else "markers",
        text=[highlight.label] if labelled else None,
        hovertext=[highlight.label],
        textposition="top center",
        name=highlight.legend,
        showlegend=True,
        marker=_highlight_marker(highlight, colour),
    )


def hyperparameter_figures(board: Leaderboard) -> list[go.Figure]:
    figures = []
    colours = condition_colours(board)
    for name in board.searched:
        column = f"param.{name}"
        if column not in board.trials:
            continue
        values = pd.to_numeric(board.trials[column], errors="coerce")
        shown = board.trials.assign(_value=values.where(values.notna(), board.trials[column]))
        search = shown[~shown["kind"].isin(HIGHLIGHTED_KINDS)].dropna(subset=["objective", "_value"])
        if search.empty:
            continue
        figure = go.Figure()
        by = ["condition", "state"] if board.grouped else ["state"]  # a condition's trials beside its own baseline
        for keys, members in search.groupby(by, sort=False):
            condition, state = keys if board.grouped else ("", keys[0])
            figure.add_scatter(
                x=members["_value"],
                y=_percent(members["objective"]),
                mode="markers",
                text=members["trial"],
                name=f"{state} [{condition}]" if condition else state,
                marker={"color": colours.get(condition), "symbol": STATE_SYMBOLS.get(state, "circle")},
            )
        for highlight in highlights(shown.dropna(subset=["objective"])):
            _add_objective_highlight(figure, highlight, search["_value"], colours.get(highlight.condition))
        figure.update_layout(
            title=f"{board.metric} against {name}", xaxis_title=name, yaxis_title=f"{board.metric} (%)"
        )
        figures.append(figure)
    return figures


def _add_objective_highlight(
    figure: go.Figure, highlight: Highlight, searched: pd.Series, colour: str | None = None
) -> None:
    """At its own value of the hyperparameter when it has one (a confirmed search trial), else
    (a baseline that does not search it) as a labelled level across the plot with its interval."""
    mean, low, high = highlight.value("objective")
    own = highlight.runs["_value"].dropna().unique()
    if len(own) == 1:
        figure.add_scatter(
            x=[own[0]],
            y=[100 * mean],
            error_y=error_bar(mean, low, high),
            mode="markers+text",
            text=[highlight.label],
            textposition="top center",
            name=highlight.legend,
            marker=_highlight_marker(highlight, colour),
        )
        return
    numeric = pd.to_numeric(searched, errors="coerce")
    ends = [numeric.min(), numeric.max()] if numeric.notna().all() else [searched.iloc[0], searched.iloc[-1]]
    figure.add_scatter(
        x=ends,
        y=[100 * mean] * 2,
        mode="lines+markers+text",
        text=["", highlight.label],
        textposition="top left",
        name=highlight.legend,
        line={"dash": "dash", "color": colour},
        marker=_highlight_marker(highlight, colour),
    )
    if not (math.isnan(low) or math.isnan(high)):
        figure.add_scatter(
            x=[ends[0], ends[1], ends[1], ends[0], ends[0]],
            y=[100 * low, 100 * low, 100 * high, 100 * high, 100 * low],
            fill="toself",
            mode="lines",
            line={"width": 0},
            opacity=0.2,
            name=f"{highlight.label}: 95% interval",
            showlegend=False,
        )


def importance_figures(board: Leaderboard) -> tuple[list[go.Figure], list[str]]:
    """fANOVA importances from each condition's Optuna study, or why there are none; each figure
    says how many completed trials it rests on, with a note where they are too few to rank."""
    if not board.optuna_storage:
        return [], ["no Optuna storage recorded for this study"]
    database = sqlite_path(board.optuna_storage)
    if database is not None and not database.is_file():  # opening it would create an empty one
        return [], [f"hyperparameter importance: no Optuna storage at {database}"]
    figures, notes = [], []
    for condition in board.conditions or [""]:
        name = f"{board.study}/{condition}" if condition else board.study
        figure, note = _importance_figure(board, name, condition)
        figures += [figure] if figure is not None else []
        notes += [note] if note else []
    return figures, notes


def _importance_figure(board: Leaderboard, name: str, condition: str) -> tuple[go.Figure | None, str]:
    where = f" ({condition})" if condition else ""
    try:
        study = optuna.load_study(study_name=name, storage=optuna_storage(board.optuna_storage))
    except sqlalchemy.exc.DatabaseError as error:  # a corrupt file or a server down: the report would not be whole
        where = board.optuna_storage.removeprefix("sqlite:///")
        raise StudyUnavailable(f"{where}: cannot read the Optuna study ({error.orig or error})") from None
    except KeyError:  # a study of baselines only has no trials there yet
        return None, f"no Optuna study '{name}' in {board.optuna_storage}"
    try:
        complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
        if len(complete) < 2:
            return None, (
                f"hyperparameter importance{where} needs at least 2 completed search trials, "
                f"{'the condition' if condition else 'the study'} has {len(complete)}"
            )
        if len({tie_rounded(trial.values[0]) for trial in complete}) == 1:  # fANOVA finds no variance to share out
            return None, (
                f"hyperparameter importance{where}: its {len(complete)} completed search trials all scored "
                f"{complete[0].values[0]:.4g}, so no hyperparameter explains a difference"
            )
        searched = dict.fromkeys(name for trial in complete for name in trial.params)
        if len(searched) < 2:  # fANOVA would give one hyperparameter all the variance: a bar at 1.0 says nothing
            what = (
                f"one hyperparameter is searched ({', '.join(plain_param_names(searched))})"
                if searched
                else "no hyperparameter is searched"
            )
            return None, f"hyperparameter importance{where}: {what}, so there is nothing to rank"
        target = (lambda trial: trial.values[0]) if len(study.directions) > 1 else None
        importances = optuna.importance.get_param_importances(
            study, evaluator=optuna.importance.FanovaImportanceEvaluator(seed=0), target=target
        )
    except Exception as error:  # a report still renders without this plot
        log.warning("hyperparameter importance%s unavailable: %s", where, error)
        return None, f"hyperparameter importance{where} unavailable: {error}"
    names = list(importances)[::-1]
    count = len(complete)
    too_few = count < IMPORTANCE_MIN_TRIALS
    figure = go.Figure(
        go.Bar(
            x=[importances[n] for n in names],
            y=list(plain_param_names(dict.fromkeys(names))),  # as the other plots and MLflow name them
            orientation="h",
            marker={"color": "#bbbbbb" if too_few else "#1f77b4"},
        )
    )
    trials = f"{count} completed trial{'s' if count != 1 else ''}"
    figure.update_layout(
        title=f"Hyperparameter importance for {board.metric}{where} (fANOVA, {trials}"
        + (": too few to rank)" if too_few else ")"),
        xaxis_title="importance (share of variance)",
    )
    if not too_few:
        return figure, ""
    warning = (
        f"hyperparameter importance{where} rests on {trials}, fewer than {IMPORTANCE_MIN_TRIALS}: "
        "too few to rank the hyperparameters; the order can change with the next trials"
    )
    figure.add_annotation(
        text=f"too few trials to rank: {trials} (fewer than {IMPORTANCE_MIN_TRIALS})",
        xref="paper",
        yref="paper",
        x=1,
        y=0,
        xanchor="right",
        yanchor="bottom",
        showarrow=False,
        font={"color": "#b00020"},
    )
    return figure, warning


def curves_figures(board: Leaderboard) -> list[go.Figure]:
    """Each condition's top trials' validation curves, a figure per condition that has a point (a
    study without a validation split has none)."""
    rows = {named_trial(row): row for _, row in board.trials.iterrows()}
    by_condition: dict[str, list[tuple[pd.Series, pd.DataFrame]]] = {}
    for name, curve in board.curves.items():
        row = rows[name]
        by_condition.setdefault(row["condition"], []).append((row, curve))
    figures = []
    for condition, members in by_condition.items():
        if not any(pd.to_numeric(curve[board.metric], errors="coerce").notna().any() for _, curve in members):
            continue
        figure = go.Figure()
        for row, curve in members:  # named by the trial alone: the title names the condition
            kind, style = row["kind"], {}
            if kind in HIGHLIGHTED_KINDS:
                style = {"line": {"dash": "dash", "width": 3}, "marker": {"symbol": MARKERS[kind], "size": 10}}
            figure.add_scatter(
                x=curve["epoch"] + 1,
                y=_percent(curve[board.metric]),
                mode="lines+markers",
                name=f"{KIND_WORDS[kind]}: {row['trial']}" if kind in HIGHLIGHTED_KINDS else row["trial"],
                **style,
            )
        where = f", condition {condition}" if condition else ""
        figure.update_layout(
            title=f"Learning curves of the top trials{where} ({board.metric})",
            xaxis_title="epoch (from 1)",
            yaxis_title=f"{board.metric} (%)",
        )
        figures.append(figure)
    return figures


def long_tail_figures(board: Leaderboard) -> list[go.Figure]:
    """Per condition: its best trial's per-class accuracy against the classes' training counts, with
    each baseline's and confirmed configuration's over its seeds; those alone where no trial is best
    (no validation split)."""
    figures = [_long_tail_figure(pictures) for pictures in board.pictures]
    return [figure for figure in figures if figure is not None]


def _long_tail_figure(pictures: ConditionPictures) -> go.Figure | None:
    per_class, best = pictures.best_per_class, pictures.best
    has_best = best is not None and per_class is not None and not per_class.empty
    if not has_best and not pictures.highlight_per_class:
        return None
    figure = go.Figure()
    if has_best:
        figure.add_scatter(
            x=per_class["train_count"],
            y=_percent(per_class["test_accuracy"]),
            mode="markers",
            text=per_class["class_name"],
            name="classes",
        )
    for highlight, classes in pictures.highlight_per_class:
        rarest = classes["train_count"].idxmin()
        figure.add_scatter(
            x=classes["train_count"],
            y=_percent(classes["test_accuracy"]),
            error_y={
                "type": "data",
                "symmetric": False,
                # cut at an accuracy's range, as the tables cut an interval
                "array": _percent(classes["ci_high"].clip(upper=1.0) - classes["test_accuracy"]).fillna(0),
                "arrayminus": _percent(classes["test_accuracy"] - classes["ci_low"].clip(lower=0.0)).fillna(0),
            },
            mode="markers+text",
            text=[highlight.label if index == rarest else "" for index in classes.index],
            textposition="top center",
            hovertext=classes["class_name"],
            name=highlight.legend,
            marker=_highlight_marker(highlight),
        )
    where = f", condition {pictures.condition}" if pictures.condition else ""
    whose = (
        f"the best trial ({named_trial(best)})"
        if has_best
        else f"the baselines and confirmed configurations{where} (no best trial: no validation split)"
    )
    figure.update_layout(
        title=f"Per-class test accuracy of {whose} against the training count",
        xaxis_title="training images of the class",
        yaxis_title="test accuracy (%)",
        xaxis_type="log",
    )
    return figure
