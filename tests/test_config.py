import pytest

from smcl_tune.config import TrialConfig, trial_config_from_dict
from smcl_tune.errors import ConfigError
from smcl_tune.studyfile.trial_file import load_trial_config


def test_defaults_follow_the_reference_recipe():
    config = TrialConfig()
    assert config.training.epochs == 200 and config.training.batch_size == 128 and config.training.lr == 0.1
    assert config.training.milestones == [160, 180] and config.training.weight_decay == 2e-4
    assert config.method.mask_probability == 0.5 and config.method.mask_start_epoch == 3
    assert config.mask_end_epoch == 197
    assert config.method.sampler_beta == 0.9999 and config.model.architecture == "resnet32"


# SMCL.md, "Specification (one training step)": the defaults of every option the step reads, but
# the saliency: cam, not the specification's spectral residual, by issue 39's evidence (docs/RESULTS.md)
SPECIFICATION_DEFAULTS = {
    "name": "smcl",
    "saliency": "cam",
    "saliency_blur_sigma": 1.5,
    "compose": "erase",
    "mask_mode": "box",
    "saliency_threshold": 0.5,
    "box_alpha": 1.0,
    "mask_source": "minor",
    "erase_head": False,
    "fill": "mean",
    "soft_label": "mixed",
    "minor_images": False,
    "temperature": 0.1,
    "loss_weight": 1.0,
    "classifier_loss": "ce",
    "ldam_max_margin": 0.5,  # SMCL.md, baselines: LDAM's largest margin 0.5, scale s = 30
    "ldam_scale": 30.0,
}


def test_the_method_defaults_are_the_specifications():
    method = TrialConfig().method
    assert {name: getattr(method, name) for name in SPECIFICATION_DEFAULTS} == SPECIFICATION_DEFAULTS


@pytest.mark.parametrize(
    "raw, expected",
    [
        ({"method": {"temperature": -1}}, "method.temperature: Input should be greater than 0, got -1"),
        ({"method": {"temprature": 0.1}}, "method.temprature: unknown field"),
        ({"training": {"epochs": "many"}}, "training.epochs:"),
        ({"method": {"name": "focal"}}, "method.name:"),
        ({"data": {"source": "image_folder"}}, "root: required"),
        ({"training": {"milestones": [10], "milestone_factors": []}}, "milestone_factors"),
    ],
)
def test_bad_values_name_the_field_path(raw, expected):
    with pytest.raises(ConfigError) as error:
        trial_config_from_dict(raw)
    assert expected in str(error.value)


def test_yaml_errors_name_the_file(tmp_path):
    with pytest.raises(ConfigError, match=r"missing.yaml: file not found"):
        load_trial_config(tmp_path / "missing.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("training: [epochs: 3\n")
    with pytest.raises(ConfigError, match=r"broken.yaml: invalid YAML"):
        load_trial_config(broken)
    unsafe = tmp_path / "unsafe.yaml"
    unsafe.write_text("training: !!python/object/apply:os.system ['true']\n")
    with pytest.raises(ConfigError, match=r"unsafe.yaml"):
        load_trial_config(unsafe)


def test_settings_that_would_silently_do_nothing_are_refused():
    with pytest.raises(ConfigError) as short:
        trial_config_from_dict({"training": {"epochs": 6}})
    assert str(short.value) == (  # one line: what the default window needs, and how to set one
        "method.mask_end_epoch: the masking window is empty in 6 epochs (the default window, from epoch 3 "
        "(mask_start_epoch) to epochs - 3 (mask_end_epoch, exclusive), needs at least 7 epochs), so 'smcl' would "
        "train as plain CE; set it within the run, e.g. method.mask_start_epoch: 0 and method.mask_end_epoch: 6"
    )
    trial_config_from_dict({"training": {"epochs": 6}, "method": {"mask_start_epoch": 0, "mask_end_epoch": 6}})
    with pytest.raises(ConfigError, match=r"empty in 20 epochs \(epochs 5 to 5 \(exclusive\)\)"):
        trial_config_from_dict({"training": {"epochs": 20}, "method": {"mask_start_epoch": 5, "mask_end_epoch": 5}})
    after_the_run = r"^method.mask_start_epoch: the masking window starts at epoch 10, after the run's last epoch \(4\)"
    with pytest.raises(ConfigError, match=after_the_run + ", so 'smcl' would train as plain CE"):
        trial_config_from_dict({"training": {"epochs": 5}, "method": {"mask_start_epoch": 10, "mask_end_epoch": 20}})
    trial_config_from_dict({"training": {"epochs": 5}, "method": {"mask_start_epoch": 0, "mask_end_epoch": 9}})
    trial_config_from_dict({"training": {"epochs": 6}, "method": {"name": "ce"}})  # CE never masks
    with pytest.raises(ConfigError, match=r"method.drw_start_epoch: DRW starts at epoch 160"):
        trial_config_from_dict({"training": {"epochs": 60}, "method": {"classifier_loss": "drw"}})


def test_ldam_drw_switches_the_cosine_classifier_on_and_refuses_a_mismatch():
    ldam = {"training": {"epochs": 20}, "method": {"classifier_loss": "ldam_drw", "drw_start_epoch": 10}}
    config = trial_config_from_dict(ldam)
    assert config.classifier == "cosine" and config.model.classifier is None
    assert config.method.ldam_max_margin == 0.5 and config.method.ldam_scale == 30.0
    assert trial_config_from_dict({**ldam, "model": {"classifier": "cosine"}}).classifier == "cosine"
    assert trial_config_from_dict({"training": {"epochs": 20}}).classifier == "linear"
    with pytest.raises(ConfigError, match=r"model.classifier: LDAM's margins are in cosine units"):
        trial_config_from_dict({**ldam, "model": {"classifier": "linear"}})
    with pytest.raises(ConfigError, match=r"model.classifier: cosine logits lie in \[-1, 1\].*with 'drw'"):
        trial_config_from_dict({"model": {"classifier": "cosine"}, "method": {"classifier_loss": "drw"}})
    with pytest.raises(ConfigError, match=r"method.drw_start_epoch: DRW starts at epoch 160 but training has only 20"):
        trial_config_from_dict({"training": {"epochs": 20}, "method": {"classifier_loss": "ldam_drw"}})
    with pytest.raises(ConfigError, match=r"method.ldam_max_margin: Input should be greater than 0"):
        trial_config_from_dict({"method": {"classifier_loss": "ldam_drw", "ldam_max_margin": 0}})


def test_a_config_pickled_before_a_field_was_added_unpickles_with_its_default():
    """Ray keeps a study's trial configs pickled; one an earlier smcl-tune saved lacks the fields added since."""
    import pickle

    from smcl_tune.config import TrainingConfig

    training = TrainingConfig(lr=0.2)
    state = training.__getstate__()
    older = {**state, "__dict__": {k: v for k, v in state["__dict__"].items() if k != "cuda_graph"}}
    restored = TrainingConfig.__new__(TrainingConfig)
    restored.__setstate__(older)
    assert restored.cuda_graph is False and restored.lr == 0.2
    assert pickle.loads(pickle.dumps(restored)) == training
