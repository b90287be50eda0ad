"""The searcher on a database server that stops for good, without Ray: a trial's end that cannot
be told is kept for the study to stop on (Ray Tune would log it as that trial's failure and go on),
and no later Optuna call waits out the outage a second time."""

import time

import optuna
import pytest
from pydantic import TypeAdapter

from smcl_tune.store.database import optuna_storage
from smcl_tune.study.database_outage import DatabaseDown
from smcl_tune.study.outage_wait import stopping_on_study_stop
from smcl_tune.study.searcher import StudySearcher
from smcl_tune.studyfile.conditions import Condition
from smcl_tune.studyfile.search_space import SearchDistribution

pytestmark = pytest.mark.slow  # a PostgreSQL server of its own

SPACE = TypeAdapter(dict[str, SearchDistribution]).validate_python({"method.temperature": {"uniform": [0.1, 0.5]}})
METRIC = "val_balanced_accuracy"
TIMEOUT_S = 1.0


def _result(epoch: int, value: float) -> dict:
    return {METRIC: value, "epoch": epoch, "training_iteration": epoch + 1}


def test_a_trial_ending_while_the_database_is_gone_stops_the_study_without_a_second_wait(
    own_postgres_server, monkeypatch
):
    monkeypatch.setenv("PGPASSWORD", own_postgres_server.study_password)
    url = own_postgres_server.new_database("searcher_outage")
    searcher = StudySearcher(
        space=SPACE,
        strata=[Condition("", {})],
        baselines=[],
        num_trials=2,
        metric=METRIC,
        mode="max",
        samplers=[optuna.samplers.RandomSampler(seed=0)],
        study_names=["s"],
        storage=optuna_storage(url),
        database_url=url,
        outage_timeout_s=TIMEOUT_S,
        max_concurrent=2,
    )
    ended_quietly = []
    outage_message = r"has not answered for 1 s \(optuna.outage_timeout_s: 1\)"
    with pytest.raises(DatabaseDown, match=outage_message), stopping_on_study_stop():
        searcher.suggest("first")
        searcher.suggest("second")
        own_postgres_server.stop()
        searcher.on_trial_complete("first", _result(0, 0.5))  # waits its timeout, raises nothing
        ended_quietly.append("first")
        started = time.monotonic()
        with pytest.raises(DatabaseDown):
            searcher.on_trial_result("second", _result(0, 0.4))
        assert time.monotonic() - started < TIMEOUT_S / 2
        searcher.on_trial_complete("second", _result(1, 0.4))
        ended_quietly.append("second")
        # both trials still count as live, so without the stop Ray would be told "none yet" for
        # 10 minutes, with nothing running and deaf to Ctrl-C
        started = time.monotonic()
        with pytest.raises(DatabaseDown):
            searcher.suggest("third")
        assert time.monotonic() - started < TIMEOUT_S / 2
    # once the fit returns, the study stops on the end that could not be told
    assert ended_quietly == ["first", "second"]
