"""Leaderboards from a small MLflow store built here with known metrics."""

import csv
import io
import subprocess
import sys

import pytest

from smcl_tune.cli import main
from smcl_tune.errors import StudyNotFound
from smcl_tune.report.csv_table import format_csv
from smcl_tune.report.leaderboard import load_leaderboard
from smcl_tune.report.markdown_table import format_markdown
from smcl_tune.report.text_table import format_text
from smcl_tune.store.paths import default_tracking_uri
from smcl_tune.tracking.writer import StudyTracker
from tests.fixtures.stores import store_uri


@pytest.fixture(scope="module")
def store(tmp_path_factory, build_store):
    storage = tmp_path_factory.mktemp("store")
    return storage, build_store(storage)


def _markdown_rows(markdown: str, table: int = 0) -> list[list[str]]:
    """The cells of the `table`-th Markdown table (header first)."""
    tables = [block for block in markdown.split("\n\n") if block.startswith("|")]
    lines = [line for line in tables[table].splitlines() if not line.startswith("|--") and not line.startswith("|:")]
    return [[cell.strip() for cell in line.strip("|").split("|")] for line in lines if not set(line) <= set("|-:")]


def test_table_gives_the_numbers_ranks_and_conditions(store):
    text = format_text(load_leaderboard(store[1], "lt"))
    lines = text.splitlines()
    assert "never selects on test" in lines[0] and "'last': of the last epoch" in lines[0]
    assert lines[0].startswith("study lt: 6 trials, ranked by val_balanced_accuracy (max) within each condition,")
    rule = "(many / medium / few) (many: > 30 training images, few: < 10)"
    assert (
        lines[1]
        == f"condition imbalance_factor=10: shot groups 3 / 2 / 0 classes {rule}; bg→many of uniform guessing 60.0%"
    )
    assert (
        lines[2]
        == f"condition imbalance_factor=100: shot groups 2 / 2 / 1 classes {rule}; bg→many of uniform guessing 40.0%"
    )
    assert lines[3].startswith("bg→many: the share of the test images with their salient box erased")
    rows = _markdown_rows(format_markdown(load_leaderboard(store[1], "lt")))
    header, rows = rows[0], rows[1:]
    assert header == [
        "rank",
        "condition",
        "trial",
        "state",
        "val objective",
        "top-1",
        "balanced",
        "many",
        "medium",
        "few",
        "last top-1",
        "last few",
        "bg→many",
        "temperature",
        "epochs",
        "wall s",
    ]
    assert rows[0] == [
        "1",
        "imbalance_factor=10",
        "trial-003",
        "completed",
        "90.0",
        "88.0",
        "87.0",
        "90.0",
        "80.0",
        "n/a",
        "86.0",
        "n/a",
        "72.0",
        "0.2",
        "3",
        "12",
    ]
    assert rows[1][:4] == ["2", "imbalance_factor=10", "trial-004", "failed: non-finite loss (nan) in epoch 1"]
    assert [row[:4] for row in rows[2:]] == [
        ["1", "imbalance_factor=100", "trial-001", "completed"],
        ["2", "imbalance_factor=100", "trial-000", "completed"],
        ["3", "imbalance_factor=100", "baseline-ce [baseline]", "completed"],
        ["4", "imbalance_factor=100", "trial-002", "pruned"],
    ]
    assert rows[2][4:12] == ["71.0", "60.0", "60.0", "85.0", "55.0", "25.0", "60.0", "25.0"]
    assert rows[5][4:] == ["20.0", "", "", "", "", "", "", "", "", "0.05", "1", ""]  # pruned: no test metrics


def test_csv_keeps_raw_values(store):
    csv_lines = format_csv(load_leaderboard(store[1], "lt")).splitlines()
    assert csv_lines[0].startswith(
        "rank,condition,imbalance_factor,trial,kind,configuration,seed,state,reason,objective,test_top1,"
    )
    assert csv_lines[0].endswith(",epochs,wall_s,temperature")
    first = csv_lines[1].split(",")
    assert first[:12] == [
        "1",
        "imbalance_factor=10",
        "10.0",
        "trial-003",
        "search",
        "",
        "0",  # a seed, written as the whole number it is
        "completed",
        "",
        "0.9",
        "0.88",
        "0.87",
    ]
    assert csv_lines[5].split(",")[:5] == ["3", "imbalance_factor=100", "100.0", "baseline-ce", "baseline"]


def test_csv_writes_counts_as_whole_numbers(store):
    rows = list(csv.DictReader(io.StringIO(format_csv(load_leaderboard(store[1], "lt")))))
    for column in ("rank", "seed", "epochs", "many_classes"):
        assert all(row[column] == "" or row[column].isdigit() for row in rows), [row[column] for row in rows]


def test_a_baseline_without_a_configuration_of_two_seeds_says_why_no_differences_appear(store, capsys):
    assert main(["leaderboard", "lt", "--storage", str(store[0]), "--baseline", "ce"]) == 0
    said = capsys.readouterr()
    assert "paired differences" not in said.out
    assert "study lt: no paired differences to 'ce': a difference needs a configuration that shares at least two" in (
        said.err
    )


def test_cli_formats_and_output_file(store, tmp_path, capsys):
    storage, _ = store
    assert main(["leaderboard", "lt", "--storage", str(storage)]) == 0
    assert "trial-003" in capsys.readouterr().out
    out = tmp_path / "lt.md"
    assert main(["leaderboard", "lt", "--storage", str(storage), "--format", "markdown", "--output", str(out)]) == 0
    assert out.read_text().startswith("## study lt: 6 trials")
    capsys.readouterr()
    for fmt in ("table", "csv", "markdown", "latex"):  # the file holds what the same command prints
        written = tmp_path / f"lt.{fmt}"
        assert main(["leaderboard", "lt", "--storage", str(storage), "--format", fmt, "--output", str(written)]) == 0
        assert main(["leaderboard", "lt", "--storage", str(storage), "--format", fmt]) == 0
        assert written.read_text() == capsys.readouterr().out.split("\n", 1)[1], fmt  # less the line "wrote ..."


def test_an_output_of_a_special_file_or_a_link_is_written_through(store, tmp_path):
    storage, _ = store
    (tmp_path / "reports").mkdir()
    (tmp_path / "latest.csv").symlink_to(tmp_path / "reports" / "lt.csv")
    command = [sys.executable, "-m", "smcl_tune.cli", "leaderboard", "lt", "--storage", str(storage), "--format", "csv"]
    to_stdout = subprocess.run([*command, "--output", "/dev/stdout"], capture_output=True, text=True, timeout=120)
    assert to_stdout.returncode == 0, to_stdout.stderr
    assert to_stdout.stdout.startswith("rank,condition,") and "wrote /dev/stdout" in to_stdout.stdout
    link = tmp_path / "latest.csv"
    through_link = subprocess.run([*command, "--output", str(link)], capture_output=True, timeout=120)
    assert through_link.returncode == 0
    assert link.is_symlink() and (tmp_path / "reports" / "lt.csv").read_text().startswith("rank,condition,")


def test_an_output_whose_folder_is_missing_is_one_line_and_exit_2(store, tmp_path, capsys):
    storage, _ = store
    output = tmp_path / "reports" / "lt.html"
    assert main(["leaderboard", "lt", "--storage", str(storage), "--format", "html", "--output", str(output)]) == 2
    error = capsys.readouterr().err.strip()
    assert error == f"smcl-tune: --output {output}: its folder {output.parent} does not exist; make it first"
    assert not output.parent.exists()


def test_several_studies_side_by_side_with_differences(tmp_path, capsys, build_store, logged_trial):
    storage = tmp_path / "two"
    build_store(storage, "smcl")
    uri = default_tracking_uri(storage)
    tracker = StudyTracker(uri, "ce", "ce", "def", storage / "mlartifacts")
    tracker.log_study(None, None, {}, {"smcl.objective_metric": "val_balanced_accuracy", "smcl.objective_mode": "max"})
    logged_trial(
        tracker,
        "baseline-ce",
        "baseline",
        "completed",
        "imbalance_factor=100",
        {"name": "ce"},
        [0.4],
        {
            "selected_val_balanced_accuracy": 0.4,
            "test_top1": 0.5,
            "test_balanced_accuracy": 0.5,
            "test_many": 0.95,
            "test_medium": 0.4,
            "test_few": 0.1,
            "many_classes": 2,
            "medium_classes": 2,
            "few_classes": 1,
        },
    )
    assert main(["leaderboard", "ce", "smcl", "--storage", str(storage)]) == 0
    out = capsys.readouterr().out
    # smcl has trials at IF 10 and 100: compared per factor, its IF 100 best against ce (its best
    # overall, trial-003, is of IF 10, where ce has no trial: shown alone, no difference)
    assert out.startswith("best trial of each study, per imbalance factor (test metrics of the epoch selected")
    lines = [line.split("  ") for line in out.strip().splitlines()]
    rows = [[cell.strip() for cell in line if cell.strip()] for line in lines[4:]]  # title, header, rule
    assert rows[0] == [
        "100",
        "ce",
        "baseline-ce [imbalance_factor=100]",
        "40.0",
        "50.0",
        "50.0",
        "95.0",
        "40.0",
        "10.0",
    ]
    assert rows[1][:3] == ["100", "smcl", "trial-001 [imbalance_factor=100]"]
    assert rows[2] == ["100", "smcl - ce", "difference", "+10.0", "+10.0", "-10.0", "+15.0", "+15.0"]
    assert rows[3][:3] == ["10", "smcl", "trial-003 [imbalance_factor=10]"] and len(rows) == 4
    assert rows[3][-1] == "n/a"  # trial-003 has an empty few-shot group
    assert "note:" not in out  # at IF 100 the studies' shot groups agree

    # the CSV as a single study's: raw fractions, an empty cell for a missing value
    assert main(["leaderboard", "ce", "smcl", "--storage", str(storage), "--format", "csv"]) == 0
    table = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [(row["imbalance_factor"], row["study"], row["row"], row["trial"]) for row in table] == [
        ("100", "ce", "best", "baseline-ce"),
        ("100", "smcl", "best", "trial-001"),
        ("100", "smcl", "difference to ce", ""),
        ("10", "smcl", "best", "trial-003"),
    ]
    assert float(table[2]["test_top1"]) == pytest.approx(0.10) and table[3]["test_few"] == ""

    # LaTeX, for a paper: each study's configurations over seeds, not its best trial of one seed
    assert main(["leaderboard", "ce", "smcl", "--storage", str(storage), "--format", "latex"]) == 0
    latex = capsys.readouterr().out
    assert [line.split(":")[0] for line in latex.splitlines() if line.startswith("% ")] == ["% ce", "% smcl"]
    assert latex.count(r"\begin{tabular}") == 2 and "trial-001" not in latex

    # studies of one factor each are compared as they are, with a note where their data differ
    tracker = StudyTracker(uri, "ce10", "ce10", "def", storage / "mlartifacts")
    tracker.log_study(None, None, {}, {"smcl.objective_metric": "val_balanced_accuracy", "smcl.objective_mode": "max"})
    groups = {"many_classes": 3, "medium_classes": 2, "few_classes": 0}
    final = {"selected_val_balanced_accuracy": 0.6, "test_top1": 0.7, "test_many": 0.9, "test_medium": 0.6, **groups}
    logged_trial(tracker, "baseline-ce", "baseline", "completed", "imbalance_factor=10", {}, [0.6], final)
    assert main(["leaderboard", "ce", "ce10", "--storage", str(storage)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("best trial of each study (test metrics of") and "imbalance factor  " not in out
    assert "ce10 - ce" in out
    assert out.rstrip().endswith(
        "note: the best trials' shot groups differ (ce 2/2/1, ce10 3/2/0 many/medium/few classes): the studies "
        "train on different data, so a difference compares their benchmarks as much as their methods"
    )


@pytest.mark.parametrize("source, n_max", [("cifar10", "default"), ("cifar10", "40"), ("synthetic", "default")])
def test_studies_whose_shot_groups_differ_only_by_their_thresholds_say_so(
    tmp_path, capsys, logged_trial, source, n_max
):
    """Two studies of one data set, their shot groups drawn at other `many_above`: their top-1 and
    balanced accuracy compare, their many / medium / few columns do not; another subset is other
    data, and so may be synthetic images (their settings are not recorded)."""
    storage = tmp_path / "thresholds"
    uri = store_uri(storage)
    subset = {"smcl.subset_protocol": "ldam", "smcl.profile": "exp", "smcl.subset_seed": "0"}
    for study, many_above, groups, subset_n_max in (
        ("g30", "30", (3, 2, 0), "default"),
        ("g100", "100", (1, 4, 0), n_max),
    ):
        tracker = StudyTracker(uri, study, study, "def", storage / "mlartifacts")
        tracker.log_study(
            None, None, {}, {"smcl.objective_metric": "val_balanced_accuracy", "smcl.objective_mode": "max"}
        )
        final = {
            "selected_val_balanced_accuracy": 0.6,
            "test_top1": 0.7,
            "test_many": 0.9,
            "test_medium": 0.6,
            **dict(zip(("many_classes", "medium_classes", "few_classes"), groups)),
        }
        tags = subset | {"smcl.many_above": many_above, "smcl.n_max": subset_n_max}
        logged_trial(
            tracker,
            "baseline-ce",
            "baseline",
            "completed",
            "imbalance_factor=10",
            {},
            [0.6],
            final,
            source=source,
            tags=tags,
        )
    assert main(["leaderboard", "g30", "g100", "--storage", str(storage)]) == 0
    note = capsys.readouterr().out.rstrip().splitlines()[-1]
    if (source, n_max) == ("cifar10", "default"):
        assert note == (
            "note: the best trials' shot groups are drawn at other thresholds (g30 many above 30, few below 10; "
            "g100 many above 100, few below 10): on the same data, their many, medium and few columns count other "
            "classes and do not compare; top-1 and balanced accuracy do"
        )
    else:
        assert note.startswith("note: the best trials' shot groups differ (g30 3/2/0, g100 1/4/0 many/medium/few")


def test_side_by_side_is_per_factor_only_where_completed_trials_share_one(tmp_path, capsys, logged_trial):
    storage = tmp_path / "three"
    uri = store_uri(storage)
    final = {"selected_val_balanced_accuracy": 0.5, "test_top1": 0.5, "test_many": 0.9, "test_medium": 0.5}
    for study, trials in {
        "a": [("imbalance_factor=100", "completed")],
        "b": [("imbalance_factor=100", "completed"), ("imbalance_factor=10", "failed")],  # failed: no best there
        "c": [("imbalance_factor=50", "completed"), ("imbalance_factor=10", "completed")],
    }.items():
        tracker = StudyTracker(uri, study, study, "def", storage / "mlartifacts")
        tracker.log_study(None, None, {}, {})
        for number, (condition, state) in enumerate(trials):
            logged_trial(tracker, f"trial-00{number}", "search", state, condition, {}, [0.5], final)
        tracker.finish()
    # a failed trial at another factor does not make b a study of two factors
    assert main(["leaderboard", "a", "b", "--storage", str(storage)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("best trial of each study (test metrics") and "b - a" in out and "10]" not in out
    # c has two factors but shares none with a: compared whole, as studies of one factor each
    assert main(["leaderboard", "a", "c", "--storage", str(storage)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("best trial of each study (test metrics") and "c - a" in out


def test_unknown_and_empty_studies_and_missing_store(store, tmp_path, capsys):
    storage, uri = store
    with pytest.raises(StudyNotFound, match=r"studies there: lt"):
        load_leaderboard(uri, "nope")
    assert main(["leaderboard", "nope", "--storage", str(storage)]) == 2
    assert "no study named 'nope'" in capsys.readouterr().err
    empty = StudyTracker(uri, "empty", "empty", "x", storage / "mlartifacts")
    empty.finish()
    assert main(["leaderboard", "empty", "--storage", str(storage)]) == 1
    assert "has no trials yet" in capsys.readouterr().err
    assert main(["leaderboard", "lt", "--storage", str(tmp_path / "none")]) == 2
    assert "no MLflow store there" in capsys.readouterr().err


def test_a_corrupt_mlflow_store_fails_the_leaderboard_with_one_line(tmp_path, capsys):
    storage = tmp_path / "runs"
    storage.mkdir()
    (storage / "mlflow.db").write_bytes(b"this is not an sqlite database" * 100)
    assert main(["leaderboard", "any", "--storage", str(storage)]) == 1
    error = capsys.readouterr().err.strip()
    assert error.startswith(f"smcl-tune: {storage / 'mlflow.db'}: cannot read the MLflow store")
    assert "Traceback" not in error and len(error.splitlines()) == 1


def test_a_corrupt_optuna_store_fails_the_html_leaderboard_with_one_line(tmp_path, capsys, build_store):
    storage, optuna_db = tmp_path / "store", tmp_path / "optuna.db"
    build_store(storage, optuna_storage=f"sqlite:///{optuna_db}")
    optuna_db.write_bytes(b"garbage" * 500)
    assert (
        main(["leaderboard", "lt", "--storage", str(storage), "--format", "html", "--output", str(tmp_path / "r.html")])
        == 1
    )
    error = capsys.readouterr().err.strip()
    assert error.startswith(f"smcl-tune: {optuna_db}: cannot read the Optuna study")
    assert len(error.splitlines()) == 1


@pytest.mark.parametrize(("study_run", "shown"), [("RUNNING", "running"), ("KILLED", "interrupted")])
def test_a_trial_left_running_by_a_study_that_stopped_is_interrupted(tmp_path, study_run, shown):
    """As `smcl-tune status` says: the table `run` printed after Ctrl-C called them running."""
    tracker = StudyTracker(store_uri(tmp_path), "cut", "cut", "fp", tmp_path / "mlartifacts")
    tracker.log_study(None, None, {}, {"smcl.objective_metric": "val_balanced_accuracy", "smcl.objective_mode": "max"})
    run_id = tracker.trial_run("trial-000", "trial-000", "search", {"temperature": 0.1}, {})
    tracker.log_metrics(run_id, {"val_balanced_accuracy": 0.5, "epoch": 0}, 0, 0)
    if study_run != "RUNNING":
        tracker.client.set_terminated(tracker.parent_run_id, status=study_run)  # what Ctrl-C leaves
    board = load_leaderboard(default_tracking_uri(tmp_path), "cut")
    assert board.trials["state"].tolist() == [shown]
    assert f"trial-000  {shown}" in format_text(board, width=None)


def test_a_study_named_twice_side_by_side_is_refused(tmp_path, capsys):
    # a study beside itself would show a difference of +0.0 to itself
    assert main(["leaderboard", "a", "b", "a", "--storage", str(tmp_path)]) == 2
    assert capsys.readouterr().err.strip() == "smcl-tune: leaderboard: study 'a' is named twice; name each study once"
