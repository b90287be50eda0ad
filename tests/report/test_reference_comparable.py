"""`leaderboard --reference` says which published rows a study can be compared with, and why not
(issue 26): dataset, imbalance factor, backbone, subset protocol and epochs must match."""

import csv
import io
import json
import time

from smcl_tune.cli import main
from smcl_tune.results import TrialState
from smcl_tune.tracking.tags import (
    ARCHITECTURE_TAG,
    CONDITION_TAG,
    CONFIGURATION_TAG,
    EPOCHS_TAG,
    IMBALANCE_FACTOR_TAG,
    N_MAX_TAG,
    SEED_TAG,
    SOURCE_TAG,
    SUBSET_PROTOCOL_TAG,
)
from smcl_tune.tracking.writer import StudyTracker
from tests.fixtures.stores import store_uri

AS_PUBLISHED = {"factor": "100", "protocol": "ldam", "n_max": "default", "epochs": "200"}
ELSEWHERE = {"factor": "10", "protocol": "seeded", "n_max": "1000", "epochs": "20"}


def _store(storage, seeds: tuple[int, ...] = (0,), conditions: tuple[str, ...] = ("published", "elsewhere")) -> None:
    """A CIFAR-10-LT study, ResNet-32: one condition as published, one on another subset and budget;
    its CE baseline over `seeds`."""
    tracker = StudyTracker(store_uri(storage), "c10", "c10", "f", storage / "mlartifacts")
    tracker.log_study(None, None, {}, {"smcl.conditions": json.dumps(list(conditions))})
    settings = {"published": AS_PUBLISHED, "elsewhere": ELSEWHERE}
    for condition, setting in ((condition, settings[condition]) for condition in conditions):
        tags = {
            CONDITION_TAG: condition,
            SOURCE_TAG: "cifar10",
            ARCHITECTURE_TAG: "resnet32",
            IMBALANCE_FACTOR_TAG: setting["factor"],
            SUBSET_PROTOCOL_TAG: setting["protocol"],
            N_MAX_TAG: setting["n_max"],
            EPOCHS_TAG: setting["epochs"],
        }
        for seed in seeds:
            name = f"baseline-ce{f'-s{seed}' if len(seeds) > 1 else ''} [{condition}]"
            seeded = {**tags, CONFIGURATION_TAG: "ce", SEED_TAG: str(seed)} if len(seeds) > 1 else tags
            run = tracker.trial_run(f"{condition}/ce/{seed}", name, "baseline", {}, {}, seeded)
            metrics = {"test_top1": 0.7 + seed / 100, "val_balanced_accuracy": 0.7}
            tracker.log_metrics(run, metrics, 0, int(time.time() * 1000))
            tracker.end_trial(run, TrialState.COMPLETED)
    tracker.finish()


def test_published_rows_are_marked_comparable_only_when_everything_matches(tmp_path, capsys):
    _store(tmp_path)
    assert main(["leaderboard", "c10", "--storage", str(tmp_path), "--reference", "--format", "csv"]) == 0
    rows = [row for row in csv.DictReader(io.StringIO(capsys.readouterr().out)) if row["kind"] == "published"]
    published = [(row["trial"], row["comparable"]) for row in rows if row["condition"] == "published"]
    assert published == [
        ("CE", "yes"),
        ("LDAM-DRW", "yes"),
        ("Balanced Softmax", "yes"),
        ("ProCo", "yes"),
        ("LDAM-DRW", "not comparable: imbalance factor 10 (this study 100)"),  # another factor: last
    ]
    elsewhere = {row["trial"]: row["comparable"] for row in rows if row["condition"] == "elsewhere"}
    assert elsewhere["CE"] == (
        "not comparable: imbalance factor 100 (this study 10); "
        "subset seeded, n_max 1000 (published: ldam, n_max 5000); 200 epochs (this study 20)"
    )
    assert main(["leaderboard", "c10", "--storage", str(tmp_path), "--reference"]) == 0
    out = capsys.readouterr().out
    assert "not comparable: imbalance factor 100 (this study 10); subset seeded" in out


def test_a_study_without_recorded_protocol_or_epochs_is_not_called_comparable(tmp_path, capsys, logged_trial):
    tracker = StudyTracker(store_uri(tmp_path), "old", "old", "f", tmp_path / "mlartifacts")
    tracker.log_study(None, None, {}, {})
    final = {"test_top1": 0.5, "test_balanced_accuracy": 0.5, "test_many": 0.9, "test_medium": 0.5}
    logged_trial(
        tracker,
        "ce",
        "baseline",
        "completed",
        "imbalance_factor=100",
        {},
        [0.4],
        final,
        source="cifar10",
        architecture="resnet32",
    )  # a store written before these tags existed
    tracker.finish()
    assert main(["leaderboard", "old", "--storage", str(tmp_path), "--reference", "--format", "csv"]) == 0
    rows = [row for row in csv.DictReader(io.StringIO(capsys.readouterr().out)) if row["kind"] == "published"]
    unrecorded = "this study's subset protocol is not recorded; this study's epochs are not recorded"
    assert {row["comparable"] for row in rows} == {
        f"not comparable: {unrecorded}",
        f"not comparable: imbalance factor 10 (this study 100); {unrecorded}",  # LDAM-DRW's IF 10 row
    }


def test_the_latex_table_puts_each_conditions_comparable_published_rows_under_it(tmp_path, capsys):
    _store(tmp_path, seeds=(0, 1))
    assert main(["leaderboard", "c10", "--storage", str(tmp_path), "--reference", "--format", "latex"]) == 0
    latex = capsys.readouterr().out
    blocks = {block.split("}", 1)[0]: block for block in latex.split(r"\emph{")[1:]}
    published, elsewhere = blocks["published"], blocks["elsewhere"]
    assert latex.splitlines()[1].startswith("% (published): published figures are usually the best epoch on the test")
    assert r"ce & 70.5 $\pm$ 0.7" in published  # the condition's one configuration: no other row to beat
    assert r"CE (published) & 70.4 & -- & -- & -- \\ % Zhang et al. (AAAI 2021)" in published
    assert "% left out: LDAM-DRW [published], not comparable: imbalance factor 10 (this study 100)" in published
    # nothing published is comparable with the other subset and budget: every row a comment
    assert "(published) &" not in elsewhere and elsewhere.count("% left out: ") == 5


def test_a_study_of_one_named_condition_gets_its_published_rows_in_latex_and_csv(tmp_path, capsys):
    # one condition: the report is not grouped, but the rows are still keyed by the condition's label
    _store(tmp_path, seeds=(0, 1), conditions=("published",))
    assert main(["leaderboard", "c10", "--storage", str(tmp_path), "--reference", "--format", "latex"]) == 0
    latex = capsys.readouterr().out
    assert r"CE (published) & 70.4 & -- & -- & -- \\ % Zhang et al. (AAAI 2021)" in latex
    assert latex.splitlines()[1].startswith("% (published): ")
    assert main(["leaderboard", "c10", "--storage", str(tmp_path), "--reference", "--format", "csv"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert {row["condition"] for row in rows} == {"published"}  # the trials' and the published rows' alike


def test_a_users_row_without_a_source_or_with_a_line_break_in_it_is_shown_in_every_format(tmp_path, capsys):
    _store(tmp_path, seeds=(0, 1), conditions=("published",))
    own = tmp_path / "mine.csv"
    own.write_text(
        "benchmark,imbalance_factor,backbone,method,epochs,top1,many,medium,few,source\n"
        "CIFAR-10-LT,100,ResNet-32,Mine,200,71.5,,,,\n"
        'CIFAR-10-LT,100,ResNet-32,$\\tau$-norm {x},200,72.5,,,,"two\nlines"\n'
    )
    for fmt in ("table", "markdown", "csv", "html", "latex"):
        assert main(["leaderboard", "c10", "--storage", str(tmp_path), "--reference", str(own), "--format", fmt]) == 0
        assert "Mine" in capsys.readouterr().out, fmt
    main(["leaderboard", "c10", "--storage", str(tmp_path), "--reference", str(own), "--format", "latex"])
    latex = capsys.readouterr().out
    assert "Mine (published) & 71.5 & -- & -- & -- \\\\ % \n" in latex
    assert r"\$\textbackslash{}tau\$-norm \{x\} (published) & 72.5 & -- & -- & -- \\ % two lines" in latex
    own.write_text(
        "benchmark,imbalance_factor,backbone,method,epochs,top1,many,medium,few,source\nCIFAR-10-LT,100,ResNet-32,,200,71.5,,,,lab\n"
    )
    assert main(["leaderboard", "c10", "--storage", str(tmp_path), "--reference", str(own)]) == 2
    assert (
        capsys.readouterr().err.strip()
        == f"smcl-tune: {own}: line 2, method: blank; each published row names its method"
    )
