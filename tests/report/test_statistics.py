"""Statistics over seeds, by hand: mean ± std, Student-t 95% intervals, paired differences, LaTeX."""

import csv
import dataclasses
import io
import math
import subprocess
import sys

import pandas as pd
import pytest

from smcl_tune.cli import main
from smcl_tune.report.cells import interval_cell, percent_cell, points
from smcl_tune.report.comparison import format_comparison
from smcl_tune.report.csv_table import format_csv
from smcl_tune.report.html import comparison_html, format_html
from smcl_tune.report.latex_table import format_latex
from smcl_tune.report.leaderboard import load_leaderboard, rank_trials
from smcl_tune.report.statistics import configuration_summary, paired_differences, t_interval
from smcl_tune.report.text_table import format_text
from smcl_tune.results import TrialState

T_975 = {1: 12.7062047, 2: 4.30265273}  # Student t quantiles, 1 and 2 degrees of freedom


def test_t_interval_by_hand():
    mean, spread, low, high = t_interval([10.0, 14.0, 12.0])
    half = T_975[2] * 2.0 / math.sqrt(3)
    assert (mean, spread) == (12.0, 2.0) and low == pytest.approx(12 - half) and high == pytest.approx(12 + half)
    assert math.isnan(t_interval([5.0])[1]) and math.isnan(t_interval([5.0, math.nan])[2])


@pytest.fixture(scope="module")
def board(tmp_path_factory, build_seed_store):
    return load_leaderboard(build_seed_store(tmp_path_factory.mktemp("seeds")), "seeds")


def _few(frame, configuration):
    row = frame[frame["configuration"] == configuration].iloc[0]
    return [100 * row[f"test_few_{key}"] for key in ("mean", "std", "ci_low", "ci_high")]


def test_configurations_over_seeds_have_mean_std_and_t_intervals(board):
    summary = board.configurations()
    assert sorted(summary["configuration"]) == ["ce", "smcl", "trial-001"]
    ce_half = T_975[2] * 2 / math.sqrt(3)
    assert _few(summary, "ce") == pytest.approx([12, 2, 12 - ce_half, 12 + ce_half])
    smcl_half = T_975[2] * math.sqrt(12) / math.sqrt(3)
    assert _few(summary, "smcl") == pytest.approx([24, math.sqrt(12), 24 - smcl_half, 24 + smcl_half])
    mean, spread, low, high = _few(summary, "trial-001")  # two seeds: a spread, but too few for an interval
    assert (mean, spread) == pytest.approx((32, math.sqrt(8))) and math.isnan(low) and math.isnan(high)
    assert summary[summary["configuration"] == "trial-001"].iloc[0]["seeds"] == "1,2"


def test_paired_differences_use_the_seeds_both_ran_and_mark_intervals_without_zero(board):
    differences = board.differences().set_index("configuration")
    assert board.baseline == "ce"  # the study's first baseline
    smcl = differences.loc["smcl"]  # 10, 12, 14 points over seeds 0, 1, 2
    assert smcl["paired_seeds"] == "0,1,2" and 100 * smcl["test_few_diff"] == pytest.approx(12)
    assert 100 * smcl["test_few_diff_low"] == pytest.approx(12 - T_975[2] * 2 / math.sqrt(3))
    assert smcl["test_few_excludes_0"]
    confirmed = differences.loc["trial-001"]  # seeds 1 and 2 only: 16 and 22 points
    assert confirmed["paired_seeds"] == "1,2" and 100 * confirmed["test_few_diff"] == pytest.approx(19)
    assert confirmed["test_few_excludes_0"] is None  # two seeds are too few to tell: no interval, no answer
    assert not smcl["test_top1_excludes_0"]  # no difference at all


def test_the_text_table_shows_the_statistics_and_the_csv_carries_them_per_seed(board):
    text = format_text(board)
    assert "configurations over seeds: mean ± std [95% interval, Student t], test %" in text
    assert "paired differences to the baseline 'ce' over the seeds both ran" in text
    smcl_lines = [line.split("  ") for line in text.splitlines() if line.startswith("smcl [baseline] ")]
    summary_line, difference_line = ([cell.strip() for cell in line if cell.strip()] for line in smcl_lines)
    assert summary_line[1:2] + summary_line[-1:] == ["0,1,2", "24.0 ± 3.5 [15.4, 32.6]"]
    assert difference_line[1:3] + difference_line[-1:] == ["ce", "0,1,2", "+12.0 [+7.0, +17.0]*"]
    rows = list(csv.DictReader(io.StringIO(format_csv(board))))
    seed_one = next(row for row in rows if row["trial"] == "baseline-smcl-s1")
    assert float(seed_one["config_test_few_mean"]) == pytest.approx(0.24)
    assert float(seed_one["diff_test_few_diff"]) == pytest.approx(0.12)
    assert seed_one["diff_test_few_excludes_0"] == "True"
    assert (seed_one["config_seeds"], seed_one["diff_baseline"], seed_one["diff_paired_seeds"]) == (
        "0,1,2",
        "ce",
        "0,1,2",
    )
    confirmed = next(row for row in rows if row["trial"].startswith("confirm-") and row["diff_test_few_diff"])
    assert confirmed["diff_test_few_excludes_0"] == ""  # two seeds: no interval, so neither True nor False
    assert (confirmed["diff_baseline"], confirmed["diff_paired_seeds"]) == ("ce", "1,2")  # what the pairing used


def test_latex_is_a_booktabs_table_with_the_best_mean_of_each_column_in_bold_where_it_beats_another(board):
    latex = format_latex(board)
    assert latex.splitlines()[1:4] == [
        r"\begin{tabular}{lcccc}",
        r"\toprule",
        r"Method & Top-1 & Many & Medium & Few \\",
    ]
    assert r"\bottomrule" in latex and r"\end{tabular}" in latex
    # every row ties on top-1, many and medium: nothing there stands out, so nothing is bold
    tuned = r"trial-001 (tuned) & 50.0 $\pm$ 0.0 & 80.0 $\pm$ 0.0 & 50.0 $\pm$ 0.0"
    assert tuned + r" & \textbf{32.0} $\pm$ 2.8 \\" in latex and latex.count(r"\textbf") == 1
    assert r"ce & 50.0 $\pm$ 0.0" in latex and r"& 12.0 $\pm$ 2.0 \\" in latex  # not the best: not bold


def test_the_cli_writes_latex_and_compares_with_another_baseline(tmp_path, build_seed_store, capsys):
    build_seed_store(tmp_path / "runs")
    out = tmp_path / "table.tex"
    assert (
        main(["leaderboard", "seeds", "--storage", str(tmp_path / "runs"), "--format", "latex", "--output", str(out)])
        == 0
    )
    assert out.read_text().startswith("% seeds: test accuracy (%)") and r"\toprule" in out.read_text()
    assert main(["leaderboard", "seeds", "--storage", str(tmp_path / "runs"), "--baseline", "smcl"]) == 0
    assert "paired differences to the baseline 'smcl'" in capsys.readouterr().out


def test_latex_of_a_study_without_seeds_is_a_table_saying_so(tmp_path, build_store):
    """`smcl-tune leaderboard lt --format latex` on a study whose configurations ran once each: the
    booktabs table with one row that says why it is empty, exit code 0, no traceback."""
    build_store(tmp_path / "runs")
    done = subprocess.run(
        [sys.executable, "-m", "smcl_tune.cli", "leaderboard", "lt", "--storage", "runs", "--format", "latex"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    lines = done.stdout.rstrip("\n").splitlines()
    assert lines[0].startswith("% lt: test accuracy (%)")
    assert lines[1:5] == [
        r"\begin{tabular}{lcccc}",
        r"\toprule",
        r"Method & Top-1 & Many & Medium & Few \\",
        r"\midrule",
    ]
    assert lines[5:] == [r"\multicolumn{5}{c}{no configuration has two seeds yet} \\", r"\bottomrule", r"\end{tabular}"]


def test_two_seeds_or_a_zero_spread_give_no_interval_and_no_star_and_the_table_says_why(board):
    text, page = format_text(board), format_html(board)
    for report in (text, page):  # the HTML report's headings say it as the text table's titles do
        assert "2 seeds: too few for an interval (it needs 3 or more), so no interval and no star" in report
        assert "a zero spread over the seeds: no interval" in report  # smcl's top-1 equals ce's on every seed
    confirmed = [line for line in text.splitlines() if line.startswith("trial-001 [confirm]")]
    assert confirmed and all("[" not in line.split("]", 1)[1] and "*" not in line for line in confirmed)


def test_an_interval_past_the_metrics_range_is_shown_cut_and_marked():
    row = {"m_mean": 0.95, "m_std": 0.05, "m_ci_low": 0.85, "m_ci_high": 1.07}
    assert interval_cell(row, "m") == "95.0 ± 5.0 [85.0, 100.0]‡"
    inside = {**row, "m_ci_high": 0.99}
    assert interval_cell(inside, "m") == "95.0 ± 5.0 [85.0, 99.0]"


def test_the_tables_over_seeds_fit_a_narrow_terminal_as_the_trials_table_does(board):
    text = format_text(board, width=70)
    seeds_part = text.split("configurations over seeds", 1)[1]
    titles = ("left out", "(", "paired", ":", ";")
    rows = [line for line in seeds_part.splitlines() if "  " in line and not line.startswith(titles)]
    assert rows and all(len(line) <= 70 for line in rows), [line for line in rows if len(line) > 70]
    assert "left out to fit 70 columns: medium" in seeds_part


def test_equal_accuracies_computed_two_ways_are_written_alike():
    # 47 of 400 right: 0.1175 as a count's share, and the float just below it as a mean of classes'
    # shares; 100 x the second is 11.749999999999998, which `.1f` alone wrote 11.7 beside 11.8
    as_share, as_mean = 47 / 400, math.nextafter(47 / 400, 0)
    assert percent_cell(as_share) == percent_cell(as_mean) == "11.8"
    assert points(as_share) == points(as_mean)


def test_the_reports_say_which_epoch_they_give_when_runs_have_no_validation_split(board):
    assert format_text(board).startswith(  # one condition: no "within each condition"
        "study seeds: 8 trials, ranked by val_balanced_accuracy (max), completed trials before those stopped early"
    )
    assert format_latex(board).splitlines()[0].endswith("over seeds; the epoch selected on validation")
    unvalidated = dataclasses.replace(board, trials=board.trials.assign(objective=math.nan))  # val_per_class: 0
    assert format_latex(unvalidated).splitlines()[0].endswith("over seeds; the last epoch (no validation split)")
    assert "test metrics of the last epoch (no validation split)" in format_text(unvalidated)
    confirmed_without = board.trials["trial"].str.startswith("confirm-")  # the README's confirm.overrides
    mixed = dataclasses.replace(
        board, trials=board.trials.assign(objective=board.trials["objective"].mask(confirmed_without))
    )
    assert "test metrics of the epoch selected on validation, or the last where a run has no validation split" in (
        format_text(mixed)
    )
    side_by_side = format_comparison([board, unvalidated], "table")
    assert side_by_side.startswith("best trial of each study (test metrics of the epoch selected on validation, or ")
    assert "none: no validation split to select on" in side_by_side  # no arbitrary "best" without validation
    assert "(test metrics of the last epoch (no validation split), %)" in comparison_html([unvalidated, unvalidated])
    assert format_text(unvalidated).startswith(
        "study seeds: 8 trials, unranked (no validation split; this tool never ranks on test), by state and name;"
    )
    # a study stopped before any trial completed: the rule its trials' epochs so far will report by
    running = unvalidated.trials.assign(state=TrialState.RUNNING, epochs=2)
    assert "test metrics of the last epoch (no validation split)" in format_text(
        dataclasses.replace(unvalidated, trials=running)
    )


def test_a_trial_without_a_validation_value_has_no_rank_in_any_format(board):
    trials = board.trials.copy()
    confirmed = trials["trial"].str.startswith("confirm-")  # as if they trained with data.val_per_class: 0
    trials["objective"] = trials["objective"].mask(confirmed)
    mixed = dataclasses.replace(board, trials=rank_trials(trials, board.mode))
    unranked = mixed.trials[mixed.trials["trial"].str.startswith("confirm-")]
    assert len(unranked) and unranked["rank"].isna().all()
    ranked = mixed.trials[mixed.trials["objective"].notna()]
    for _, members in ranked.groupby("condition"):
        assert list(members["rank"]) == list(range(1, len(members) + 1))  # no gap where an unranked trial sits
    rows = list(csv.DictReader(io.StringIO(format_csv(mixed))))
    assert {row["rank"] for row in rows if row["trial"].startswith("confirm-")} == {""}
    table = format_text(mixed, width=400).splitlines()
    confirm_rows = [line for line in table if "confirm-" in line and "[confirm]" in line]
    assert confirm_rows and all(not line.lstrip()[:1].isdigit() for line in confirm_rows), confirm_rows


def test_objectives_that_differ_in_the_last_bit_rank_by_name_and_the_best_is_the_first(board):
    from smcl_tune.store.progress import StudyProgress, TrialProgress

    trials = board.trials.head(2).assign(kind="search")
    first, second = sorted(trials["trial"])
    trials["objective"] = [0.5333333333333334 if name == second else 0.5333333333333333 for name in trials["trial"]]
    trials["condition"], trials["state"] = "", TrialState.COMPLETED
    ranked = rank_trials(trials, "max")
    assert list(ranked["trial"]) == [first, second]  # a tie: by name, not by the last bit
    assert dataclasses.replace(board, trials=ranked).best()["trial"] == first
    progress = StudyProgress("val_balanced_accuracy", "max", 2, 1)
    for name, value in ((second, 0.5333333333333334), (first, 0.5333333333333333)):
        progress.add(name, TrialProgress(name, "", "search", TrialState.COMPLETED, 1, 1, value, 1.0))
    assert progress.best()[""].name == first  # `status` names the trial the leaderboard ranks first


def test_a_configuration_sharing_under_two_seeds_with_the_baseline_is_named_under_the_paired_table(board):
    # confirm over seeds 1,2 against baselines over 0,1,2 pairs; over 2,3 it shares one seed and was left out silently
    trials = board.trials.copy()
    confirmed = trials["kind"] == "confirm"
    trials.loc[confirmed, "seed"] = [2, 3][: confirmed.sum()]
    text = format_text(dataclasses.replace(board, trials=trials), width=400)
    paired_title = next(line for line in text.splitlines() if line.startswith("paired differences"))
    assert paired_title.endswith(
        "not paired, fewer than 2 seeds in common: trial-001 [confirm] (imbalance_factor=100): "
        "1 seed in common with ce (seeds 2,3 against 0,1,2)"
    ), paired_title
    assert "smcl" in text.split(paired_title)[1]  # the baseline that pairs keeps its row
    # nothing paired at all: the section says why instead of vanishing
    only_confirm = trials[(trials["kind"] == "confirm") | (trials["configuration"] == "ce")]
    text = format_text(dataclasses.replace(board, trials=only_confirm), width=400)
    after = text.split("paired differences to the baseline 'ce'")[1]
    assert "not paired, fewer than 2 seeds in common: trial-001 [confirm]" in after


def _seed_runs(rows: list[tuple[str, str, int, str, float]]) -> pd.DataFrame:
    """Runs of one condition: (kind, configuration, seed, state, few-shot accuracy); the other
    metrics equal across runs."""
    return pd.DataFrame(
        [
            {"condition": "imbalance_factor=10", "kind": kind, "configuration": configuration, "seed": seed}
            | {"state": state, "test_few": few, "test_top1": 0.5, "test_balanced_accuracy": 0.5}
            | {"test_many": 0.5, "test_medium": 0.5}
            for kind, configuration, seed, state, few in rows
        ]
    )


def test_a_configuration_worse_than_the_baseline_on_every_seed_is_marked_and_failed_runs_are_no_seeds():
    completed = TrialState.COMPLETED
    runs = _seed_runs(
        [("baseline", "ce", seed, completed, few) for seed, few in enumerate([0.20, 0.22, 0.21])]
        + [("confirm", "worse", seed, completed, few) for seed, few in enumerate([0.10, 0.13, 0.10])]
        + [("confirm", "worse", 1, TrialState.FAILED, 0.90), ("confirm", "worse", 3, TrialState.FAILED, 0.90)]
    )
    worse = paired_differences(runs, "ce").set_index("configuration").loc["worse"]
    assert worse["paired_seeds"] == "0,1,2" and 100 * worse["test_few_diff"] == pytest.approx(-10)
    assert 100 * worse["test_few_diff_high"] < 0 and worse["test_few_excludes_0"]  # worse, and the interval says so
    summary = configuration_summary(runs).set_index("configuration").loc["worse"]
    assert summary["seeds"] == "0,1,2" and 100 * summary["test_few_mean"] == pytest.approx(11)
