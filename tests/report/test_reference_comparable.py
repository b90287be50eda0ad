"""`leaderboard --reference` says which published rows a study can be compared with, and why not
(issue 26): dataset, imbalance factor, backbone, subset (protocol, n_max, profile, seed) and epochs
must match."""

import csv
import io
import json
import time

import pytest

from smcl_tune.cli import main
from smcl_tune.results import TrialState
from smcl_tune.tracking.tags import (
    ARCHITECTURE_TAG,
    CONDITION_TAG,
    CONFIGURATION_TAG,
    EPOCHS_TAG,
    IMBALANCE_FACTOR_TAG,
    N_MAX_TAG,
    PROFILE_TAG,
    SEED_TAG,
    SOURCE_TAG,
    SUBSET_PROTOCOL_TAG,
    SUBSET_SEED_TAG,
)
from smcl_tune.tracking.writer import StudyTracker
from tests.fixtures.stores import store_uri

AS_PUBLISHED = {"factor": "100", "protocol": "ldam", "n_max": "default", "profile": "exp", "epochs": "200"}
ELSEWHERE = {"factor": "10", "protocol": "seeded", "n_max": "1000", "profile": "exp", "seed": "0", "epochs": "20"}
STEP = {**AS_PUBLISHED, "profile": "step"}  # Cao et al.'s other CIFAR-LT: half the classes at n_max / IF
BEFORE_PROFILES = {k: v for k, v in AS_PUBLISHED.items() if k != "profile"}  # a store written before its tag
BEFORE_SEEDS = {k: v for k, v in ELSEWHERE.items() if k not in ("profile", "seed")}


def _store(storage, seeds: tuple[int, ...] = (0,), conditions: tuple[str, ...] = ("published", "elsewhere")) -> None:
    """A CIFAR-10-LT study, ResNet-32: one condition as published, one on another subset and budget
    (and, where named, one on the step profile, one recorded before profiles were); its CE baseline
    over `seeds`."""
    tracker = StudyTracker(store_uri(storage), "c10", "c10", "f", storage / "mlartifacts")
    tracker.log_study(None, None, {}, {"smcl.conditions": json.dumps(list(conditions))})
    settings = {"published": AS_PUBLISHED, "elsewhere": ELSEWHERE, "step": STEP}
    settings |= {"before": BEFORE_PROFILES, "before seeded": BEFORE_SEEDS}
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
        recorded = {PROFILE_TAG: setting.get("profile"), SUBSET_SEED_TAG: setting.get("seed")}
        tags |= {tag: value for tag, value in recorded.items() if value is not None}
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
        "subset ldam, n_max 5000 (this study seeded, seed 0, n_max 1000); 200 epochs (this study 20)"
    )
    assert main(["leaderboard", "c10", "--storage", str(tmp_path), "--reference"]) == 0
    out = capsys.readouterr().out
    assert "not comparable: imbalance factor 100 (this study 10); subset ldam" in out


def _comparable(tmp_path, capsys, *extra: str) -> dict[str, dict[str, str]]:
    """Each condition's published rows, by method: their `comparable` (of a method's first row, the one
    of the condition's own imbalance factor where there is one)."""
    assert main(["leaderboard", "c10", "--storage", str(tmp_path), "--reference", *extra, "--format", "csv"]) == 0
    rows = [row for row in csv.DictReader(io.StringIO(capsys.readouterr().out)) if row["kind"] == "published"]
    found: dict[str, dict[str, str]] = {}
    for row in rows:
        found.setdefault(row["condition"], {}).setdefault(row["trial"], row["comparable"])
    return found


def test_a_study_on_the_step_profile_is_not_compared_with_the_long_tailed_rows(tmp_path, capsys):
    _store(tmp_path, conditions=("published", "step", "before", "before seeded"))
    found = _comparable(tmp_path, capsys)
    assert found["published"]["CE"] == "yes"
    assert found["step"]["CE"] == "not comparable: exp profile (this study step profile)"
    assert found["before"]["CE"] == "not comparable: this study's imbalance profile is not recorded"
    own = tmp_path / "mine.csv"
    own.write_text(
        "benchmark,imbalance_factor,backbone,method,epochs,top1,many,medium,few,source,subset_protocol,n_max\n"
        "CIFAR-10-LT,10,ResNet-32,Mine,20,61.5,,,,lab,seeded,1000\n"
    )
    found = _comparable(tmp_path, capsys, str(own))
    assert found["before seeded"]["Mine"] == (
        "not comparable: this study's imbalance profile and subset seed are not recorded"
    )


def test_a_users_rows_name_the_subset_they_trained_on(tmp_path, capsys):
    _store(tmp_path)
    own = tmp_path / "mine.csv"
    header = "benchmark,imbalance_factor,backbone,method,epochs,top1,many,medium,few,source"
    own.write_text(
        f"{header},subset_protocol,n_max,profile,subset_seed\n"
        "CIFAR-10-LT,10,resnet32,Mine,20,61.5,,,,lab,seeded,1000,exp,0\n"
        "CIFAR-10-LT,10,resnet32,Mine other seed,20,61.0,,,,lab,seeded,1000,,1\n"
        "CIFAR-10-LT,100,resnet32,Mine as published,200,71.0,,,,lab,,,,\n"
    )
    found = _comparable(tmp_path, capsys, str(own))
    assert found["elsewhere"]["Mine"] == "yes"
    assert found["elsewhere"]["Mine other seed"] == (
        "not comparable: subset seeded, seed 1 (this study seeded, seed 0)"
    )
    assert found["published"]["Mine as published"] == "yes"  # blank: the benchmark's published subset
    assert found["published"]["Mine"].startswith("not comparable: imbalance factor 10 (this study 100); ")
    assert "subset seeded, seed 0, n_max 1000 (this study ldam, n_max 5000)" in found["published"]["Mine"]


@pytest.mark.parametrize(
    ("columns", "values", "refusal"),
    [
        ("profile", "steps", "line 2, profile: 'steps' is not a value of data.profile (input should be 'exp' or"),
        ("subset_protocol", "cui", "line 2, subset_protocol: 'cui' is not a value of data.subset_protocol"),
        ("n_max", "1.5", "line 2, n_max: '1.5' is not a value of data.n_max (input should be a valid integer"),
        ("n_max", "inf", "line 2, n_max: 'inf' is not a value of data.n_max (input should be a finite number)"),
        ("n_max", "True", "line 2, n_max: 'True' is not a value of data.n_max"),
        ("subset_protocol,subset_seed", "seeded,4294967296", "line 2, subset_seed: '4294967296' is not a value"),
        ("subset_protocol,subset_seed", "ldam,3", "line 2, subset_seed: only a seeded subset has one"),
        ("n-max", "1000", "column 'n-max': did you mean n_max?"),  # ignored, its rows would be the published subset
    ],
)
def test_a_users_subset_that_is_not_one_a_study_can_train_on_is_refused_naming_its_line(
    tmp_path, capsys, columns, values, refusal
):
    own = tmp_path / "mine.csv"
    own.write_text(
        f"benchmark,imbalance_factor,backbone,method,epochs,top1,many,medium,few,source,{columns}\n"
        f"CIFAR-10-LT,100,ResNet-32,Mine,200,71.5,,,,lab,{values}\n"
    )
    # refused before the study's store is read: no store is made
    assert main(["leaderboard", "c10", "--storage", str(tmp_path), "--reference", str(own)]) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith(f"smcl-tune: {own}: {refusal}") and len(error.splitlines()) == 1, error


def test_a_subset_on_a_benchmark_used_as_published_is_refused(tmp_path, capsys):
    own = tmp_path / "mine.csv"
    own.write_text(
        "benchmark,imbalance_factor,backbone,method,epochs,top1,many,medium,few,source,profile\n"
        "ImageNet-LT,,ResNet-50,Mine,90,51.5,,,,lab,step\n"
    )
    # refused before the study's store is read: no store is made
    assert main(["leaderboard", "c10", "--storage", str(tmp_path), "--reference", str(own)]) == 2
    assert capsys.readouterr().err.strip() == (
        f"smcl-tune: {own}: line 2, profile: ImageNet-LT is used as published (no subset is drawn); leave it blank"
    )
    own.write_text(own.read_text().replace("ImageNet-LT", "CIFAR10-LT"))  # the benchmark's own error first
    assert main(["leaderboard", "c10", "--storage", str(tmp_path), "--reference", str(own)]) == 2
    assert "line 2, benchmark: 'CIFAR10-LT' is not one" in capsys.readouterr().err


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
