"""A study's fingerprint ties its saved state to its study file: a fingerprint that changed with the
code would refuse every saved study of that file on resume. These were computed by smcl-tune before
the search space was typed (commit 3929dc4)."""

from pathlib import Path

import pytest

from smcl_tune.studyfile.study import load_study, study_from_dict

STUDIES = Path(__file__).resolve().parents[2] / "studies"
PINNED = {
    "name": "pinned",
    "trial": {"method": {"name": "smcl"}, "training": {"epochs": 8}},
    "search": {  # whole-number bounds of a float field stay as written
        "method.temperature": {"loguniform": [0.05, 0.5]},
        "method.loss_weight": {"uniform": [0, 2]},
        "training.batch_size": {"logint": [16, 256]},
        "method.mask_start_epoch": {"int": [0, 2]},
        "method.fill": {"choice": ["mean", "zero"]},
    },
    "num_trials": 4,
}


def test_a_study_with_every_kind_of_distribution_keeps_its_fingerprint():
    assert study_from_dict(PINNED).fingerprint() == "4b09a119e50b511c"


@pytest.mark.parametrize(
    ("study", "fingerprint"),
    # the quickstart at 16 px since 2026-12-07 (it was 82a6213737cb1ee5 at 24 px): a changed file, not a changed rule
    [("quickstart.yaml", "dcbd9cea0db998ff"), ("cifar100_lt.yaml", "9bb1017ed334818c")],
)
def test_a_shipped_study_keeps_its_fingerprint(study, fingerprint):
    assert load_study(STUDIES / study).fingerprint() == fingerprint


def test_where_a_study_is_stored_and_how_long_its_stores_are_waited_for_leave_its_fingerprint():
    moved = {
        **PINNED,
        "storage": "s3://bucket/runs",
        "storage_outage_timeout_s": 30,
        "optuna": {"storage": "postgresql://smcl@db:5432/studies", "outage_timeout_s": 30},
        "tracking": {"uri": "http://127.0.0.1:5000", "outage_timeout_s": 30},
    }
    assert study_from_dict(moved).fingerprint() == "4b09a119e50b511c"


def _with_training(**training) -> dict:
    return {**PINNED, "trial": {**PINNED["trial"], "training": {**PINNED["trial"]["training"], **training}}}


def test_a_number_written_as_text_is_the_number_it_is_read_as():
    # YAML 1.1 reads `lr: 1e-3` (no dot) as text, which the trial's schema reads as 0.001
    assert study_from_dict(_with_training(epochs="8")).fingerprint() == "4b09a119e50b511c"
    one = study_from_dict(_with_training(lr="1e-3", milestones=["160", 180]))
    other = study_from_dict(_with_training(lr=0.001, milestones=[160, 180]))
    assert one.fingerprint() == other.fingerprint()
    assert study_from_dict(_with_training(lr=0.002)).fingerprint() != other.fingerprint()
    # a whole number in a float field: as the file would read unquoted, not the field's 1.0
    for text, number in (("1", 1), ("1.0", 1.0)):
        written, read = (study_from_dict(_with_training(lr=value)) for value in (text, number))
        assert written.fingerprint() == read.fingerprint()


def test_a_value_json_has_no_word_for_is_hashed_as_before():
    # a YAML set (`!!set`) the schema takes as a list: as the code before 2026-12-07 hashed it (0554304~1)
    milestones = {"milestones": {160, 180}}
    assert study_from_dict(_with_training(**milestones)).fingerprints() == ("c6be076e3f030314",) * 2


def test_a_study_started_before_text_was_read_as_numbers_keeps_the_fingerprint_it_had():
    written = study_from_dict(_with_training(epochs="8"))
    # the second as smcl-tune computed it before 2026-12-07 (ab347b6: `epochs: "8"` another study than 8)
    assert written.fingerprints() == ("4b09a119e50b511c", "d29437c517dc8ee0")
    assert study_from_dict(PINNED).fingerprints() == ("4b09a119e50b511c", "4b09a119e50b511c")
