"""The stream loader (DataLoader workers, for data too large for memory) trains exactly as the memory one."""

import zipfile

import numpy as np
import pytest
from PIL import Image

from smcl_tune.config import trial_config_from_dict
from smcl_tune.data.splits import DeviceSplit, StreamSplit, build_trial_data
from smcl_tune.errors import ConfigError
from smcl_tune.trial.run import run_trial


def _image_folder_zips(root, per_class=(24, 12, 6), test_per_class=4, size=16):
    """train.zip and test.zip of random PNG images: class k is tinted by channel k."""
    rng = np.random.default_rng(0)
    for split, counts in (("train", per_class), ("test", [test_per_class] * len(per_class))):
        with zipfile.ZipFile(root / f"{split}.zip", "w") as archive:
            for label, count in enumerate(counts):
                for number in range(count):
                    pixels = rng.integers(0, 120, (size, size, 3), dtype=np.uint8)
                    pixels[..., label] += 120
                    path = root / "image.png"
                    Image.fromarray(pixels).save(path)
                    archive.write(path, f"{split}/class{label}/{number:04d}.png")
    return root


def _folder_config(tiny_config, root, loader, **data):
    config = tiny_config()
    config["data"] = {
        "source": "image_folder",
        "root": str(root),
        "imbalance_factor": 4,
        "val_per_class": 2,
        "many_above": 15,
        "few_below": 8,
        "loader": loader,
        **data,
    }
    return config


def _trial_outcome(result):
    return [
        (m["loss"], m["loss_msc"], m["train_accuracy"], m["val_balanced_accuracy"]) for m in result.history
    ], result.test_confusion


@pytest.mark.parametrize("workers", [0, 2])
def test_stream_loader_gives_the_memory_loaders_losses_and_predictions(tmp_path, workers, tiny_config):
    root = _image_folder_zips(tmp_path)
    memory = run_trial(trial_config_from_dict(_folder_config(tiny_config, root, "memory")))
    streamed = run_trial(trial_config_from_dict(_folder_config(tiny_config, root, "stream", loader_workers=workers)))
    assert _trial_outcome(streamed) == _trial_outcome(memory)
    assert memory.history[0]["masked_step_fraction"] == 1.0  # the minor-class batches went through both paths


def test_auto_loader_keeps_small_data_in_memory_and_stream_decodes_on_demand(tmp_path, tiny_config):
    root = _image_folder_zips(tmp_path)
    auto = build_trial_data(trial_config_from_dict(_folder_config(tiny_config, root, "auto")).data)
    streamed = build_trial_data(trial_config_from_dict(_folder_config(tiny_config, root, "stream")).data)
    assert isinstance(auto.train, DeviceSplit) and isinstance(auto.test, DeviceSplit)
    assert isinstance(streamed.train, StreamSplit) and isinstance(streamed.val, StreamSplit)
    assert streamed.train.labels.tolist() == auto.train.labels.tolist()
    assert streamed.train.pool.load(streamed.train.indices).equal(auto.train.images)
    assert streamed.mean.equal(auto.mean) and streamed.std.equal(auto.std)


def test_loader_workers_without_the_stream_loader_is_refused(tmp_path, tiny_config):
    with pytest.raises(ConfigError, match=r"data.loader_workers: used by loader 'stream' only"):
        trial_config_from_dict(_folder_config(tiny_config, tmp_path, "memory", loader_workers=2))


def test_a_memory_loader_config_survives_its_own_dump(tmp_path, tiny_config):
    # Checkpoints and `smcl-tune show` write the config out whole; it must load back.
    config = trial_config_from_dict(_folder_config(tiny_config, tmp_path, "memory"))
    assert trial_config_from_dict(config.model_dump(mode="json")) == config


def test_compile_on_the_cpu_is_refused(tiny_config):
    with pytest.raises(ConfigError, match=r"training.compile: torch.compile is used on CUDA devices only"):
        trial_config_from_dict(tiny_config(compile=True))
    with pytest.raises(ConfigError, match=r"training.compile_mode: 'reduce-overhead' has no effect"):
        trial_config_from_dict(tiny_config(compile_mode="reduce-overhead"))


@pytest.mark.parametrize("loader", ["memory", "stream"])
def test_both_loaders_mark_the_crops_padding_on_head_and_minor_images(tmp_path, tiny_config, loader):
    import torch

    from smcl_tune.data.batches import TrainingBatches
    from smcl_tune.data.samplers import InstanceSampler, MinorClassSampler

    root = _image_folder_zips(tmp_path)  # every pixel of these images has a channel >= 120: never black
    data = build_trial_data(trial_config_from_dict(_folder_config(tiny_config, root, loader)).data)
    generator = torch.Generator().manual_seed(0)
    batches = TrainingBatches(data.train, data.mean, data.std, True, generator, torch.device("cpu"))
    heads = InstanceSampler(len(data.train), 8, generator).epoch()
    minor = MinorClassSampler(data.train.labels, data.train_counts, 0.999, generator)
    plan = [(head, minor.sample(len(head))) for head in heads]
    seen = 0
    for batch in batches.epoch(plan):
        for images, content in ((batch.head_images, batch.head_content), (batch.minor_images, batch.minor_content)):
            pixels = images * data.std.view(1, 3, 1, 1) + data.mean.view(1, 3, 1, 1)
            black = pixels.abs().amax(dim=1) < 1e-4  # the zero padding, and only it
            assert content.shape == black.shape and torch.equal(content, ~black)
            seen += int(black.any())
    assert seen > 0  # the crops did pad
