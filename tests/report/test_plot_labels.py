"""Labels of the many- vs few-shot plot: those that would overlap move into the hover text and the
legend; the others stay on the plot."""

import pandas as pd

from smcl_tune.report.leaderboard import Leaderboard
from smcl_tune.report.plots import many_few_figure
from smcl_tune.results import TrialState

# Search trials across the plot, so that the axes span about 40 points in x and y.
SEARCH = [(0.40, 0.40), (0.60, 0.20), (0.80, 0.00)]


def _board(baselines: dict[str, tuple[float, float]]) -> Leaderboard:
    """Search trials (SEARCH) and one single-run baseline per name at its (many, few) accuracy."""
    rows = [_row(f"trial-{index:03d}", "search", "", many, few) for index, (many, few) in enumerate(SEARCH)]
    rows += [_row(f"baseline-{name}", "baseline", name, many, few) for name, (many, few) in baselines.items()]
    return Leaderboard("lt", "val_balanced_accuracy", "max", pd.DataFrame(rows), searched=[])


def _row(trial: str, kind: str, configuration: str, many: float, few: float) -> dict:
    return {
        "condition": "",
        "trial": trial,
        "kind": kind,
        "configuration": configuration,
        "seed": 0,
        "state": TrialState.COMPLETED,
        "objective": 0.5,
        "test_many": many,
        "test_few": few,
    }


def _highlights(board: Leaderboard) -> dict:
    return {trace.name: trace for trace in many_few_figure(board).data if trace.name.startswith("baseline ")}


def test_labels_of_highlights_at_nearly_one_point_move_into_the_hover_text_and_the_legend():
    traces = _highlights(_board({"ce": (0.650, 0.100), "ce_drw": (0.655, 0.102), "smcl": (0.45, 0.35)}))
    for label in ("baseline ce", "baseline ce_drw"):
        trace = traces[label]
        assert "text" not in trace.mode and not trace.text  # no text drawn on the plot
        assert trace.marker.symbol == "star" and trace.x  # the marker stays
        assert trace.hovertext == (label,)
        assert trace.showlegend is True and trace.name == label
    smcl = traces["baseline smcl"]  # far from both: its label collides with none
    assert "text" in smcl.mode and smcl.text == ("baseline smcl",)


def test_labels_of_far_apart_highlights_stay_on_the_plot():
    traces = _highlights(_board({"ce": (0.75, 0.05), "smcl": (0.45, 0.35)}))
    for label in ("baseline ce", "baseline smcl"):
        assert "text" in traces[label].mode and traces[label].text == (label,)
        assert traces[label].showlegend is True and traces[label].name == label
