"""Baselines and confirmed configurations stand out in the report's plots: their own marker, a
label, and the 95% interval over their seeds as error bars."""

import dataclasses
import json
import math
import re

import pytest
from scipy import stats

from smcl_tune.report.highlights import error_bar
from smcl_tune.report.html import format_html
from smcl_tune.report.leaderboard import load_leaderboard
from smcl_tune.report.plots import curves_figures, hyperparameter_figures, long_tail_figures, many_few_figure
from tests.fixtures.stores import store_uri


def _traces(figure):
    return {trace.name: trace for trace in figure.data}


def _half_width(values):
    mean = sum(values) / len(values)
    spread = math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))
    return stats.t.ppf(0.975, len(values) - 1) * spread / math.sqrt(len(values))


def test_seeded_baselines_and_confirmed_configurations_are_labelled_means_with_intervals(tmp_path, build_seed_store):
    board = load_leaderboard(build_seed_store(tmp_path), "seeds")
    traces = _traces(many_few_figure(board))
    ce = traces["baseline ce [imbalance_factor=100]: mean of seeds 0,1,2 (95% interval)"]
    smcl = traces["baseline smcl [imbalance_factor=100]: mean of seeds 0,1,2 (95% interval)"]
    confirmed = traces["confirmed trial-001 [imbalance_factor=100]: mean of seeds 1,2 (too few seeds for an interval)"]
    assert ce.marker.symbol == smcl.marker.symbol == "star" and confirmed.marker.symbol == "hexagram"
    assert ce.text == ("baseline ce [imbalance_factor=100]",) and "text" in ce.mode
    assert confirmed.text == ("confirmed trial-001 [imbalance_factor=100]",)
    # few-shot % of the seeds (conftest.SEED_FEW): ce 10 / 14 / 12, trial-001 30 / 34
    assert ce.y == pytest.approx((12.0,)) and confirmed.y == pytest.approx((32.0,))
    assert ce.error_y.array == pytest.approx((_half_width([10, 14, 12]),))
    assert ce.error_y.arrayminus == pytest.approx((_half_width([10, 14, 12]),))
    assert confirmed.error_y.array is None  # two seeds: too few for an interval, so no bar
    assert len(traces["search trials"].x) == 0  # the seed runs are not also ordinary dots
    # the front runs through the points drawn, the means: not through confirm-001-s2's lone 34 %
    front = traces["Pareto front"]
    assert list(front.text) == ["confirmed trial-001 [imbalance_factor=100]"] and list(front.y) == pytest.approx([32.0])


def test_a_single_run_baseline_is_labelled_without_error_bars_in_every_plot_of_trials(tmp_path, build_store):
    board = load_leaderboard(build_store(tmp_path), "lt")
    traces = _traces(many_few_figure(board))
    ce = traces["baseline ce [imbalance_factor=100]"]
    assert ce.marker.symbol == "star" and (ce.x, ce.y) == ((90.0,), (5.0,))
    assert ce.error_x.array is None and ce.error_y.array is None
    search = traces["search trials [imbalance_factor=100]"]
    assert set(zip(search.x, search.y)) == {(80.0, 20.0), (85.0, 25.0)}  # trial-003 (IF 10) has no few-shot class

    # a Pareto front per condition: IF 10's trial-003 (90, 50) would dominate all of IF 100's in one pool
    few = board.trials["test_few"].mask(board.trials["trial"] == "trial-003", 0.5)
    fronts = _traces(many_few_figure(dataclasses.replace(board, trials=board.trials.assign(test_few=few))))
    assert list(fronts["Pareto front [imbalance_factor=10]"].text) == ["trial-003"]
    assert list(fronts["Pareto front [imbalance_factor=100]"].text) == [
        "trial-001",
        "baseline ce [imbalance_factor=100]",
    ]
    colour = fronts["Pareto front [imbalance_factor=100]"].marker.color  # a condition's colour, in every plot
    assert fronts["search trials [imbalance_factor=100]"].marker.color == colour
    assert fronts["search trials [imbalance_factor=10]"].marker.color not in (colour, None)
    assert fronts["baseline ce [imbalance_factor=100]"].marker.color == colour  # not plotly's next colour

    (temperature,) = hyperparameter_figures(board)
    names = set(_traces(temperature))
    assert {"completed [imbalance_factor=10]", "completed [imbalance_factor=100]"} <= names  # a legend entry each
    assert "completed" not in names
    colours = {name: trace.marker.color for name, trace in _traces(temperature).items() if "[" in name}
    assert colours["completed [imbalance_factor=100]"] == colours["pruned [imbalance_factor=100]"]
    assert colours["completed [imbalance_factor=100]"] != colours["completed [imbalance_factor=10]"]
    assert _traces(temperature)["pruned [imbalance_factor=100]"].marker.symbol == "triangle-down"
    assert _traces(temperature)["failed [imbalance_factor=10]"].marker.symbol == "x"  # not a completed one's circle
    level_colour = _traces(temperature)["baseline ce [imbalance_factor=100]"].marker.color
    assert level_colour == colours["completed [imbalance_factor=100]"]  # the same colour in every plot
    level = _traces(temperature)["baseline ce [imbalance_factor=100]"]  # CE does not search the temperature
    assert level.y == (50.0, 50.0) and level.line.dash == "dash" and level.marker.symbol == "star"
    assert level.x == (0.05, 0.4)  # across the searched range
    assert "baseline ce [imbalance_factor=100]" in level.text
    assert all("baseline-ce" not in trace.text for trace in temperature.data if trace.name != level.name)

    first, second = curves_figures(board)  # a figure per condition, its top trials
    assert (
        first.layout.title.text
        == "Learning curves of the top trials, condition imbalance_factor=10 (val_balanced_accuracy)"
    )
    assert set(_traces(first)) == {"trial-003", "trial-004"}  # the title names their condition
    curves = _traces(second)
    baseline_curve = curves["baseline: baseline-ce"]
    assert baseline_curve.line.dash == "dash" and baseline_curve.marker.symbol == "star"
    assert curves["trial-001"].line.dash is None


def test_the_html_report_carries_the_labels_and_markers(tmp_path, build_seed_store):
    page = format_html(load_leaderboard(build_seed_store(tmp_path), "seeds"))
    blob = next(
        json.loads(data)
        for data in re.findall(r"Plotly.newPlot\(\s*\"[^\"]+\",\s*(\[.*?\]),\s*\{", page)
        if "Pareto front" in data
    )
    labelled = {trace["text"][0]: trace["marker"]["symbol"] for trace in blob if trace.get("mode") == "markers+text"}
    assert labelled == {
        "baseline ce [imbalance_factor=100]": "star",
        "baseline smcl [imbalance_factor=100]": "star",
        "confirmed trial-001 [imbalance_factor=100]": "hexagram",
    }


def test_a_confirmed_configuration_sits_at_its_own_hyperparameter_value(tmp_path, logged_trial):
    from smcl_tune.store.paths import default_tracking_uri
    from smcl_tune.tracking.writer import StudyTracker

    tracker = StudyTracker(store_uri(tmp_path), "c", "c", "f", tmp_path / "mlartifacts")
    tracker.log_study(None, None, {}, {"smcl.search": json.dumps(["temperature"]), "smcl.conditions": '["if=100"]'})
    final = {"test_many": 0.8, "test_few": 0.2, "test_top1": 0.5}
    for name, kind, temperature, score, seed in (
        ("trial-000", "search", 0.1, 0.5, 0),
        ("trial-001", "search", 0.3, 0.7, 0),
        ("confirm-001-s1", "confirm", 0.3, 0.6, 1),
        ("confirm-001-s2", "confirm", 0.3, 0.64, 2),
    ):
        configuration = "trial-001" if kind == "confirm" else ""
        logged_trial(
            tracker,
            name,
            kind,
            "completed",
            "if=100",
            {"temperature": temperature},
            [score],
            {**final, "selected_val_balanced_accuracy": score},
            configuration=configuration,
            seed=seed,
        )
    tracker.finish()
    (figure,) = hyperparameter_figures(load_leaderboard(default_tracking_uri(tmp_path), "c"))
    confirmed = _traces(figure)["confirmed trial-001 [if=100]: mean of seeds 1,2 (too few seeds for an interval)"]
    assert confirmed.x == (0.3,) and confirmed.y == pytest.approx((62.0,))
    assert confirmed.marker.symbol == "hexagram" and confirmed.text == ("confirmed trial-001 [if=100]",)
    assert confirmed.error_y.array is None


def test_the_long_tail_plot_shows_each_baseline_per_class_over_its_seeds(tmp_path, build_seed_store):
    from mlflow.tracking import MlflowClient

    from smcl_tune.figures.class_accuracy import per_class_csv
    from smcl_tune.report.plots import long_tail_figures

    uri = build_seed_store(tmp_path)
    client = MlflowClient(uri)
    runs = {
        run.info.run_name: run.info.run_id
        for run in client.search_runs([client.get_experiment_by_name("seeds").experiment_id])
    }
    for seed, rarest in ((0, 0.1), (1, 0.2), (2, 0.3)):  # CE's rarest class: 10 / 20 / 30 %
        (tmp_path / "per_class_accuracy.csv").write_text(
            per_class_csv([f"class{i}" for i in range(5)], [60, 40, 20, 12, 6], [0.9, 0.8, 0.7, 0.6, rarest])
        )
        client.log_artifact(
            runs[f"baseline-ce-s{seed} [imbalance_factor=100]"], str(tmp_path / "per_class_accuracy.csv")
        )
    (figure,) = long_tail_figures(load_leaderboard(uri, "seeds"))  # one condition
    traces = _traces(figure)
    ce = traces["baseline ce [imbalance_factor=100]: mean of seeds 0,1,2 (95% interval)"]
    assert ce.marker.symbol == "star" and list(ce.x) == [60, 40, 20, 12, 6]
    assert list(ce.y) == pytest.approx([90, 80, 70, 60, 20])
    assert list(ce.error_y.array) == pytest.approx([0, 0, 0, 0, _half_width([10, 20, 30])])
    assert list(ce.text) == ["", "", "", "", "baseline ce [imbalance_factor=100]"]  # labelled at its rarest class
    assert (
        traces[
            "confirmed trial-001 [imbalance_factor=100]: mean of seeds 1,2 (too few seeds for an interval)"
        ].marker.symbol
        == "hexagram"
    )


def test_an_error_bar_past_an_accuracys_range_is_cut_at_it_as_the_tables_cut_it():
    bar = error_bar(0.95, 0.85, 1.07)  # 95% with an interval to 107%
    assert bar["array"] == pytest.approx([5.0]) and bar["arrayminus"] == pytest.approx([10.0])
    assert error_bar(0.05, -0.35, 0.2)["arrayminus"] == pytest.approx([5.0])


def test_each_condition_has_a_per_class_plot_of_its_best_trial_and_a_study_without_validation_gets_no_curves(
    tmp_path, build_store
):
    board = load_leaderboard(build_store(tmp_path), "lt")
    titles = [figure.layout.title.text for figure in long_tail_figures(board)]
    # IF 10 (the study's first condition) holds the study's best trial; IF 100's best is trial-001
    assert [title.split("best trial (")[1].split(")")[0] for title in titles] == [
        "trial-003 [imbalance_factor=10]",
        "trial-001 [imbalance_factor=100]",
    ], titles
    assert len(curves_figures(board)) == 2
    for name, curve in board.curves.items():  # val_per_class: 0, as a confirmation run may be
        if "imbalance_factor=10]" in name:
            curve[board.metric] = math.nan
    assert len(curves_figures(board)) == 1  # no plot of empty axes
    for curve in board.curves.values():
        curve[board.metric] = math.nan
    assert curves_figures(board) == []


def test_the_curves_are_the_top_search_trials_and_each_configuration_once_at_its_lowest_seed_with_a_curve(
    tmp_path, logged_trial
):
    from smcl_tune.tracking.writer import StudyTracker

    tracker = StudyTracker(store_uri(tmp_path), "c", "c", "f", tmp_path / "mlartifacts")
    tracker.log_study(None, None, {}, {"smcl.conditions": '["if=100"]'})
    runs = [  # name, kind, configuration, seed, its validation curve (none: no validation split)
        *((f"baseline-ce-s{seed}", "baseline", "ce", seed, [0.8, 0.9]) for seed in (1, 2)),
        ("baseline-ce-s0", "baseline", "ce", 0, []),
        ("baseline-smcl-s0", "baseline", "smcl", 0, [0.05]),  # failed after an epoch: not what stands for smcl
        ("baseline-smcl-s1", "baseline", "smcl", 1, [0.6, 0.65]),
        *((f"confirm-001-s{seed}", "confirm", "trial-001", seed, [0.7, 0.85]) for seed in (2, 1)),
        *((f"trial-00{number}", "search", "", 0, [0.1, 0.1 * number]) for number in range(8)),
    ]
    for name, kind, configuration, seed, curve in runs:
        final = {"test_top1": 0.5, **({"selected_val_balanced_accuracy": curve[-1]} if curve else {})}
        state = "failed" if name == "baseline-smcl-s0" else "completed"
        logged_trial(tracker, name, kind, state, "if=100", {}, curve, final, configuration=configuration, seed=seed)
    tracker.finish()
    board = load_leaderboard(store_uri(tmp_path), "c")
    # above every search trial in the table: 2 seeds of CE and 2 of trial-001, which would have filled the 5
    assert list(board.trials["trial"])[:4] == ["baseline-ce-s1", "baseline-ce-s2", "confirm-001-s1", "confirm-001-s2"]
    assert [name.split(" [")[0] for name in board.curves] == [
        "baseline-ce-s1",  # CE's lowest seed, 0, has no validation curve
        "confirm-001-s1",
        "trial-007",
        "baseline-smcl-s1",  # its lowest completed seed
        *(f"trial-00{number}" for number in (6, 5, 4, 3)),
    ]
    (figure,) = curves_figures(board)
    assert all(len(trace.x) == 2 for trace in figure.data)  # no empty trace, no failed seed's one point
