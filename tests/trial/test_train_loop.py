"""The training loop, watched from outside: what it hands to the step, and what it selects.

The images carry their class in their colour (grey level 40 * label + 20, no augmentation), so
a recorded batch says which class each of its images belongs to, whatever label came with it.
"""

import copy
import math

import pytest
import torch

import smcl_tune.method.step as step_module
import smcl_tune.trial.run as train_module
from smcl_tune.config import trial_config_from_dict
from smcl_tune.data.longtail import shot_groups
from smcl_tune.data.splits import DeviceSplit, TrialData
from smcl_tune.method.sampling import effective_number_probabilities
from smcl_tune.metrics import accuracy_summary
from smcl_tune.models import build_network
from smcl_tune.trial.evaluation import background_head_share, evaluate
from smcl_tune.trial.run import run_trial

CLASS_COUNTS = [120, 60, 30, 15, 8]
MEAN, STD = 0.5, 0.25
SIDE = 16


def _coded_split(counts: list[int]) -> DeviceSplit:
    labels = torch.cat([torch.full((count,), label) for label, count in enumerate(counts)])
    images = (40 * labels + 20).to(torch.uint8).view(-1, 1, 1, 1).expand(-1, 3, SIDE, SIDE).contiguous()
    return DeviceSplit(images, labels)


def coded_data() -> TrialData:
    # An unbalanced test set, so that top-1 and balanced accuracy differ.
    return TrialData(
        _coded_split(CLASS_COUNTS),
        _coded_split([6] * 5),
        _coded_split([12, 10, 8, 6, 4]),
        CLASS_COUNTS,
        shot_groups(CLASS_COUNTS, many_above=50, few_below=20),
        [f"c{i}" for i in range(5)],
        torch.full((3,), MEAN),
        torch.full((3,), STD),
    )


def classes_shown(images: torch.Tensor) -> torch.Tensor:
    """The class each normalised image's colour encodes."""
    grey = ((images[:, 0, SIDE // 2, SIDE // 2].float() * STD + MEAN) * 255).round()
    return ((grey - 20) / 40).round().long()


def config(method: dict, epochs: int, batch_size: int = 4) -> dict:
    return {
        "data": {"source": "synthetic", "num_classes": 5},  # replaced by the coded data
        "model": {"architecture": "tiny_cnn"},
        "method": method,
        "training": {
            "epochs": epochs,
            "batch_size": batch_size,
            "lr": 0.05,
            "warmup_epochs": 0,
            "milestones": [],
            "milestone_factors": [],
            "augment": False,
            "device": "cpu",
            "num_threads": 1,
        },
    }


@pytest.fixture
def recorded_steps(monkeypatch):
    """Runs a trial and returns, per step, its epoch and the classes and labels of its batches."""

    def run(trial_config: dict) -> list[dict]:
        steps, reports = [], []
        real_step = step_module.step_loss

        def recording_step(settings, network, batch, *rest):
            steps.append(
                {
                    "epoch": len(reports),
                    "head_shown": classes_shown(batch.head_images),
                    "head_labels": batch.head_labels,
                    "minor_shown": None if batch.minor_images is None else classes_shown(batch.minor_images),
                    "minor_labels": batch.minor_labels,
                }
            )
            return real_step(settings, network, batch, *rest)

        monkeypatch.setattr(step_module, "step_loss", recording_step)
        result = run_trial(
            trial_config_from_dict(trial_config),
            report=lambda metrics, checkpoint: reports.append(metrics),
            data=coded_data(),
        )
        assert result.status == "completed"
        return steps

    return run


def test_head_batches_are_instance_sampled_and_minor_batches_favour_tail_classes(recorded_steps):
    beta, probability = 0.99, 0.3
    steps = recorded_steps(
        config(
            {
                "name": "smcl",
                "mask_start_epoch": 2,
                "mask_end_epoch": 4,
                "mask_probability": probability,
                "sampler_beta": beta,
            },
            epochs=6,
        )
    )
    for epoch in range(6):
        shown = torch.cat([step["head_shown"] for step in steps if step["epoch"] == epoch])
        assert torch.bincount(shown, minlength=5).tolist() == CLASS_COUNTS  # every image once per epoch
    for step in steps:
        assert torch.equal(step["head_shown"], step["head_labels"])
        if step["minor_shown"] is not None:
            assert torch.equal(step["minor_shown"], step["minor_labels"])

    masked = [step for step in steps if step["minor_shown"] is not None]
    assert {step["epoch"] for step in masked} == {2, 3}  # only inside [mask_start_epoch, mask_end_epoch)
    in_window = [step for step in steps if step["epoch"] in (2, 3)]
    expected, spread = probability * len(in_window), math.sqrt(len(in_window) * probability * (1 - probability))
    assert abs(len(masked) - expected) <= 4 * spread, (len(masked), len(in_window))

    drawn = torch.cat([step["minor_shown"] for step in masked])
    counts = torch.bincount(drawn, minlength=5).double()
    expected_share = effective_number_probabilities(CLASS_COUNTS, beta)
    tolerance = 4 * torch.sqrt(len(drawn) * expected_share * (1 - expected_share))
    assert torch.all((counts - len(drawn) * expected_share).abs() <= tolerance), (counts, len(drawn) * expected_share)
    assert counts[4] > counts[0]  # the rarest class is drawn more often than the head class


def test_gradient_saliency_differentiates_each_image_at_its_own_class(recorded_steps, monkeypatch):
    calls = []
    real_saliency = step_module.gradient_saliency

    def recording_saliency(logits_fn, images, labels, content=None):
        calls.append((classes_shown(images), labels.clone()))
        return real_saliency(logits_fn, images, labels, content)

    monkeypatch.setattr(step_module, "gradient_saliency", recording_saliency)
    steps = recorded_steps(
        config(
            {
                "name": "smcl",
                "saliency": "gradient",
                "compose": "paste",
                "mask_mode": "threshold",
                "erase_head": True,
                "mask_start_epoch": 0,
                "mask_end_epoch": 1,
                "mask_probability": 1.0,
            },
            epochs=1,
            batch_size=16,
        )
    )
    masked = [step for step in steps if step["minor_shown"] is not None]
    # the mask gallery first masks the first masking step's 16 pairs as the step will, then the steps
    gallery_calls, calls = calls[:2], calls[2:]
    for (gallery_shown, gallery_labels), (shown, labels) in zip(gallery_calls, calls[:2], strict=True):
        assert torch.equal(gallery_shown, shown) and torch.equal(gallery_labels, labels)
    assert len(calls) == 2 * len(masked) > 0  # the minor image's saliency, and the head image's for erase_head
    for (shown, labels), step in zip(calls[::2], masked):
        assert torch.equal(shown, step["minor_shown"]) and torch.equal(labels, step["minor_labels"])
    for shown, labels in calls:
        assert torch.equal(shown, labels)


def test_test_metrics_come_from_the_epoch_selected_on_validation(monkeypatch):
    """Validation peaks at epoch 0: from epoch 1 on, the network is made to answer class 0 for everything."""
    real_train_epoch = train_module.train_one_epoch
    kept = {}

    def train_epoch_then_spoil(network, *arguments):
        metrics = real_train_epoch(network, *arguments)
        if "weights" not in kept:  # epoch 0
            kept["weights"] = copy.deepcopy(network.state_dict())
        else:
            with torch.no_grad():
                network.classifier.weight.zero_()
                network.classifier.bias.copy_(torch.tensor([10.0, 0, 0, 0, 0]))
        return metrics

    monkeypatch.setattr(train_module, "train_one_epoch", train_epoch_then_spoil)
    reports = []
    data = coded_data()
    held = {}
    result = run_trial(
        trial_config_from_dict(config({"name": "ce"}, epochs=3)),
        report=lambda metrics, checkpoint: reports.append(metrics),
        data=data,
        on_epoch=lambda epoch, metrics, network: held.update(network=network),
    )
    history = [entry["val_balanced_accuracy"] for entry in result.history]
    assert history[0] > 0.2 and history[1] == history[2] == pytest.approx(0.2)  # 0.2: one class of five right
    assert result.best_epoch == 0
    assert result.validation["balanced_accuracy"] == history[0]

    network = build_network("tiny_cnn", 5)
    network.load_state_dict(kept["weights"])
    epoch_zero = evaluate(network, data.test, data)
    assert result.test_confusion == epoch_zero.tolist()
    background = background_head_share(network, data)
    assert result.test == {**accuracy_summary(epoch_zero, data.groups), "background_head_share": background}
    confusion = torch.tensor(result.test_confusion)
    assert result.test["top1"] == pytest.approx(float(confusion.diagonal().sum() / confusion.sum()))
    assert result.test["top1"] != pytest.approx(result.test["balanced_accuracy"])
    assert reports[-1]["test_top1"] == result.test["top1"]
    # the result is computed on a copy: the trial's own network keeps its last (spoiled) weights
    assert held["network"].classifier.bias.tolist() == [10.0, 0, 0, 0, 0]
