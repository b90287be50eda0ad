"""Published results beside a study (`leaderboard --reference`)."""

import csv
import io
import logging

import pytest

from smcl_tune.cli import main
from smcl_tune.report.reference import benchmark_of, load_reference, matching
from smcl_tune.results import TrialState
from smcl_tune.tracking.writer import StudyTracker
from tests.fixtures.stores import store_uri

CIFAR10 = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def test_a_study_is_matched_by_benchmark_imbalance_factor_and_backbone():
    assert benchmark_of("cifar100", []) == "CIFAR-100-LT"
    assert benchmark_of("image_folder", list(reversed(CIFAR10))) == "CIFAR-10-LT"  # the JPEG copy of CIFAR-10
    assert benchmark_of("image_folder", ["cat", "dog"]) is None and benchmark_of("synthetic", CIFAR10) is None
    reference = load_reference()
    rows = matching(reference, "CIFAR-10-LT", 100.0, "ResNet-32")
    assert rows["method"].tolist() == ["CE", "LDAM-DRW", "Balanced Softmax", "ProCo"]
    assert rows["top1"].tolist() == [70.4, 77.03, 84.9, 85.9]
    at_10 = matching(reference, "CIFAR-10-LT", 10.0, "ResNet-32")
    assert at_10["method"].tolist() == ["LDAM-DRW"] and at_10["top1"].tolist() == [88.16]  # Cao et al., Table 2
    assert matching(reference, "CIFAR-10-LT", 50.0, "ResNet-32").empty  # no published figure at IF 50
    cifar100 = matching(reference, "CIFAR-100-LT", 100.0, "ResNet-32")
    cmo = cifar100[cifar100["method"].str.endswith("+ CMO")]
    assert dict(zip(cmo["method"], cmo["top1"])) == {"CE + CMO": 43.9, "BS + CMO": 46.6, "LDAM-DRW + CMO": 47.2}
    assert all(source.startswith("Park et al. (CVPR 2022)") for source in cmo["source"])
    assert matching(reference, "CIFAR-100-LT", 10.0, "ResNet-32")["top1"].tolist() == [58.71]
    imagenet = matching(reference, "ImageNet-LT", float("nan"), "ResNet-50")
    assert imagenet["method"].tolist() == ["PaCo"]  # ImageNet-LT as published, with its backbone


TITLE = (
    "published results on CIFAR-10-LT, every imbalance factor and backbone, "
    "beside imbalance_factor=100: CIFAR-10-LT, IF 100, ResNet-32"
)


def _cifar10_store(storage, logged_trial):
    # MLflow's INFO lines making the store (the first in a process) are not the CLI's stderr, which tests read whole
    logging.getLogger("mlflow").setLevel(logging.WARNING)
    tracker = StudyTracker(store_uri(storage), "c10", "c10", "f", storage / "mlartifacts")
    tracker.log_study(None, None, {}, {"smcl.conditions": '["imbalance_factor=100"]'})
    final = {
        "test_top1": 0.5,
        "test_balanced_accuracy": 0.5,
        "test_many": 0.9,
        "test_medium": 0.5,
        "test_few": 0.1,
        "many_classes": 8,
        "medium_classes": 2,
        "few_classes": 0,
    }
    logged_trial(
        tracker,
        "baseline-ce",
        "baseline",
        TrialState.COMPLETED,
        "imbalance_factor=100",
        {},
        [0.4],
        final,
        source="cifar10",
        architecture="resnet32",
    )
    tracker.finish()


def test_the_leaderboard_puts_published_results_beside_the_study(tmp_path, capsys, logged_trial):
    _cifar10_store(tmp_path, logged_trial)
    assert main(["leaderboard", "c10", "--storage", str(tmp_path), "--reference"]) == 0
    out = capsys.readouterr().out
    assert TITLE in out
    assert "never selected on test" in out
    ce = next(line for line in out.splitlines() if line.startswith("CE [published]"))
    assert "200" in ce and "70.4" in ce and "Zhang et al. (AAAI 2021)" in ce
    assert main(["leaderboard", "c10", "--storage", str(tmp_path), "--reference", "--format", "csv"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    published = [row for row in rows if row["kind"] == "published"]
    # every published row of CIFAR-10-LT, ResNet-32, the condition's IF 100 first; LDAM-DRW also at IF 10, last
    assert [row["trial"] for row in published] == ["CE", "LDAM-DRW", "Balanced Softmax", "ProCo", "LDAM-DRW"]
    assert [float(row["imbalance_factor"]) for row in published] == [100, 100, 100, 100, 10]
    assert published[0]["test_top1"] == "0.704"  # written as published, without float noise
    assert published[0]["epochs"] == "200" and all("." not in row["epochs"] for row in rows)  # whole, as without it


def test_the_conditions_own_imbalance_factor_comes_first_whatever_its_backbone(tmp_path, capsys, logged_trial):
    # a walk's small CNN at IF 10: the IF 10 row came after every IF 100 one, as no row had its backbone
    tracker = StudyTracker(store_uri(tmp_path), "c10", "c10", "f", tmp_path / "mlartifacts")
    tracker.log_study(None, None, {}, {"smcl.conditions": '["imbalance_factor=10"]'})
    final = {"test_top1": 0.5, "test_many": 0.9, "test_medium": 0.5, "test_few": 0.1}
    logged_trial(
        tracker,
        "baseline-ce",
        "baseline",
        TrialState.COMPLETED,
        "imbalance_factor=10",
        {},
        [0.4],
        final,
        source="cifar10",
        architecture="small_cnn",
    )
    tracker.finish()
    assert main(["leaderboard", "c10", "--storage", str(tmp_path), "--reference", "--format", "csv"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    published = [row for row in rows if row["kind"] == "published"]
    assert [float(row["imbalance_factor"]) for row in published] == [10, 100, 100, 100, 100]
    # each row's backbone, so that "backbone ResNet-32 (this study small CNN)" can be read off the rows
    assert {row["backbone"] for row in published} == {"ResNet-32"}
    assert [row["backbone"] for row in rows if row["kind"] != "published"] == ["small CNN"]


def test_a_synthetic_study_says_no_published_figure_matches(tmp_path, capsys, build_store):
    build_store(tmp_path)
    assert main(["leaderboard", "lt", "--storage", str(tmp_path), "--reference"]) == 0
    out = capsys.readouterr().out
    assert "published results for imbalance_factor=10: the synthetic background-bias benchmark, IF 10, small CNN" in out
    assert "no published figure matches this study" in out
    assert main(["leaderboard", "lt", "--storage", str(tmp_path), "--reference", "--format", "latex"]) == 0
    assert "% --reference: no published figure matches this study's benchmark" in capsys.readouterr().out


def test_a_users_own_published_results_join_the_shipped_ones(tmp_path, capsys, logged_trial):
    _cifar10_store(tmp_path, logged_trial)
    own = tmp_path / "mine.csv"
    own.write_text(
        "benchmark,imbalance_factor,backbone,method,epochs,top1,many,medium,few,source\n"
        "CIFAR-10-LT,100,ResNet-32,Our lab's CE,200,71.2,,,,lab notebook\n"
    )
    assert main(["leaderboard", "c10", "--storage", str(tmp_path), "--reference", str(own)]) == 0
    said = capsys.readouterr()
    assert "Our lab's CE [published]" in said.out and said.err == ""
    # as a spreadsheet exports it, with blank trailing columns: no column named twice
    own.write_text("\n".join(f"{line},," for line in own.read_text().splitlines()) + "\n")
    assert main(["leaderboard", "c10", "--storage", str(tmp_path), "--reference", str(own)]) == 0
    assert "Our lab's CE [published]" in capsys.readouterr().out
    (tmp_path / "bad.csv").write_text("method,top1\nCE,70\n")
    assert main(["leaderboard", "c10", "--storage", str(tmp_path), "--reference", str(tmp_path / "bad.csv")]) == 2
    assert "missing: benchmark, imbalance_factor, backbone, epochs, many, medium, few, source" in (
        capsys.readouterr().err
    )


HEADER_ONLY = "a header and no rows; add a row of published results under it"


@pytest.mark.parametrize(
    "text, said",
    [
        (
            "",
            "empty; published results need a header line: "
            "benchmark, imbalance_factor, backbone, method, epochs, top1, many, medium, few, source",
        ),
        (
            "benchmark,imbalance_factor,backbone,method,epochs,top1,many,medium,few,source\n"
            "CIFAR-10-LT,abc,ResNet-32,CE,200,71.2,,,,lab\n",
            "line 2, imbalance_factor: 'abc' is not a number from 1 to inf, nor blank",
        ),
        (
            "benchmark,imbalance_factor,backbone,method,epochs,top1,many,medium,few,source\n"
            "CIFAR-10-LT,100,ResNet-32,CE,200,71.2,,,,lab\nCIFAR-10-LT,100,ResNet-32,CE,200,171,,,,lab\n",
            "line 3, top1: 171 is not a number from 0 to 100 (percent), nor blank",
        ),
        (
            "benchmark,imbalance_factor,backbone,method,epochs,top1,many,medium,few,source\n"
            "CIFAR-10-LT,100,ResNet-32,CE,200,71.2,,,,lab\nCIFAR10-LT,100,ResNet-32,CE,200,71,,,,lab\n",
            "line 3, benchmark: 'CIFAR10-LT' is not one a study can be matched to (CIFAR-10-LT, CIFAR-100-LT, "
            "ImageNet-LT); did you mean CIFAR-10-LT?",
        ),
        (
            "benchmark,imbalance_factor,backbone,method,epochs,top1,many,medium,few,source\n"
            "cifar-100-lt,100,ResNet-32,CE,200,41,,,,lab\n",
            "line 2, benchmark: 'cifar-100-lt' is not one a study can be matched to (CIFAR-10-LT, CIFAR-100-LT, "
            "ImageNet-LT); did you mean CIFAR-100-LT?",
        ),
        ("benchmark,imbalance_factor,backbone,method,epochs,top1,many,medium,few,source\n", HEADER_ONLY),
        (
            "benchmark,imbalance_factor,backbone,method,epochs,top1,many,medium,few,source,top1\n"
            "CIFAR-10-LT,100,ResNet-32,CE,200,71.2,,,,lab,70\n",
            "line 1 names the column top1 twice; name each column once",
        ),
        (
            "benchmark,imbalance_factor,backbone,method,epochs,top1,many,medium,few,source\n"
            "CIFAR-10-LT,100,ResNet-32,CE,200,50,,,,me,extra\n",
            "line 2 has 11 fields, the header names 10 columns; quote a field that holds a comma",
        ),
        (
            "benchmark,imbalance_factor,backbone,method,epochs,top1,many,medium,few,source\n"
            "CIFAR-10-LT,100,ResNet-32,CE,200.5,71.2,,,,lab\n",
            "line 2, epochs: 200.5 is not a whole number of epochs",
        ),
    ],
    ids=[
        "empty",
        "a factor that is not a number",
        "a top-1 past 100 percent",
        "a benchmark no study is",
        "lower case",
        "a header and no rows",
        "a column twice",
        "a field too many",
        "a fraction of an epoch",
    ],
)
def test_a_reference_file_that_is_empty_or_holds_a_figure_that_is_not_one_is_refused_in_one_line(
    tmp_path, capsys, logged_trial, text, said
):
    _cifar10_store(tmp_path, logged_trial)
    own = tmp_path / "mine.csv"
    own.write_text(text)
    assert main(["leaderboard", "c10", "--storage", str(tmp_path), "--reference", str(own)]) == 2
    error = capsys.readouterr().err.strip()
    assert error == f"smcl-tune: {own}: {said}", error


def test_a_users_rows_of_another_benchmark_are_named_and_a_backbone_may_be_named_as_the_study_file_does(
    tmp_path, capsys, logged_trial
):
    _cifar10_store(tmp_path, logged_trial)
    own = tmp_path / "mine.csv"
    own.write_text(
        "benchmark,imbalance_factor,backbone,method,epochs,top1,many,medium,few,source\n"
        "CIFAR-10-LT,100,resnet32,Our lab's CE,2,71.2,,,,lab notebook\n"
        "CIFAR-100-LT,100,resnet32,Our lab's CE,200,41.2,,,,lab notebook\n"
        "CIFAR-100-LT,50,resnet32,Our lab's CE,200,45.0,,,,lab notebook\n"
    )
    assert main(["leaderboard", "c10", "--storage", str(tmp_path), "--reference", str(own)]) == 0
    said = capsys.readouterr()
    ours = next(line for line in said.out.splitlines() if line.startswith("Our lab's CE [published]"))
    assert "not comparable" in ours and "backbone" not in ours  # resnet32 is the study's ResNet-32
    assert "41.2" not in said.out
    assert said.err == (
        f"smcl-tune: --reference {own}: 2 of its 3 rows are not shown (2 of CIFAR-100-LT); "
        "this study's data is CIFAR-10-LT\n"
    )
    one = tmp_path / "one.csv"
    one.write_text(own.read_text().splitlines()[0] + "\nCIFAR-100-LT,100,resnet32,Our lab's CE,200,41.2,,,,lab\n")
    assert main(["leaderboard", "c10", "--storage", str(tmp_path), "--reference", str(one)]) == 0
    assert capsys.readouterr().err == (
        f"smcl-tune: --reference {one}: its row is not shown (1 of CIFAR-100-LT); this study's data is CIFAR-10-LT\n"
    )


def test_a_reference_with_studies_side_by_side_is_refused_before_the_store_is_read(tmp_path, capsys):
    # no store in tmp_path: the refusal comes first
    assert main(["leaderboard", "a", "b", "--storage", str(tmp_path), "--reference"]) == 2
    assert capsys.readouterr().err.strip() == (
        "smcl-tune: --reference: studies side by side are shown without published results; "
        "run `smcl-tune leaderboard STUDY --reference` for each"
    )


def test_a_study_without_a_validation_split_on_cifar10_images_still_finds_its_published_rows(tmp_path, capsys):
    # the GPU recipe: CIFAR-10-LT from an image folder (named by its classes), no validation split, so
    # no trial is best: the classes' names come from a completed trial's per-class file
    from smcl_tune.figures.class_accuracy import per_class_csv

    tracker = StudyTracker(store_uri(tmp_path), "recipe", "recipe", "f", tmp_path / "mlartifacts")
    tracker.log_study(None, None, {}, {"smcl.conditions": '["imbalance_factor=100"]'})
    tags = {"smcl.imbalance_factor": "100", "smcl.condition": "imbalance_factor=100", "smcl.source": "image_folder"}
    tags |= {"smcl.architecture": "resnet32", "smcl.configuration": "ce", "smcl.seed": "0"}
    run = tracker.trial_run("k0", "baseline-ce-s0 [imbalance_factor=100]", "baseline", {}, {}, tags)
    final = {"test_top1": 0.5, "test_many": 0.6, "test_medium": 0.3, "epochs_completed": 2, "epoch": 1}
    tracker.log_metrics(run, {**final, "loss": 0.5}, 1, 0)  # no val_* metric: val_per_class 0
    counts = [5000, 2997, 1796, 1077, 645, 387, 232, 139, 83, 50]
    tracker.log_files(run, {"per_class_accuracy.csv": per_class_csv(list(CIFAR10), counts, [0.5] * 10)})
    tracker.end_trial(run, TrialState.COMPLETED, None)
    tracker.finish()
    assert main(["leaderboard", "recipe", "--storage", str(tmp_path), "--reference"]) == 0
    out = capsys.readouterr().out
    assert TITLE in out
    assert "CE [published]" in out and "no published figure matches" not in out


def test_on_a_terminal_the_published_table_fits_its_width_with_its_reasons_as_numbered_notes(tmp_path, logged_trial):
    from smcl_tune.report.leaderboard import load_leaderboard
    from smcl_tune.report.text_table import format_text

    _cifar10_store(tmp_path, logged_trial)
    board = load_leaderboard(store_uri(tmp_path), "c10")
    wide = format_text(board, load_reference())
    assert max(len(line) for line in wide.splitlines()) > 150  # a pipe or a file: every column, as it was
    text = format_text(board, load_reference(), width=100)
    section = text[text.index("published results on CIFAR-10-LT") :]
    assert max(len(line) for line in section.splitlines()) <= 100, section
    ce = next(line for line in section.splitlines() if line.startswith("CE [published]"))
    assert "70.4" in ce and ce.rstrip().endswith("no (1)")  # its reasons: note (1) under the table
    notes = [line for line in section.splitlines() if line.startswith("(")]
    assert notes[0].startswith("(1) this study's subset protocol is not recorded")
    assert "left out to fit 100 columns: source" in section


def test_a_baseline_with_studies_side_by_side_is_refused_before_the_store_is_read(tmp_path, capsys):
    # side by side, each study's best trial is compared with the first's: no baseline pairs anything there
    assert main(["leaderboard", "a", "b", "--storage", str(tmp_path), "--baseline", "ce"]) == 2
    assert capsys.readouterr().err.strip() == (
        "smcl-tune: --baseline: studies side by side are compared best trial against best trial, without paired "
        "differences; run `smcl-tune leaderboard STUDY --baseline NAME` for each"
    )
