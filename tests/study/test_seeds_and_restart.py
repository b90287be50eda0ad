"""Seeded baselines, and what `--restart` may delete (issue 26): without starting Ray."""

import optuna
import ray
import yaml

from smcl_tune.cli import main
from smcl_tune.study.lock import StudyLock
from smcl_tune.study.paths import StudyPaths, write_study_record
from smcl_tune.study.runner import _prepare_state, build_searcher
from smcl_tune.study.trial_spec import spec_of
from smcl_tune.study_config import load_study, study_from_dict
from smcl_tune.tracking import StudyTracker


def test_a_baseline_with_seeds_is_one_trial_per_seed_each_training_with_its_seed(tmp_path, tiny_study):
    raw = yaml.safe_load(tiny_study(tmp_path).read_text())
    raw["baselines"] = [{"name": "ce", "overrides": {"method.name": "ce"}, "seeds": [0, 1, 2]}]
    study = study_from_dict(raw)
    searcher = build_searcher(study, optuna.storages.InMemoryStorage())
    suggestions = [spec_of(searcher.suggest(f"t{index}")) for index in range(3)]
    # what the trainable trains with: each trial's config, built by the driver
    configs = [s.config for s in suggestions]
    assert [config.training.seed for config in configs] == [0, 1, 2]
    assert {config.method.name for config in configs} == {"ce"}
    assert [s.key for s in suggestions] == ["baseline-ce-s0", "baseline-ce-s1", "baseline-ce-s2"]
    assert {s.configuration for s in suggestions} == {"ce"}  # one configuration over three seeds
    others = [config.model_dump(exclude={"training": {"seed"}}) for config in configs]
    assert others[0] == others[1] == others[2]  # the seed is all that differs


def _runs(tracker: StudyTracker, count: int) -> None:
    for index in range(count):
        tracker.trial_run(f"k{index}", f"trial-{index:03d}", "search", {}, {})
    tracker.finish()


def _active(client, study: str) -> int:
    experiment = client.get_experiment_by_name("shared")
    runs = client.search_runs([experiment.experiment_id], filter_string=f"tags.`smcl.study` = '{study}'")
    return len(runs)


def test_restart_in_a_shared_experiment_deletes_only_its_own_studys_runs(tmp_path, tiny_study):
    study = load_study(tiny_study(tmp_path, name="mine", tracking={"experiment": "shared"}))
    paths = StudyPaths.of(study)
    write_study_record(study, paths)
    mine = StudyTracker(paths.tracking_uri, "shared", "mine", study.fingerprint(), paths.artifact_root)
    _runs(mine, 2)
    _runs(StudyTracker(paths.tracking_uri, "shared", "other", "fp-other", paths.artifact_root), 3)
    assert (_active(mine.client, "mine"), _active(mine.client, "other")) == (3, 4)  # trial runs and a study run
    _prepare_state(study, paths, restart=True)
    assert (_active(mine.client, "mine"), _active(mine.client, "other")) == (0, 4)


def test_restart_while_another_driver_runs_the_study_exits_1_and_deletes_nothing(tmp_path, tiny_study, capsys):
    if ray.is_initialized():
        ray.shutdown()
    study = load_study(tiny_study(tmp_path, name="busy"))
    paths = StudyPaths.of(study)
    write_study_record(study, paths)
    (paths.record_dir / "optuna.db").write_bytes(b"")  # an empty database: a study's state to keep
    before = sorted(path.name for path in paths.record_dir.iterdir())
    with StudyLock(paths.lock_file, "busy"):
        assert main(["run", str(study.source), "--restart"]) == 1
    error = capsys.readouterr().err.strip()
    assert error.startswith("smcl-tune: study 'busy' is being run by process") and len(error.splitlines()) == 1
    assert sorted(path.name for path in paths.record_dir.iterdir()) == before
    assert not ray.is_initialized()
