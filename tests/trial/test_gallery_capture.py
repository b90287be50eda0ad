"""The mask gallery: the first masking epoch's pairs, exactly as the step composed them, as a PNG
in the trial's checkpoint (and so in MLflow and the HTML report)."""

import io

import pytest
import torch
from PIL import Image

from benchmarks.stepped_trial import SteppedTrial
from smcl_tune.config import trial_config_from_dict
from smcl_tune.data.splits import build_trial_data
from smcl_tune.figures.mask_gallery import GALLERY_PAIRS, soft_label_text
from smcl_tune.method.masking import compose, mask_area
from smcl_tune.results import GALLERY_FILE
from smcl_tune.trial.checkpoint import CHECKPOINT_NAME, TrialCheckpoint, load_checkpoint
from smcl_tune.trial.device import resolve_device
from smcl_tune.trial.gallery_capture import GalleryCapture
from smcl_tune.trial.output_files import gallery_picture
from smcl_tune.trial.run import run_trial


def _smcl(tiny_config, **method):
    config = tiny_config(epochs=3, num_threads=1)
    config["method"].update({"mask_start_epoch": 1, "mask_end_epoch": 3, **method})
    return config


class GalleryTrial:
    """A trial stepped an epoch at a time, its mask gallery captured as run_trial captures it."""

    def __init__(self, config: dict) -> None:
        config = trial_config_from_dict(config)
        self.trial = SteppedTrial.build(config, build_trial_data(config.data), resolve_device("cpu"))
        self.capture = GalleryCapture(self.trial.parts.settings, self.trial.data.mean, self.trial.data.std, None)

    def train_epoch(self) -> None:
        trial = self.trial
        parts = trial.parts
        trial.train_epoch(on_masking_batch=self.capture.hook(trial.epoch, parts.step_network, parts.generators.steps))

    @property
    def gallery(self):
        return self.capture.gallery

    def picture(self) -> bytes | None:
        trial = self.trial
        return gallery_picture(self.gallery, trial.epoch, trial.data.class_names, trial.config.method.mask_source)


def test_the_erase_gallery_holds_16_images_of_the_first_masking_epoch_as_erased(tiny_config):
    trial = GalleryTrial(_smcl(tiny_config, fill="zero"))
    trial.train_epoch()  # epoch 0 does not mask: no gallery yet
    assert trial.gallery is None and trial.picture() is None
    trial.train_epoch()
    gallery = trial.gallery
    assert gallery.epoch == 1 and len(gallery) == GALLERY_PAIRS and gallery.compose == "erase"
    # the erased image is the image itself outside the box, and the fill (0: the mean colour) inside
    mask = gallery.mask.unsqueeze(1)
    mean_colour = (trial.trial.data.mean.view(1, 3, 1, 1) * 255).expand_as(gallery.head)
    expected = compose(gallery.head.float(), mean_colour, mask)
    assert (gallery.composite.float() - expected).abs().max() <= 1.0  # uint8 rounding
    # a box, centred on the most salient of the image's own pixels
    assert bool((mask_area(mask) > 0).all())
    # the soft label: (1 - a) of the image's class, a of the minor class drawn for it
    area = mask_area(mask)
    rows = torch.arange(len(gallery))
    assert torch.allclose(
        gallery.targets[rows, gallery.minor_labels], area + (gallery.head_labels == gallery.minor_labels) * (1 - area)
    )
    picture = Image.open(io.BytesIO(trial.picture()))
    assert picture.size[0] > 600 and picture.size[1] > 16 * 100  # five columns, one row per image


def test_the_paste_gallery_holds_16_pairs_of_the_first_masking_epoch_as_composed(tiny_config):
    trial = GalleryTrial(_smcl(tiny_config, compose="paste", mask_mode="threshold"))
    trial.train_epoch()  # epoch 0 does not mask: no gallery yet
    assert trial.gallery is None and trial.picture() is None
    trial.train_epoch()
    gallery = trial.gallery
    assert gallery.epoch == 1 and len(gallery) == GALLERY_PAIRS and gallery.compose == "paste"
    # the composite shows the minor image where the mask is 1 and the head image elsewhere
    mask = gallery.mask.unsqueeze(1)
    expected = compose(gallery.head.float(), gallery.minor.float(), mask)
    assert (gallery.composite.float() - expected).abs().max() <= 1.0  # uint8 rounding
    # the soft label is the one the step trains on: (1 - a) head + a minor
    area = mask_area(mask)
    rows = torch.arange(len(gallery))
    assert torch.allclose(
        gallery.targets[rows, gallery.minor_labels], area + (gallery.head_labels == gallery.minor_labels) * (1 - area)
    )
    assert torch.allclose(gallery.targets.sum(1), torch.ones(len(gallery)))
    picture = Image.open(io.BytesIO(trial.picture()))
    assert picture.size[0] > 600 and picture.size[1] > 16 * 100  # five columns, one row per pair


class Interrupted(Exception):
    pass


def test_a_checkpoint_carries_the_gallery_and_a_resumed_trial_keeps_it(tiny_config, tmp_path):
    config = trial_config_from_dict(_smcl(tiny_config))  # masks in epochs 1 and 2 of 3

    def stop_after_epoch_one(metrics, _folder):
        if metrics["epoch"] == 1:
            raise Interrupted

    with pytest.raises(Interrupted):
        run_trial(config, report=stop_after_epoch_one, checkpoint_dir=tmp_path / "first")
    assert (tmp_path / "first" / GALLERY_FILE).is_file()
    first = TrialCheckpoint.from_state(load_checkpoint(tmp_path / "first" / CHECKPOINT_NAME))
    assert first.epoch == 2 and first.gallery.epoch == 1
    run_trial(config, checkpoint_dir=tmp_path / "second", resume_from=tmp_path / "first")
    resumed = TrialCheckpoint.from_state(load_checkpoint(tmp_path / "second" / CHECKPOINT_NAME))
    assert resumed.epoch == 3
    assert resumed.gallery.epoch == 1  # a later masking epoch does not replace it
    assert torch.equal(resumed.gallery.composite, first.gallery.composite)


@pytest.mark.parametrize("method", ["ce", "supcon"])
def test_methods_that_do_not_mask_have_no_gallery(tiny_config, tmp_path, method):
    config = _smcl(tiny_config)
    config["method"]["name"] = method
    run_trial(trial_config_from_dict(config), checkpoint_dir=tmp_path / "checkpoint")
    assert not (tmp_path / "checkpoint" / GALLERY_FILE).exists()


def test_soft_label_text_names_the_mixed_classes_largest_first():
    targets = torch.tensor([0.0, 0.7, 0.0, 0.3])
    assert soft_label_text(targets, ["a", "b", "c", "d"]) == "0.70 b + 0.30 d"
