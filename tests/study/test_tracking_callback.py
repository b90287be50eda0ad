"""The tracking callback in the driver: what reaches MLflow from Ray's results (no Ray needed:
a trial is handed over as the callback reads it, its config and last result)."""

import math
from pathlib import Path
from types import SimpleNamespace

from mlflow.tracking import MlflowClient
from ray.tune import Checkpoint

from smcl_tune.results import TRIAL_FILES, TrialEnd, outcome
from smcl_tune.store.paths import default_tracking_uri
from smcl_tune.study.tracking_callback import TrackingCallback
from smcl_tune.study.trainable import refusal_report
from smcl_tune.study.trial_spec import SEARCH, TrialSpec
from smcl_tune.studyfile.conditions import Condition


def _callback(tmp_path, tiny_config):
    arguments = {
        "uri": default_tracking_uri(tmp_path),
        "experiment": "cb",
        "study_name": "cb",
        "fingerprint": "f",
        "artifact_root": tmp_path / "mlartifacts",
    }
    return TrackingCallback(arguments), MlflowClient(arguments["uri"])


def _ray_trial(tiny_config, trial_id: str, key: str, **params):
    """A search trial as the driver's searcher plans it: its config built on `tiny_config()` and validated."""
    spec = TrialSpec(Condition("", {}), SEARCH, key, key, params).validated(tiny_config())
    return SimpleNamespace(trial_id=trial_id, config=spec.ray_config(), last_result={})


def test_a_sampled_configuration_the_trial_refuses_ends_that_trial_failed_with_the_reason(tmp_path, tiny_config):
    callback, client = _callback(tmp_path, tiny_config)
    trial = _ray_trial(tiny_config, "t1", "optuna-0", **{"method.temperature": -1.0})
    callback.on_trial_start(0, [], trial)  # the driver goes on: no exception
    trial.last_result = refusal_report("method.temperature: Input should be greater than 0, got -1.0")
    assert outcome(trial.last_result)[0] == "failed"
    callback.on_trial_result(0, [], trial, trial.last_result)
    callback.on_trial_complete(0, [], trial)
    (run,) = client.search_runs(
        [client.get_experiment_by_name("cb").experiment_id], filter_string="tags.`smcl.role` = 'search'"
    )
    assert run.info.status == "FAILED" and run.data.tags["smcl.state"] == "failed"
    assert "the sampled configuration is invalid: method.temperature" in run.data.tags["smcl.reason"]
    assert client.download_artifacts(run.info.run_id, "trial_config.json")


def test_only_the_trials_own_metric_names_reach_mlflow(tmp_path, tiny_config):
    callback, client = _callback(tmp_path, tiny_config)
    trial = _ray_trial(tiny_config, "t2", "optuna-1", **{"method.temperature": 0.2})
    callback.on_trial_start(0, [], trial)
    result = {
        "epoch": 0,
        "loss": 1.5,
        "val_balanced_accuracy": 0.4,
        "val_few": math.nan,  # the trial's own
        "training_iteration": 1,
        "time_this_iter_s": 2.0,
        "pid": 123,
        "timestamp": 1,
        "done": False,
        "iterations_since_restore": 1,
        "node_ip": "127.0.0.1",
        "time_total_s": 2.0,
        "some_new_ray_key": 7.0,
    }
    callback.on_trial_result(0, [], trial, result)
    (run,) = client.search_runs(
        [client.get_experiment_by_name("cb").experiment_id], filter_string="tags.`smcl.role` = 'search'"
    )
    assert set(run.data.metrics) == {"epoch", "loss", "val_balanced_accuracy", "trial_seconds"}


def test_a_trial_run_records_what_published_results_are_compared_on(tmp_path, tiny_config):
    callback, client = _callback(tmp_path, tiny_config)
    callback.on_trial_start(
        0,
        [],
        _ray_trial(tiny_config, "t3", "optuna-2", **{"data.n_max": 40, "data.profile": "step", "data.subset_seed": 3}),
    )
    (run,) = client.search_runs(
        [client.get_experiment_by_name("cb").experiment_id], filter_string="tags.`smcl.role` = 'search'"
    )
    tags = run.data.tags
    assert (tags["smcl.subset_protocol"], tags["smcl.n_max"], tags["smcl.epochs"]) == ("seeded", "40", "2")
    assert (tags["smcl.profile"], tags["smcl.subset_seed"]) == ("step", "3")
    assert (tags["smcl.source"], tags["smcl.architecture"], tags["smcl.imbalance_factor"]) == (
        "synthetic",
        "tiny_cnn",
        "10",
    )


def test_the_files_a_trial_wrote_beside_its_last_checkpoint_reach_mlflow_as_written(tmp_path, tiny_config):
    callback, client = _callback(tmp_path, tiny_config)
    trial = _ray_trial(tiny_config, "t4", "optuna-3", **{"method.temperature": 0.2})
    callback.on_trial_start(0, [], trial)
    folder = tmp_path / "checkpoint"
    folder.mkdir()
    written = {name: f"{name}: as the trial wrote it\n".encode() for name in TRIAL_FILES}
    for name, content in written.items():
        (folder / name).write_bytes(content)
    (folder / "trial.pt").write_bytes(b"weights")  # the checkpoint itself is not a run's file
    trial.last_result = {"epoch": 1, **TrialEnd(2, epochs_planned=2).entries()}
    callback.on_checkpoint(0, [], trial, Checkpoint.from_directory(str(folder)))
    (run,) = client.search_runs(
        [client.get_experiment_by_name("cb").experiment_id], filter_string="tags.`smcl.role` = 'search'"
    )
    logged = {item.path for item in client.list_artifacts(run.info.run_id)}
    assert logged == {*TRIAL_FILES, "trial_config.json"}
    for name, content in written.items():
        assert Path(client.download_artifacts(run.info.run_id, name, str(tmp_path / "down"))).read_bytes() == content


def test_an_epoch_a_resumed_trial_trains_again_is_logged_once_and_its_final_report_still_is(tmp_path, tiny_config):
    """A driver stopped before the trial's checkpoint of epoch 1 persisted: the resumed driver (a new
    callback, as Ray restores it) hears epochs 1 and 2 again; each step keeps one value."""
    first, client = _callback(tmp_path, tiny_config)
    trial = _ray_trial(tiny_config, "t9", "optuna-9", **{"method.temperature": 0.2})
    first.on_trial_start(0, [], trial)
    for epoch in (0, 1):
        first.on_trial_result(0, [], trial, {"epoch": epoch, "loss": 2.0 - epoch, "time_total_s": 1.0 + epoch})
    resumed, _ = _callback(tmp_path, tiny_config)
    resumed.on_trial_start(0, [], trial)
    resumed.on_trial_result(0, [], trial, {"epoch": 1, "loss": 9.0, "time_total_s": 5.0})
    final = {"epoch": 2, "loss": 0.5, "time_total_s": 6.0, **TrialEnd(3).entries()}
    resumed.on_trial_result(0, [], trial, final)
    resumed.on_trial_result(0, [], trial, {**final, "test_top1": 0.7})  # a final report heard again after a stop
    (run,) = client.search_runs(
        [client.get_experiment_by_name("cb").experiment_id], filter_string="tags.`smcl.role` = 'search'"
    )
    losses = {point.step: point.value for point in client.get_metric_history(run.info.run_id, "loss")}
    assert sorted(point.step for point in client.get_metric_history(run.info.run_id, "loss")) == [0, 1, 2]
    assert losses == {0: 2.0, 1: 1.0, 2: 0.5}  # epoch 1 keeps the value logged first
    assert [point.value for point in client.get_metric_history(run.info.run_id, "test_top1")] == [0.7]


def test_an_epoch_whose_answer_was_lost_is_logged_once_when_sent_again(tmp_path, tiny_config):
    """The tracking server committed an epoch's metrics and went away before it answered (a
    fresh-clone run: the short-outage study logged epoch 0 three times); the callback waits and
    sends the epoch again, and the run still holds it once."""
    callback, client = _callback(tmp_path, tiny_config)
    trial = _ray_trial(tiny_config, "t10", "optuna-10", **{"method.temperature": 0.2})
    callback.on_trial_start(0, [], trial)
    store_batch = callback.tracker.client.log_batch
    answers_lost = []

    def committed_but_unanswered(*args, **kwargs):
        store_batch(*args, **kwargs)
        if len(answers_lost) < 2:
            answers_lost.append(kwargs)
            raise ConnectionError("('Connection aborted.', RemoteDisconnected('Remote end closed connection'))")

    callback.tracker.client.log_batch = committed_but_unanswered
    callback.on_trial_result(0, [], trial, {"epoch": 0, "loss": 2.0, "time_total_s": 1.0})
    callback.on_trial_result(0, [], trial, {"epoch": 1, "loss": 1.0, "time_total_s": 2.0})
    (run,) = client.search_runs(
        [client.get_experiment_by_name("cb").experiment_id], filter_string="tags.`smcl.role` = 'search'"
    )
    assert len(answers_lost) == 2
    assert [(point.step, point.value) for point in client.get_metric_history(run.info.run_id, "loss")] == [
        (0, 2.0),
        (1, 1.0),
    ]
