"""What Optuna is told, without Ray: the searcher fed hand-built results on in-memory storage; the
trials it hands out (a seeded baseline is one trial per seed)."""

import math
import sqlite3
import threading
import time

import optuna
import pytest
import yaml
from optuna.trial import TrialState
from pydantic import TypeAdapter

from smcl_tune.study.search_plan import build_searcher
from smcl_tune.study.searcher import StudySearcher
from smcl_tune.study.trial_spec import BASELINE, TRIAL_SPEC, TrialSpec, spec_of
from smcl_tune.studyfile.conditions import Condition
from smcl_tune.studyfile.search_space import SearchDistribution
from smcl_tune.studyfile.study import study_from_dict

SPACE = {"method.temperature": {"loguniform": [0.05, 0.5]}, "method.loss_weight": {"uniform": [0.1, 1.0]}}
TYPED_SPACE = TypeAdapter(dict[str, SearchDistribution])
METRIC = "val_balanced_accuracy"
NO_CONDITION = Condition("", {})  # a study without conditions


def _searcher(
    storage,
    metric=METRIC,
    mode="max",
    baselines=(),
    seed=0,
    space=SPACE,
    strata=(NO_CONDITION,),
    num_trials=8,
    confirm=None,
    max_concurrent=None,
):
    """A searcher over `strata` (one unlabelled stratum: a study without conditions); its Optuna
    studies are "s" and "s/<label>"."""
    strata = list(strata)
    fixed = [
        TrialSpec(stratum, BASELINE, f"baseline-{b['name']}", b["name"], b["overrides"])
        for stratum in strata
        for b in baselines
    ]
    return StudySearcher(
        space=TYPED_SPACE.validate_python(space),
        strata=strata,
        baselines=fixed,
        num_trials=num_trials,
        metric=metric,
        mode=mode,
        samplers=[optuna.samplers.TPESampler(seed=seed + index, n_startup_trials=2) for index in range(len(strata))],
        study_names=[f"s/{stratum.label}" if stratum.label else "s" for stratum in strata],
        storage=storage,
        confirm=confirm,
        max_concurrent=max_concurrent,
    )


def _epoch(epoch, value, planned, **final):
    """A trial's report after `epoch` (0-based), as the trainable sends it through Ray."""
    return {
        METRIC: value,
        "val_few": value / 2,
        "epoch": epoch,
        "training_iteration": epoch + 1,
        "epochs_planned": planned,
        **final,
    }


def _final(epoch, value, planned, selected, **extra):
    return _epoch(
        epoch,
        value,
        planned,
        epochs_completed=epoch + 1,
        trial_failed=0.0,
        failure_reason="",
        **{f"selected_{METRIC}": selected, "selected_val_few": selected / 2},
        **extra,
    )


def _only_trial(storage):
    trials = optuna.load_study(study_name="s", storage=storage).get_trials()
    assert len(trials) == 1
    return trials[0]


@pytest.fixture
def storage():
    return optuna.storages.InMemoryStorage()


def test_a_trial_cut_short_is_pruned_with_its_intermediate_values(storage):
    searcher = _searcher(storage)
    searcher.suggest("t1")
    searcher.on_trial_result("t1", _epoch(0, 0.4, planned=4))
    searcher.on_trial_result("t1", _epoch(1, 0.5, planned=4))
    # Ray does not pass the result that made the scheduler stop the trial to on_trial_result.
    searcher.on_trial_complete("t1", _epoch(2, 0.45, planned=4))
    trial = _only_trial(storage)
    assert trial.state == TrialState.PRUNED
    assert trial.intermediate_values == {1: 0.4, 2: 0.5, 3: 0.45}


def test_a_full_run_is_complete_with_the_selected_epochs_validation_score(storage):
    searcher = _searcher(storage)
    searcher.suggest("t1")
    for epoch, value in enumerate([0.5, 0.8]):
        searcher.on_trial_result("t1", _epoch(epoch, value, planned=3))
    searcher.on_trial_complete("t1", _final(2, 0.6, planned=3, selected=0.8))
    trial = _only_trial(storage)
    assert trial.state == TrialState.COMPLETE
    assert trial.value == 0.8  # the epoch the trial selected on validation, not the last one (0.6)
    assert trial.intermediate_values == {1: 0.5, 2: 0.8, 3: 0.6}


def test_a_failed_trial_is_fail_with_its_reason(storage):
    searcher = _searcher(storage)
    searcher.suggest("t1")
    searcher.on_trial_complete(
        "t1",
        _epoch(
            0,
            math.nan,
            planned=3,
            epochs_completed=0,
            trial_failed=1.0,
            failure_reason="non-finite loss (nan) in epoch 0",
        ),
    )
    trial = _only_trial(storage)
    assert trial.state == TrialState.FAIL
    assert trial.user_attrs["failure_reason"] == "non-finite loss (nan) in epoch 0"

    searcher.suggest("t2")
    searcher.on_trial_complete("t2", None, error=True)
    crashed = optuna.load_study(study_name="s", storage=storage).get_trials()[1]
    assert crashed.state == TrialState.FAIL and "raised an error" in crashed.user_attrs["failure_reason"]


def test_a_completed_trial_whose_objective_has_no_value_is_fail_saying_why(storage):
    """An objective of an empty shot group (val_few where a condition has no few-shot classes): the
    trial completed, but Optuna cannot rank it; it said FAIL with no reason."""
    searcher = _searcher(storage)
    searcher.suggest("t1")
    searcher.on_trial_result("t1", _epoch(0, math.nan, planned=1))
    searcher.on_trial_complete("t1", _final(0, math.nan, planned=1, selected=math.nan))
    trial = _only_trial(storage)
    assert trial.state == TrialState.FAIL
    assert trial.user_attrs["failure_reason"].startswith("the objective val_balanced_accuracy has no value: a shot")


def test_a_running_trial_left_by_a_killed_driver_is_adopted_exactly_once(storage):
    killed = _searcher(storage)
    left_params = killed.suggest("old-driver-trial")
    del killed  # the driver died: Optuna keeps trial 0 RUNNING, Ray's saved state never heard of it
    searcher = _searcher(storage)
    adopted = searcher.suggest("new-1")
    fresh = searcher.suggest("new-2")
    assert spec_of(adopted).key == "optuna-0" and adopted["method.temperature"] == left_params["method.temperature"]
    assert spec_of(fresh).key == "optuna-1"
    for trial_id in ("new-1", "new-2"):
        searcher.on_trial_complete(trial_id, _final(0, 0.5, planned=1, selected=0.5))
    trials = optuna.load_study(study_name="s", storage=storage).get_trials()
    assert [(t.number, t.state) for t in trials] == [(0, TrialState.COMPLETE), (1, TrialState.COMPLETE)]


def test_a_running_trial_a_killed_ask_left_without_values_draws_them_before_it_trains(storage):
    typed = {
        **SPACE,
        "training.batch_size": {"logint": [16, 256]},
        "method.mask_mode": {"choice": ["box", "threshold"]},
    }
    study = optuna.create_study(study_name="s", storage=storage, directions=["maximize"])
    study.ask()  # the driver was killed inside Optuna's ask: the trial is made, none of its values are
    searcher = _searcher(storage, space=typed)
    adopted = searcher.suggest("new-1")
    assert spec_of(adopted).key == "optuna-0"
    drawn = _only_trial(storage).params
    assert sorted(drawn) == sorted(typed)  # recorded in Optuna, as any trial's
    assert all(adopted[name] == value for name, value in drawn.items())  # and trained on
    assert 0.05 <= drawn["method.temperature"] <= 0.5 and 16 <= drawn["training.batch_size"] <= 256
    assert drawn["method.mask_mode"] in ("box", "threshold")


def test_a_searcher_built_over_trials_a_killed_run_asked_draws_what_an_uninterrupted_run_draws(tmp_path, tiny_study):
    # A study stopped before Ray saved its state starts Ray's experiment anew, with a searcher built
    # anew: seeded as the first run's, it drew that run's configurations again.
    from smcl_tune.study.search_plan import build_searcher
    from smcl_tune.studyfile.study import study_from_dict

    study = study_from_dict(yaml.safe_load(tiny_study(tmp_path, seed=3, num_trials=6).read_text()))

    def two_draws(searcher, first_id: str) -> list[dict]:
        first = searcher.suggest(first_id)
        searcher.on_trial_complete(first_id, _final(0, 0.5, planned=1, selected=0.5))  # one trial at a time
        return [first, searcher.suggest("next")]

    uninterrupted = two_draws(build_searcher(study, optuna.storages.InMemoryStorage()), "t0")
    storage = optuna.storages.RDBStorage(f"sqlite:///{tmp_path / 'optuna.db'}")  # as a study's own
    optuna.create_study(study_name="another", storage=storage)  # the study's id is not the first
    build_searcher(study, storage).suggest("t0")  # asked; the driver is then killed
    taken_up, fresh = two_draws(build_searcher(study, storage), "u0")
    assert spec_of(taken_up).key == "optuna-0" and spec_of(fresh).key == "optuna-1"
    assert [{key: draw[key] for key in SPACE} for draw in (taken_up, fresh)] == [
        {key: draw[key] for key in SPACE} for draw in uninterrupted
    ]


def test_baselines_come_first_and_never_reach_optuna(storage):
    searcher = _searcher(storage, baselines=[{"name": "ce", "overrides": {"method.name": "ce"}}])
    baseline = searcher.suggest("b")
    spec = spec_of(baseline)
    assert (spec.key, spec.role, spec.run_name, spec.condition.label, spec.configuration) == (
        "baseline-ce",
        "baseline",
        "baseline-ce",
        "",
        "ce",
    )
    assert {key: value for key, value in baseline.items() if key != TRIAL_SPEC} == {"method.name": "ce"}
    searcher.on_trial_result("b", _epoch(0, 0.3, planned=1))
    searcher.on_trial_complete("b", _final(0, 0.3, planned=1, selected=0.3))
    assert optuna.load_study(study_name="s", storage=storage).get_trials() == []
    assert spec_of(searcher.suggest("t")).key == "optuna-0"


def test_a_secondary_objective_makes_a_two_valued_study(storage):
    searcher = _searcher(storage, metric=[METRIC, "val_few"], mode=["max", "max"])
    searcher.suggest("t1")
    searcher.on_trial_result("t1", _epoch(0, 0.7, planned=2))
    searcher.on_trial_complete("t1", _final(1, 0.6, planned=2, selected=0.7))
    study = optuna.load_study(study_name="s", storage=storage)
    assert [d.name for d in study.directions] == ["MAXIMIZE", "MAXIMIZE"]
    assert study.get_trials()[0].values == [0.7, 0.35]


@pytest.mark.parametrize(
    "spec, expected",
    [
        ({"uniform": [0.1, 0.9]}, optuna.distributions.FloatDistribution(0.1, 0.9)),
        ({"loguniform": [0.01, 1.0]}, optuna.distributions.FloatDistribution(0.01, 1.0, log=True)),
        ({"int": [16, 256]}, optuna.distributions.IntDistribution(16, 256)),
        ({"logint": [16, 256]}, optuna.distributions.IntDistribution(16, 256, log=True)),
        ({"choice": [10, 50, 100]}, optuna.distributions.CategoricalDistribution([10, 50, 100])),
    ],
)
def test_every_distribution_kind_maps_to_its_optuna_distribution(spec, expected):
    assert TYPED_SPACE.validate_python({"path": spec})["path"].to_optuna() == expected


def test_the_study_seed_reproduces_the_suggestions(tmp_path, tiny_study):
    from smcl_tune.study.search_plan import build_searcher
    from smcl_tune.studyfile.study import study_from_dict

    space = {
        **SPACE,
        "training.batch_size": {"logint": [16, 256]},
        "method.mask_mode": {"choice": ["threshold", "box"]},
    }

    def suggestions(seed):
        raw = yaml.safe_load(tiny_study(tmp_path, search=space, seed=seed, num_trials=4).read_text())
        searcher = build_searcher(study_from_dict(raw), optuna.storages.InMemoryStorage())
        drawn = []
        for index in range(4):  # random start-up trials, then TPE
            params = searcher.suggest(f"t{index}")
            searcher.on_trial_complete(
                f"t{index}", _final(0, params["method.loss_weight"], planned=1, selected=params["method.loss_weight"])
            )
            drawn.append({key: params[key] for key in space})
        return drawn

    first = suggestions(seed=3)
    assert first == suggestions(seed=3)
    assert first != suggestions(seed=4)
    assert all(16 <= p["training.batch_size"] <= 256 and isinstance(p["training.batch_size"], int) for p in first)


@pytest.mark.slow
def test_a_reader_holding_the_optuna_database_locked_never_kills_the_driver(tmp_path):
    from smcl_tune.store.database import optuna_storage

    database = tmp_path / "optuna.db"
    searcher = _searcher(optuna_storage(f"sqlite:///{database}"))
    searcher.suggest("t1")
    searcher.on_trial_result("t1", _epoch(0, 0.5, planned=2))
    reader = sqlite3.connect(database, isolation_level=None, check_same_thread=False)
    reader.execute("BEGIN EXCLUSIVE")  # a dashboard or script holding the file for a while
    releaser = threading.Timer(7.0, lambda: reader.execute("ROLLBACK"))  # beyond sqlite's 5 s default
    releaser.start()
    started = time.monotonic()
    searcher.on_trial_complete("t1", _final(1, 0.7, planned=2, selected=0.7))
    releaser.join()
    assert time.monotonic() - started >= 6.5  # it waited for the reader instead of failing
    trial = optuna.load_study(study_name="s", storage=f"sqlite:///{database}").get_trials()[0]
    assert trial.state == TrialState.COMPLETE and trial.value == 0.7


IF10, IF100 = (
    Condition("imbalance_factor=10", {"data.imbalance_factor": 10}),
    Condition("imbalance_factor=100", {"data.imbalance_factor": 100}),
)


def test_each_condition_has_its_own_optuna_study_and_trials_alternate_between_them(storage):
    searcher = _searcher(
        storage, strata=(IF10, IF100), num_trials=2, baselines=[{"name": "ce", "overrides": {"method.name": "ce"}}]
    )
    suggested = [searcher.suggest(f"t{index}") for index in range(6)]
    assert [(spec_of(s).role, spec_of(s).condition.label) for s in suggested] == [
        ("baseline", "imbalance_factor=10"),
        ("baseline", "imbalance_factor=100"),
        ("search", "imbalance_factor=10"),
        ("search", "imbalance_factor=100"),
        ("search", "imbalance_factor=10"),
        ("search", "imbalance_factor=100"),
    ]
    assert [s["data.imbalance_factor"] for s in suggested] == [10, 100] * 3  # the condition travels with the trial
    assert spec_of(suggested[2]).key == "imbalance_factor=10/optuna-0"
    assert spec_of(suggested[3]).run_name == "trial-000 [imbalance_factor=100]"
    assert searcher.suggest("t6") == "FINISHED"  # no confirmation stage
    for name in ("s/imbalance_factor=10", "s/imbalance_factor=100"):
        assert len(optuna.load_study(study_name=name, storage=storage).get_trials()) == 2


def test_the_confirmation_stage_retrains_the_top_k_of_each_condition_with_every_seed(storage):
    searcher = _searcher(
        storage,
        strata=(IF10, IF100),
        num_trials=3,
        confirm={"top_k": 2, "seeds": [1, 2], "overrides": {"data.val_per_class": 0}},
    )
    scores = {"imbalance_factor=10": [0.3, 0.9, 0.6], "imbalance_factor=100": [0.5, 0.2, 0.4]}
    ids = [f"t{index}" for index in range(6)]
    suggested = {trial_id: searcher.suggest(trial_id) for trial_id in ids}
    for trial_id in ids[:4]:  # the search of imbalance factor 10 is still running: nothing to confirm yet
        condition = spec_of(suggested[trial_id]).condition.label
        number = int(spec_of(suggested[trial_id]).key.rsplit("-", 1)[1])
        searcher.on_trial_complete(trial_id, _final(0, 0.0, planned=1, selected=scores[condition][number]))
    assert searcher.suggest("waiting") is None
    for trial_id in ids[4:]:
        condition = spec_of(suggested[trial_id]).condition.label
        searcher.on_trial_complete(trial_id, _final(0, 0.0, planned=1, selected=scores[condition][2]))
    confirmations = [searcher.suggest(f"c{index}") for index in range(8)]
    assert [(spec_of(c).condition.label, spec_of(c).configuration, c["training.seed"]) for c in confirmations] == [
        ("imbalance_factor=10", "trial-001", 1),
        ("imbalance_factor=10", "trial-001", 2),
        ("imbalance_factor=10", "trial-002", 1),
        ("imbalance_factor=10", "trial-002", 2),
        ("imbalance_factor=100", "trial-000", 1),
        ("imbalance_factor=100", "trial-000", 2),
        ("imbalance_factor=100", "trial-002", 1),
        ("imbalance_factor=100", "trial-002", 2),
    ]
    first = confirmations[0]
    assert (
        spec_of(first).role == "confirm" and first["data.val_per_class"] == 0 and first["data.imbalance_factor"] == 10
    )
    assert spec_of(first).key == "imbalance_factor=10/confirm-001-s1"
    study = optuna.load_study(study_name="s/imbalance_factor=10", storage=storage)
    assert first["method.temperature"] == study.trials[1].params["method.temperature"]
    searcher.on_trial_complete("c0", _final(0, 0.0, planned=1, selected=0.1))
    assert len(study.trials) == 3  # the confirmation runs stay out of Optuna's record
    assert searcher.suggest("c8") == "FINISHED"


def test_fewer_completed_search_trials_than_top_k_are_confirmed_saying_so(storage, caplog):
    searcher = _searcher(storage, num_trials=2, confirm={"top_k": 3, "seeds": [1], "overrides": {}})
    searcher.suggest("t0"), searcher.suggest("t1")
    searcher.on_trial_complete("t0", _final(0, 0.0, planned=1, selected=0.5))
    searcher.on_trial_result("t1", _epoch(0, 0.2, planned=4))
    searcher.on_trial_complete("t1", _epoch(1, 0.3, planned=4))  # stopped early: pruned
    with caplog.at_level("WARNING", logger="smcl_tune.study.searcher"):
        confirmations = [searcher.suggest("c0"), searcher.suggest("c1")]
    assert spec_of(confirmations[0]).configuration == "trial-000" and confirmations[1] == "FINISHED"
    assert "confirm: 1 of top_k 3 configurations to confirm: only 1 search trials completed" in caplog.text


def test_the_searcher_hands_out_exactly_the_trials_the_study_plans(tmp_path, tiny_study):
    """Ray's num_samples is the study's planned count: the searcher offers no trial beyond it."""
    from smcl_tune.study.search_plan import build_searcher
    from smcl_tune.studyfile.study import study_from_dict

    raw = yaml.safe_load(tiny_study(tmp_path, num_trials=2).read_text())
    raw["conditions"] = {"data.imbalance_factor": [10, 20]}
    raw["baselines"] = [{"name": "ce", "overrides": {"method.name": "ce"}}]
    raw["confirm"] = {"top_k": 2, "seeds": [1, 2]}
    study = study_from_dict(raw)
    assert study.planned_trials == 2 * (1 + 2 + 2 * 2)
    searcher = build_searcher(study, optuna.storages.InMemoryStorage())
    handed_out = 0
    while (suggestion := searcher.suggest(f"t{handed_out}")) != "FINISHED":
        assert suggestion is not None and spec_of(suggestion).config is not None
        searcher.on_trial_complete(f"t{handed_out}", _final(2, 0.5, planned=3, selected=0.5 + handed_out / 100))
        handed_out += 1
    assert handed_out == study.planned_trials


def test_the_optuna_studies_name_their_values_after_the_metrics(storage):
    _searcher(storage, strata=[Condition("a", {}), Condition("b", {})])  # one Optuna study per condition
    for name in ("s/a", "s/b"):
        assert optuna.load_study(study_name=name, storage=storage).metric_names == [METRIC]
    _searcher(storage, metric=[METRIC, "val_few"], mode=["max", "max"])
    assert optuna.load_study(study_name="s", storage=storage).metric_names == [METRIC, "val_few"]


@pytest.mark.slow
def test_optuna_dashboard_shows_the_objective_by_its_metric_name(tmp_path, dashboard_details):
    database = tmp_path / "lt" / "optuna.db"  # where `smcl-tune run` keeps study lt's Optuna storage
    database.parent.mkdir()
    searcher = _searcher(optuna.storages.RDBStorage(f"sqlite:///{database}"))
    searcher.suggest("t1")
    searcher.on_trial_result("t1", _epoch(0, 0.7, planned=1))
    searcher.on_trial_complete("t1", _final(0, 0.7, planned=1, selected=0.7))
    (study,) = dashboard_details(tmp_path, "lt")
    assert study["name"] == "s" and len(study["trials"]) == 1
    assert study["objective_names"] == [METRIC]  # not "Objective 0"


def test_a_baseline_with_seeds_is_one_trial_per_seed_each_training_with_its_seed(tmp_path, tiny_study):
    raw = yaml.safe_load(tiny_study(tmp_path).read_text())
    raw["baselines"] = [{"name": "ce", "overrides": {"method.name": "ce"}, "seeds": [0, 1, 2]}]
    study = study_from_dict(raw)
    searcher = build_searcher(study, optuna.storages.InMemoryStorage())
    suggestions = []
    for index in range(3):  # one at a time: the tiny study's max_concurrent is 1
        suggestions.append(spec_of(searcher.suggest(f"t{index}")))
        searcher.on_trial_complete(f"t{index}", _final(0, 0.3, planned=1, selected=0.3))
    # what the trainable trains with: each trial's config, built by the driver
    configs = [s.config for s in suggestions]
    assert [config.training.seed for config in configs] == [0, 1, 2]
    assert {config.method.name for config in configs} == {"ce"}
    assert [s.key for s in suggestions] == ["baseline-ce-s0", "baseline-ce-s1", "baseline-ce-s2"]
    assert {s.configuration for s in suggestions} == {"ce"}  # one configuration over three seeds
    others = [config.model_dump(exclude={"training": {"seed"}}) for config in configs]
    assert others[0] == others[1] == others[2]  # the seed is all that differs


def test_the_searcher_holds_its_live_trials_to_max_concurrent_baselines_included(storage):
    searcher = _searcher(storage, baselines=[{"name": "ce", "overrides": {"method.name": "ce"}}], max_concurrent=2)
    assert spec_of(searcher.suggest("b")).key == "baseline-ce"
    assert spec_of(searcher.suggest("t1")).key == "optuna-0"
    assert searcher.suggest("t2") is None  # two live: Ray asks again later
    searcher.on_trial_complete("b", _final(0, 0.3, planned=1, selected=0.3))
    assert spec_of(searcher.suggest("t2")).key == "optuna-1"


def mend_searcher_state(folder):
    from smcl_tune.study.search_state_repair import mend_searcher_state

    return mend_searcher_state(folder)


def _saved_experiment_state(folder, statuses, configs=None):
    """Ray's experiment state as it saves it: each trial a JSON text in `trial_data`, its config
    encoded as Ray encodes it."""
    import json

    from ray.tune.utils.serialization import TuneFunctionEncoder

    configs = configs or {}
    trial_data = [
        [
            json.dumps(
                {"trial_id": trial_id, "status": status, "config": configs.get(trial_id, {})}, cls=TuneFunctionEncoder
            ),
            "{}",
        ]
        for trial_id, status in statuses.items()
    ]
    (folder / "experiment_state-2026-12-04_10-00-00.json").write_text(json.dumps({"trial_data": trial_data}))


def test_a_trial_suggested_after_rays_last_saved_state_is_planned_again_on_restore(tmp_path):
    """A driver killed while Ray copied its state to S3 file by file: the searcher's state names a
    trial that Ray's experiment state does not; restored, the searcher neither counts it live (which
    held a study of max_concurrent 1 for ever) nor loses its slot."""
    from smcl_tune.store.database import optuna_storage

    storage = optuna_storage(f"sqlite:///{tmp_path / 'optuna.db'}")  # what a pickled searcher reopens
    searcher = _searcher(storage, baselines=[{"name": "ce", "overrides": {"method.name": "ce"}}], num_trials=2)
    searcher.max_concurrent = 1
    searcher.suggest("b")
    searcher.on_trial_complete("b", _final(0, 0.3, planned=1, selected=0.3))
    searcher.suggest("t1")
    searcher.on_trial_complete("t1", _final(0, 0.5, planned=1, selected=0.5))
    searcher.suggest("t2")  # then the driver is killed; Ray's saved state holds b and t1 only
    searcher.save(str(tmp_path / "searcher-state-2026-12-04_10-00-00.pkl"))
    _saved_experiment_state(tmp_path, {"b": "TERMINATED", "t1": "TERMINATED"})
    mend_searcher_state(str(tmp_path))  # as restored_tuner does before Ray restores

    restored = _searcher(storage, baselines=[{"name": "ce", "overrides": {"method.name": "ce"}}], num_trials=2)
    restored.restore(str(tmp_path / "searcher-state-2026-12-04_10-00-00.pkl"))
    again = restored.suggest("t2-again")
    assert spec_of(again).key == "optuna-1"  # its Optuna trial, left RUNNING, is taken up again
    restored.on_trial_complete("t2-again", _final(0, 0.6, planned=1, selected=0.6))
    assert restored.suggest("t3") == restored.FINISHED
    trials = optuna.load_study(study_name="s", storage=storage).get_trials()
    assert [(t.number, t.state) for t in trials] == [(0, TrialState.COMPLETE), (1, TrialState.COMPLETE)]


def test_a_trial_rays_saved_state_holds_as_ended_is_not_live_after_a_restore(tmp_path):
    """A searcher saved before its trial ended (or by an smcl-tune that kept no baseline in its ended
    set, as a legacy store's): Ray restores the trial as ended and reports nothing more of it."""
    from smcl_tune.store.database import optuna_storage

    storage = optuna_storage(f"sqlite:///{tmp_path / 'optuna.db'}")
    searcher = _searcher(storage, baselines=[{"name": "ce", "overrides": {"method.name": "ce"}}], num_trials=1)
    searcher.max_concurrent = 1
    searcher.suggest("b")  # saved while b ran; Ray saved b ended
    saved = tmp_path / "searcher-state-2026-12-04_10-00-00.pkl"
    searcher.save(str(saved))
    _saved_experiment_state(tmp_path, {"b": "TERMINATED"})
    before = saved.stat().st_ino
    mend_searcher_state(str(tmp_path))  # as restored_tuner does before Ray restores
    # replaced whole by a rename, not rewritten in place: a kill meanwhile leaves no part of a file
    assert saved.stat().st_ino != before and not [p for p in tmp_path.iterdir() if ".partial" in p.name]
    restored = _searcher(storage, baselines=[{"name": "ce", "overrides": {"method.name": "ce"}}], num_trials=1)
    restored.restore(str(tmp_path / "searcher-state-2026-12-04_10-00-00.pkl"))
    assert spec_of(restored.suggest("t1")).key == "optuna-0"


def test_rays_count_of_suggestions_forgets_one_its_saved_state_never_held(tmp_path):
    """Ray stops asking once its count of suggestions reaches the study's trials: a suggestion lost
    with a killed driver is taken out of that count (and out of an older study's limiter), so the
    resumed study runs every trial."""
    from ray import cloudpickle

    from smcl_tune.store.database import optuna_storage

    storage = optuna_storage(f"sqlite:///{tmp_path / 'optuna.db'}")
    searcher = _searcher(storage, num_trials=3)
    searcher.suggest("t1")
    searcher.suggest("t2")  # Ray's saved state holds t1 only
    searcher.save(str(tmp_path / "searcher-state-2026-12-04_10-00-00.pkl"))
    _saved_experiment_state(tmp_path, {"t1": "RUNNING"})
    counts = {
        "counter": 2,
        "total_samples": 3,
        "finished": False,
        "experiment": None,
        "name:ConcurrencyLimiter": {"max_concurrent": 2, "live_trials": {"t1", "t2"}, "num_unfinished_live_trials": 2},
    }
    (tmp_path / "search_gen_state-2026-12-04_10-00-00.json").write_bytes(cloudpickle.dumps(counts))

    assert mend_searcher_state(str(tmp_path)) == ["t2"]
    mended = cloudpickle.loads((tmp_path / "search_gen_state-2026-12-04_10-00-00.json").read_bytes())
    assert mended["counter"] == 1
    assert mended["name:ConcurrencyLimiter"]["live_trials"] == {"t1"}
    assert mended["name:ConcurrencyLimiter"]["num_unfinished_live_trials"] == 1
    assert mend_searcher_state(str(tmp_path)) == []  # mended once: a second resume changes nothing
    assert cloudpickle.loads((tmp_path / "search_gen_state-2026-12-04_10-00-00.json").read_bytes())["counter"] == 1
    restored = _searcher(storage, num_trials=3)
    restored.restore(str(tmp_path / "searcher-state-2026-12-04_10-00-00.pkl"))
    assert spec_of(restored.suggest("t2-again")).key == "optuna-1"  # the lost one's Optuna trial, taken up again


def test_rays_count_forgets_a_suggestion_that_neither_saved_state_holds(tmp_path):
    """A driver killed after Ray's count reached S3 but before the searcher's file did: the
    searcher's file never heard of t2, Ray's count has it. The count is held to the trials Ray's
    state holds, so the resumed study runs every trial (CI saw one end a trial short)."""
    from ray import cloudpickle

    from smcl_tune.store.database import optuna_storage

    storage = optuna_storage(f"sqlite:///{tmp_path / 'optuna.db'}")
    searcher = _searcher(storage, num_trials=3)
    searcher.suggest("t1")
    searcher.save(str(tmp_path / "searcher-state-2026-12-04_10-00-00.pkl"))  # the older file
    searcher.suggest("t2")  # Optuna trial 1, left RUNNING
    _saved_experiment_state(tmp_path, {"t1": "RUNNING"})
    counts = {"counter": 2, "total_samples": 3, "finished": False, "experiment": None}
    (tmp_path / "search_gen_state-2026-12-04_10-00-00.json").write_bytes(cloudpickle.dumps(counts))

    assert mend_searcher_state(str(tmp_path)) == []  # nothing for the searcher to plan again
    assert cloudpickle.loads((tmp_path / "search_gen_state-2026-12-04_10-00-00.json").read_bytes())["counter"] == 1
    restored = _searcher(storage, num_trials=3)
    restored.restore(str(tmp_path / "searcher-state-2026-12-04_10-00-00.pkl"))
    assert spec_of(restored.suggest("t2-again")).key == "optuna-1"  # the orphan, taken up again
    assert spec_of(restored.suggest("t3")).key == "optuna-2"


def test_a_trial_rays_state_holds_but_the_older_searcher_file_never_suggested_is_taken_up(tmp_path):
    """A driver killed after Ray's experiment state reached S3 but before the searcher's did: Ray
    restores t2 (Optuna trial 1) and the searcher, which never heard of it, must not hand Optuna
    trial 1 out again as an orphan (two Ray trials on one MLflow run, the study a trial short)."""
    from smcl_tune.store.database import optuna_storage

    storage = optuna_storage(f"sqlite:///{tmp_path / 'optuna.db'}")
    searcher = _searcher(storage, num_trials=3)
    first = searcher.suggest("t1")
    searcher.save(str(tmp_path / "searcher-state-2026-12-04_10-00-00.pkl"))  # the older file
    second = searcher.suggest("t2")
    searcher.on_trial_result("t2", _epoch(0, 0.4, planned=2))
    _saved_experiment_state(tmp_path, {"t1": "RUNNING", "t2": "RUNNING"}, {"t1": first, "t2": second})

    assert mend_searcher_state(str(tmp_path)) == []
    restored = _searcher(storage, num_trials=3)
    restored.restore(str(tmp_path / "searcher-state-2026-12-04_10-00-00.pkl"))
    assert spec_of(restored.suggest("t3")).key == "optuna-2"  # not optuna-1 a second time
    assert restored.suggest("t4") == restored.FINISHED
    restored.on_trial_complete("t2", _final(1, 0.5, planned=2, selected=0.5))  # Ray's restored t2 ends
    trial = optuna.load_study(study_name="s", storage=storage).trials[1]
    assert trial.state == TrialState.COMPLETE and trial.intermediate_values == {1: 0.4, 2: 0.5}


def test_an_end_recorded_before_the_driver_was_killed_is_not_told_again(tmp_path, caplog):
    # Ray saves its experiment state (and this searcher) now and then: a driver killed after a trial's
    # end reached Optuna, before Ray saved, resumes with the trial live, and Ray reports its end again
    storage = optuna.storages.RDBStorage(f"sqlite:///{tmp_path / 'optuna.db'}")  # a file, as a study's
    searcher = _searcher(storage)
    searcher.suggest("t1")
    searcher.on_trial_result("t1", _epoch(0, 0.5, planned=2))
    saved = tmp_path / "searcher.pkl"
    searcher.save(str(saved))
    searcher.on_trial_complete("t1", _final(1, 0.6, planned=2, selected=0.6))
    resumed = _searcher(storage)
    resumed.restore(str(saved))
    with caplog.at_level("DEBUG", logger="smcl_tune.study.searcher"):
        resumed.on_trial_result("t1", _final(1, 0.6, planned=2, selected=0.6))  # Ray sends the last report first
        resumed.on_trial_complete("t1", _final(1, 0.6, planned=2, selected=0.6))
    assert not [record for record in caplog.records if record.levelname == "WARNING"], caplog.text
    trial = _only_trial(storage)
    assert (trial.state, trial.value, trial.intermediate_values) == (TrialState.COMPLETE, 0.6, {1: 0.5, 2: 0.6})
    assert "t1" in resumed._ended  # no longer live for the searcher's concurrency limit


def test_a_tie_in_the_last_bit_confirms_the_first_trial(storage):
    # 8/15 as a count's share and as a mean of class shares: the later trial won by float rounding
    searcher = _searcher(storage, num_trials=3, confirm={"top_k": 1, "seeds": [1], "overrides": {}})
    for index, score in enumerate((8 / 15, 0.5333333333333333, 0.5333333333333334)):
        searcher.suggest(f"t{index}")
        searcher.on_trial_complete(f"t{index}", _final(0, 0.0, planned=1, selected=score))
    assert spec_of(searcher.suggest("c0")).configuration == "trial-000"
