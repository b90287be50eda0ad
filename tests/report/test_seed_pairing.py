"""Statistics over seeds where seeds are missing (issue 26): pairing by seed when the confirmation
seeds are not the baseline's, one shared seed, a metric missing in one seed, an unknown baseline."""

import math
import re
import time

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from smcl_tune.cli import main
from smcl_tune.report.statistics import METRICS, paired_differences
from smcl_tune.results import TrialState
from smcl_tune.tracking.writer import StudyTracker
from tests.fixtures.stores import store_uri


def _runs(kind: str, configuration: str, by_seed: dict[int, float], condition: str = "") -> list[dict]:
    """Completed seed runs whose every test metric is the seed's value (a fraction)."""
    return [
        {
            "condition": condition,
            "kind": kind,
            "configuration": configuration,
            "seed": float(seed),
            "state": "completed",
        }
        | dict.fromkeys(METRICS, value)
        for seed, value in by_seed.items()
    ]


BASELINE = {0: 0.40, 1: 0.46, 2: 0.41, 4: 0.52}
CONFIRMED = {4: 0.61, 3: 0.70, 2: 0.49, 1: 0.50}  # seed 3 has no baseline run; listed out of seed order
ONE_SHARED = {2: 0.60, 5: 0.62, 6: 0.58}


@pytest.fixture
def trials() -> pd.DataFrame:
    rows = _runs("baseline", "ce", BASELINE) + _runs("confirm", "trial-007", CONFIRMED)
    rows += _runs("confirm", "trial-009", ONE_SHARED)
    return pd.DataFrame(rows)


def test_pairs_are_made_by_seed_over_the_seeds_both_ran_as_scipy_computes_them(trials):
    row = paired_differences(trials, "ce").set_index("configuration").loc["trial-007"]
    assert row["paired_seeds"] == "1,2,4"
    shared = [1, 2, 4]
    confirmed, baseline = [CONFIRMED[s] for s in shared], [BASELINE[s] for s in shared]
    expected = stats.ttest_rel(confirmed, baseline).confidence_interval(0.95)
    for metric in METRICS:
        assert row[f"{metric}_diff"] == pytest.approx(np.mean(np.subtract(confirmed, baseline)))
        assert (row[f"{metric}_diff_low"], row[f"{metric}_diff_high"]) == pytest.approx((expected.low, expected.high))
        assert row[f"{metric}_excludes_0"] == (expected.low > 0 or expected.high < 0)


def test_one_shared_seed_gives_no_paired_interval(trials):
    differences = paired_differences(trials, "ce")
    assert "trial-009" not in set(differences["configuration"])  # one pair: no spread, nothing to claim


def _store_with_a_missing_metric(storage) -> None:
    """Baseline ce over seeds 0 and 1; seed 1 has no few-shot accuracy (an empty group)."""
    tracker = StudyTracker(store_uri(storage), "gaps", "gaps", "fp", storage / "mlartifacts")
    tracker.log_study(None, None, {}, {"smcl.objective_metric": "val_top1", "smcl.baselines": '["ce", "smcl"]'})
    values = {("ce", 0): 0.40, ("ce", 1): 0.44, ("smcl", 0): 0.50, ("smcl", 1): 0.58}
    for (configuration, seed), value in values.items():
        tags = {"smcl.configuration": configuration, "smcl.seed": str(seed), "smcl.condition": ""}
        run = tracker.trial_run(
            f"{configuration}-{seed}", f"baseline-{configuration}-s{seed}", "baseline", {}, {}, tags
        )
        metrics = {"val_top1": value, "epochs_completed": 1, **dict.fromkeys(METRICS, value)}
        if seed == 1:
            metrics["test_few"] = math.nan  # not logged: the store has no value for it
        tracker.log_metrics(run, metrics, 0, int(time.time() * 1000))
        tracker.end_trial(run, TrialState.COMPLETED)
    tracker.finish()


@pytest.fixture(scope="module")
def gaps(tmp_path_factory):
    storage = tmp_path_factory.mktemp("gaps")
    _store_with_a_missing_metric(storage)
    return storage


@pytest.mark.parametrize("fmt", ["table", "markdown", "latex", "html"])
def test_a_metric_missing_in_one_seed_prints_no_nan(gaps, capsys, fmt):
    assert main(["leaderboard", "gaps", "--storage", str(gaps), "--format", fmt]) == 0
    out = capsys.readouterr().out
    shown = re.sub(r"<script.*?</script>|data:[^\"')]*", "", out, flags=re.DOTALL)  # the page's code and pictures
    assert not re.search(r"\bnan\b", shown, flags=re.IGNORECASE)
    if fmt == "table":
        assert "40.0 ± –" in out and "[–, –]" not in out  # the few-shot mean of ce's one seed that has it
        assert "+10.0  " in out or out.rstrip().endswith("+10.0")  # smcl - ce on seed 0 alone, no interval
    if fmt == "latex":
        assert r"40.0 $\pm$ --" in out


def test_an_unknown_baseline_is_refused_naming_the_baselines(gaps, capsys):
    assert main(["leaderboard", "gaps", "--storage", str(gaps), "--baseline", "cee"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert (
        captured.err.strip()
        == "smcl-tune: --baseline: study 'gaps' has no baseline named 'cee' (its baselines: ce, smcl)"
    )
