import math
import re
import shutil

import pytest
import torch

from smcl_tune.config import trial_config_from_dict
from smcl_tune.errors import ConfigError
from smcl_tune.results import RESULT_FILE, read_result
from smcl_tune.trial.checkpoint import CHECKPOINT_NAME
from smcl_tune.trial.run import run_trial


def test_two_epoch_trial_reports_each_epoch_and_finite_metrics(tiny_config):
    reported = []
    result = run_trial(
        trial_config_from_dict(tiny_config()), report=lambda metrics, checkpoint: reported.append(metrics)
    )
    assert result.status == "completed" and result.epochs_completed == 2
    assert [m["epoch"] for m in reported] == [0, 1]
    for key in ("loss", "loss_mce", "loss_msc", "train_accuracy", "val_balanced_accuracy", "val_many", "val_few"):
        assert all(math.isfinite(m[key]) for m in reported), key
    assert reported[0]["loss_msc"] > 0 and reported[0]["masked_step_fraction"] == 1.0
    assert result.group_sizes == {"many": 2, "medium": 2, "few": 1}
    assert result.train_counts == [60, 33, 18, 10, 6]  # synthetic validation comes from its own pool
    for key in ("top1", "balanced_accuracy", "many", "medium", "few"):
        assert 0.0 <= result.test[key] <= 1.0
    assert len(result.test_per_class_accuracy) == 5 and sum(map(sum, result.test_confusion)) == 60
    assert result.best_epoch in (0, 1)
    assert result.validation["balanced_accuracy"] == reported[result.best_epoch]["val_balanced_accuracy"]


def test_resumed_trial_finishes_with_the_same_metrics(tmp_path, tiny_config):
    first_epoch = tmp_path / "after-epoch-0"

    def keep_first(metrics, checkpoint):
        if metrics["epoch"] == 0:
            shutil.copytree(checkpoint, first_epoch)

    uninterrupted = run_trial(trial_config_from_dict(tiny_config()), report=keep_first, checkpoint_dir=tmp_path / "run")
    assert (first_epoch / CHECKPOINT_NAME).exists()
    resumed_reports = []
    resumed = run_trial(
        trial_config_from_dict(tiny_config()), report=lambda m, c: resumed_reports.append(m), resume_from=first_epoch
    )
    assert [m["epoch"] for m in resumed_reports] == [1]
    assert resumed.test == uninterrupted.test
    assert resumed.test_confusion == uninterrupted.test_confusion
    assert resumed.history[1]["loss"] == uninterrupted.history[1]["loss"]
    saved = torch.load(first_epoch / CHECKPOINT_NAME, weights_only=True)
    assert {"network", "optimizer", "batch_generator", "step_generator", "config", "epoch"} <= set(saved)


def test_the_last_report_carries_the_final_scalars_and_its_folder_the_result_file(tmp_path, tiny_config):
    reports = []
    result = run_trial(
        trial_config_from_dict(tiny_config()),
        report=lambda metrics, checkpoint: reports.append((metrics, checkpoint)),
        checkpoint_dir=tmp_path / "run",
    )
    assert len(reports) == 2  # one report per epoch; the last one is also the final one
    first, (last, folder) = reports[0][0], reports[1]
    assert "test_top1" not in first and "epochs_completed" not in first
    assert last["epoch"] == 1 and last["epochs_completed"] == 2 and last["test_top1"] == result.test["top1"]
    assert all(isinstance(value, (int, float)) for key, value in last.items() if key != "failure_reason")
    written = read_result(folder / RESULT_FILE)
    assert written.test_confusion == result.test_confusion and written.test == result.test
    assert written.class_names == result.class_names and written.history == result.history


def test_exploding_loss_stops_the_trial_with_the_reason(tiny_config):
    result = run_trial(trial_config_from_dict(tiny_config(lr=1e20, epochs=3)))
    assert result.status == "failed"
    assert "non-finite loss" in result.reason
    assert result.epochs_completed < 3


def test_a_trial_without_few_shot_classes_reports_few_as_missing(tiny_config):
    config = tiny_config(epochs=1)
    config["data"]["few_below"] = 1
    config["method"]["mask_end_epoch"] = 1
    result = run_trial(trial_config_from_dict(config))
    assert result.group_sizes["few"] == 0
    assert math.isnan(result.test["few"]) and math.isnan(result.validation["few"])
    assert not math.isnan(result.test["many"])


def test_drw_reweights_the_loss_from_its_start_epoch_and_balanced_softmax_from_the_first(tiny_config):
    def trial(**method):
        config = tiny_config(epochs=2)
        config["method"] = {"name": "ce", **method}
        return run_trial(trial_config_from_dict(config)).history

    plain = trial()
    drw = trial(classifier_loss="drw", drw_start_epoch=1)
    balanced = trial(classifier_loss="balanced_softmax")
    assert drw[0]["loss"] == plain[0]["loss"]  # DRW is off before drw_start_epoch
    assert drw[1]["loss"] != plain[1]["loss"]
    assert balanced[0]["loss"] != plain[0]["loss"]


def test_resnet18_at_32px_trains_when_the_last_batch_would_hold_one_image(tiny_config):
    config = tiny_config(epochs=1, batch_size=65)
    config["data"].update(num_classes=2, n_max=33, imbalance_factor=1)  # 66 training images: 65 + 1
    config["data"]["synthetic"]["image_size"] = 32
    config["model"] = {"architecture": "resnet18"}
    config["method"] = {"name": "ce"}
    result = run_trial(trial_config_from_dict(config))
    assert result.status == "completed" and result.train_counts == [33, 33]


@pytest.mark.parametrize("spoil", ["another configuration", "another version", "a corrupt file"])
def test_a_checkpoint_that_is_not_this_trials_own_is_set_aside_and_the_trial_starts_over(
    tmp_path, tiny_config, caplog, spoil
):
    first_epoch = tmp_path / "after-epoch-0"

    def keep_first(metrics, checkpoint):
        if metrics["epoch"] == 0:
            shutil.copytree(checkpoint, first_epoch)

    run_trial(trial_config_from_dict(tiny_config(lr=0.2)), report=keep_first, checkpoint_dir=tmp_path / "run")
    checkpoint = first_epoch / CHECKPOINT_NAME
    if spoil == "another version":
        state = torch.load(checkpoint, weights_only=True)
        torch.save({**state, "version": "0.0.1", "config": tiny_config()}, checkpoint)
    elif spoil == "a corrupt file":
        checkpoint.write_bytes(checkpoint.read_bytes()[:1000])
    fresh = run_trial(trial_config_from_dict(tiny_config()))
    reports = []
    with caplog.at_level("WARNING", logger="smcl_tune.trial.checkpoint"):
        resumed = run_trial(
            trial_config_from_dict(tiny_config()),
            report=lambda metrics, folder: reports.append(metrics["epoch"]),
            resume_from=first_epoch,
        )
    assert "the trial starts from scratch" in caplog.text
    assert reports == [0, 1]  # trained from its first epoch
    assert resumed.test_confusion == fresh.test_confusion


def test_without_a_validation_split_the_trial_trains_on_the_whole_subset_and_reports_its_last_epoch(tiny_config):
    config = tiny_config(epochs=2)
    config["data"]["val_per_class"] = 0
    reports = []
    result = run_trial(trial_config_from_dict(config), report=lambda metrics, folder: reports.append(metrics))
    assert result.status == "completed" and result.validation == {} and result.best_epoch == 1
    assert result.test == result.last_test
    assert not any(key.startswith("val_") for report in reports for key in report)
    assert "selected_val_top1" not in reports[-1] and reports[-1]["last_test_top1"] == result.test["top1"]


@pytest.mark.parametrize("method", ["smcl", "cmo"])
def test_an_ldam_drw_trial_trains_a_cosine_classifier_to_the_end(tmp_path, tiny_config, method):
    config = tiny_config()
    config["method"].update(name=method, classifier_loss="ldam_drw", drw_start_epoch=1)
    reported = []
    result = run_trial(
        trial_config_from_dict(config),
        report=lambda metrics, checkpoint: reported.append(metrics),
        checkpoint_dir=tmp_path,
    )
    assert result.status == "completed" and result.epochs_completed == 2
    assert all(math.isfinite(m["loss"]) and m["masked_step_fraction"] == 1.0 for m in reported)
    network = torch.load(tmp_path / CHECKPOINT_NAME, weights_only=True)["network"]
    assert "classifier.weight" in network and "classifier.bias" not in network  # the cosine classifier
    assert 0.0 <= result.test["balanced_accuracy"] <= 1.0


def test_ldam_drw_reweights_from_drw_start_epoch_as_drw_does(tiny_config):
    def losses(drw_start_epoch):
        config = tiny_config(epochs=3)
        config["method"] = {"name": "ce", "classifier_loss": "ldam_drw", "drw_start_epoch": drw_start_epoch}
        return [epoch["loss"] for epoch in run_trial(trial_config_from_dict(config)).history]

    early, late = losses(1), losses(2)
    assert early[0] == late[0]  # both without DRW in epoch 0
    assert early[1] != late[1]  # epoch 1: re-weighted in one, not in the other


def test_the_background_head_share_is_measured_on_the_test_images_with_their_objects_erased(tiny_config):
    from smcl_tune.data.splits import build_trial_data
    from smcl_tune.method.background import background_only
    from smcl_tune.metrics import confusion_matrix

    config = tiny_config()
    config["data"]["val_per_class"] = 0  # the last epoch is the result: its network is the trial's own
    data = build_trial_data(trial_config_from_dict(config).data)
    held, reports = {}, []
    result = run_trial(
        trial_config_from_dict(config),
        data=data,
        report=lambda m, c: reports.append(m),
        on_epoch=lambda epoch, metrics, network: held.update(network=network),
    )
    network = held["network"].eval()
    # the synthetic source knows each object: the objects themselves are erased, nothing else
    assert data.test_object_masks is not None and data.test_object_masks.shape == (60, 16, 16)
    erased = background_only(data.test.images, object_masks=data.test_object_masks)
    changed = (erased != data.test.images).any(dim=1)
    assert bool((changed <= data.test_object_masks).all()) and bool(changed.any())
    normalised = (erased.float() / 255 - data.mean.view(1, 3, 1, 1)) / data.std.view(1, 3, 1, 1)
    with torch.no_grad():
        predicted = network(normalised)[0].argmax(1)
    many = data.groups["many"]
    expected = float(torch.isin(predicted, torch.tensor(many)).double().mean())
    assert result.test["background_head_share"] == pytest.approx(expected)
    assert reports[-1]["test_background_head_share"] == pytest.approx(expected)
    assert reports[-1]["last_test_background_head_share"] == pytest.approx(expected)
    assert confusion_matrix(predicted, data.test.labels, 5).sum() == 60


def test_the_trial_writes_its_csv_and_pictures_beside_its_result_file(tmp_path, tiny_config):
    """The files the study's MLflow run carries are the trial's own, written where its result is."""
    import csv
    import io

    from PIL import Image

    from smcl_tune.results import CONFUSION_FILE, GALLERY_FILE, PER_CLASS_FILE

    reports = []
    result = run_trial(
        trial_config_from_dict(tiny_config()),
        report=lambda metrics, checkpoint: reports.append(checkpoint),
        checkpoint_dir=tmp_path / "run",
    )
    folder = reports[-1]
    assert (folder / RESULT_FILE).is_file()
    rows = list(csv.DictReader(io.StringIO((folder / PER_CLASS_FILE).read_text())))
    assert [row["class_name"] for row in rows] == result.class_names
    assert [int(row["train_count"]) for row in rows] == result.train_counts
    assert [float(row["test_accuracy"]) for row in rows] == pytest.approx(result.test_per_class_accuracy, abs=1e-6)
    for picture in (CONFUSION_FILE, GALLERY_FILE):
        assert Image.open(folder / picture).format == "PNG"
    assert not [path.name for path in folder.iterdir() if path.name.endswith(".tmp")]  # nothing half-written


def test_a_resume_from_a_path_that_is_not_there_is_refused_before_anything_trains(tmp_path, tiny_config):
    missing = tmp_path / "chekpoint"  # a typo, not a checkpoint a trial could have lost
    with pytest.raises(ConfigError, match=re.escape(f"resume_from: {missing}: no such checkpoint file or folder")):
        run_trial(trial_config_from_dict(tiny_config()), resume_from=missing)
