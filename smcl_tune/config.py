"""Typed configuration of one trial: data, model, method, training.

Every default comes from the method's specification (shared docs: SMCL.md). Unknown keys,
wrong types and out-of-range values are rejected with the field path and the reason.
"""

from __future__ import annotations

import functools
import re
import types
import typing
from collections.abc import Callable
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator, model_validator

from smcl_tune.errors import ConfigError, format_validation_error
from smcl_tune.field_hints import field_hint


class StrictModel(BaseModel):
    """The base of every model of a trial or study file: unknown fields are refused, a float field
    is a finite number (no NaN, no infinity), and a value assigned later is validated too."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)

    @field_validator("*", mode="before")
    @classmethod
    def _no_true_or_false_for_a_number(cls, value: Any, info: ValidationInfo) -> Any:
        # pydantic's lax mode reads true as 1 and false as 0; YAML reads yes, no, on and off so too,
        # and `epochs: yes` trained one epoch
        values = value if isinstance(value, list) else [value]  # milestones: [yes, 180] too
        if (
            any(isinstance(item, bool) for item in values)
            and info.field_name
            and _reads_true_as_a_number(cls.model_fields[info.field_name].annotation)
        ):
            raise ValueError("Input should be a number, not true or false (YAML reads yes, no, on and off so)")
        return value

    def __setstate__(self, state: dict[str, Any]) -> None:
        # A model pickled by an earlier smcl-tune (Ray's saved state of a study it started) lacks
        # the fields added since (ADDED_FIELDS): each takes its default, which trains as before.
        super().__setstate__(state)
        for name, field in type(self).model_fields.items():
            if name not in self.__dict__ and not field.is_required():
                self.__dict__[name] = field.get_default(call_default_factory=True)


def _reads_true_as_a_number(annotation: Any) -> bool:
    """Whether pydantic would take a bool for a field of this type as a number: the type admits an
    int or a float, and no bool (bool itself, Any, or a literal true or false)."""
    leaves = _leaf_types(annotation)
    takes_a_bool = any(leaf is bool or leaf is Any or leaf is True or leaf is False for leaf in leaves)
    return not takes_a_bool and any(leaf in (int, float) for leaf in leaves)


def _leaf_types(annotation: Any) -> list[Any]:
    origin = typing.get_origin(annotation)
    if origin is Annotated:
        return _leaf_types(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        return [leaf for member in typing.get_args(annotation) for leaf in _leaf_types(member)]
    if origin is Literal:
        return list(typing.get_args(annotation))
    if origin is list:
        return _leaf_types(typing.get_args(annotation)[0])
    return [annotation]


# `~/runs`, `file:~/runs`, `sqlite:///~/runs/optuna.db`: a local path from the home folder
_FROM_HOME = re.compile(r"^(?:sqlite(?:\+\w+)?:///|file:(?://)?)?~")


def written_out(path: str | None) -> str | None:
    """`path`, refused where it starts at ~, which nothing expands (a folder named ~ was made in the
    current one) and which names another folder on each machine the file may go to."""
    if path is not None and _FROM_HOME.match(path):
        raise ValueError(
            f"{path!r} starts with ~, which is not expanded (a folder named ~ would be made in the current one); "
            "write the path out, as the file may be read on other machines"
        )
    return path


SEED_RANGE = {"ge": 0, "lt": 2**32}  # numpy's and most libraries' seed range
DEVICE_PATTERN = r"^(auto|cpu|cuda|cuda:\d+|mps)$"


class SyntheticConfig(StrictModel):
    """Parameters of the built-in background-bias benchmark (data.source = synthetic)."""

    image_size: int = Field(32, ge=16, le=256, description="side of the square images, pixels")
    rho: float = Field(
        0.9,
        ge=0.0,
        le=1.0,
        description="P(a training image of class c is drawn on its own background c); otherwise a uniformly random one",
    )
    num_backgrounds: int = Field(10, ge=2, le=10, description="number of background textures K")
    test_per_class: int = Field(100, ge=1)
    val_pool_per_class: int = Field(
        100, ge=1, description="label-independent-background images per class to draw validation from"
    )
    object_scale: float = Field(1.0, ge=0.3, le=1.5, description="multiplies the object radius (5..9 px at 32 px)")
    object_contrast: float = Field(
        1.0, gt=0.0, le=1.0, description="object colour blended over the texture; 1 is opaque"
    )
    texture_scale: float = Field(1.0, ge=0.25, le=4.0, description="multiplies the textures' period; below 1 is busier")
    noise: float = Field(0.0, ge=0.0, le=64.0, description="Gaussian pixel noise over the whole image, grey levels")


DEFAULT_LOADER_WORKERS = 4
DEFAULT_IMBALANCE_FACTOR = 100.0
SYNTHETIC_MAX_CLASSES = 100  # 10 shapes x 10 colours


class DataConfig(StrictModel):
    source: Literal["synthetic", "cifar10", "cifar100", "image_folder", "file_list"] = "synthetic"
    root: str | None = Field(None, description="dataset folder, .zip folder, or list folder (not used by synthetic)")
    download: bool = Field(
        False, description="fetch CIFAR into root when it is not there: once, before the study starts"
    )
    mirror: str | None = Field(
        None,
        description="CIFAR only: an http(s) URL that serves the same archives as the CIFAR page "
        "(cifar-10-python.tar.gz, cifar-100-python.tar.gz), for a cluster without internet; "
        "default: https://www.cs.toronto.edu/~kriz/",
    )
    num_classes: int = Field(10, ge=2, le=1000, description="synthetic only; other sources define it")
    imbalance_factor: float | None = Field(
        None,
        ge=1.0,
        le=10_000.0,
        description="n_max / n_min of the long-tailed training subset; unset: 100, except for file lists, "
        "which are used as published",
    )
    profile: Literal["exp", "step"] = "exp"
    n_max: int | None = Field(
        None,
        ge=1,
        le=10_000_000,
        description="images of the head class; default: the source's per-class pool "
        "(CIFAR-10 5000, CIFAR-100 500, synthetic 500)",
    )
    val_per_class: int = Field(
        20,
        ge=0,
        description="balanced validation images per class (drawn from the official validation list where the "
        "source has one); 0: no validation split, the trial trains on the whole subset and reports its last epoch",
    )
    subset_protocol: Literal["seeded", "ldam"] = Field(
        "seeded",
        description="seeded: the subset drawn with a generator seeded by subset_seed; ldam: exactly the subsets of "
        "Cao et al.'s LDAM-DRW code (NumPy's RandomState(0), one shuffle per class in label order)",
    )
    subset_seed: int = Field(0, **SEED_RANGE, description="seed of the long-tailed subset and validation draw")
    many_above: int = Field(100, ge=0, description="many-shot: training count > many_above")
    few_below: int = Field(20, ge=1, description="few-shot: training count < few_below")
    image_size: int | None = Field(
        None,
        ge=8,
        le=1024,
        description="resize images to this side (image folders; file lists, which need it); None keeps the "
        "source size (an image folder's images must then share one)",
    )
    loader: Literal["auto", "memory", "stream"] = Field(
        "auto",
        description="memory: decode every image once and hold them as uint8 on the trial's device; stream: decode "
        "each batch in DataLoader workers (datasets too large for memory); auto: memory up to 4 GiB of decoded images",
    )
    loader_workers: int | None = Field(
        None,
        ge=0,
        description="DataLoader worker processes of the stream loader (0: decode in the trial's process); "
        f"unset: {DEFAULT_LOADER_WORKERS}",
    )
    synthetic: SyntheticConfig = Field(default_factory=SyntheticConfig)

    _root_written_out = field_validator("root")(written_out)

    @model_validator(mode="after")
    def _check(self) -> DataConfig:
        if self.source != "synthetic" and self.root is None:
            raise ValueError(f"root: required for source '{self.source}'")
        if self.few_below > self.many_above + 1:
            raise ValueError(f"few_below: must be <= many_above + 1, got {self.few_below} > {self.many_above} + 1")
        if self.loader == "memory" and self.loader_workers is not None:
            raise ValueError("loader_workers: used by loader 'stream' only (loader 'memory' decodes each image once)")
        if self.source == "synthetic":
            if self.image_size is not None and self.image_size != self.synthetic.image_size:
                raise ValueError(
                    f"image_size: not used by source 'synthetic'; set data.synthetic.image_size instead "
                    f"(got {self.image_size}, synthetic.image_size {self.synthetic.image_size})"
                )
            if self.num_classes > SYNTHETIC_MAX_CLASSES:
                raise ValueError(
                    f"num_classes: the synthetic benchmark has at most {SYNTHETIC_MAX_CLASSES} classes, "
                    f"got {self.num_classes}"
                )
        if self.source == "file_list" and self.image_size is None:
            raise ValueError("image_size: required for source 'file_list' (its images are resized to it)")
        if self.mirror is not None:
            if self.source not in ("cifar10", "cifar100"):
                raise ValueError(f"mirror: fetches CIFAR only; source '{self.source}' is not fetched")
            if not self.mirror.startswith(("http://", "https://")):
                raise ValueError(f"mirror: an http:// or https:// URL, got {self.mirror!r}")
        return self

    @property
    def subset_imbalance_factor(self) -> float | None:
        """The imbalance factor of the long-tailed subset to draw; None: the source's training list
        as published (file lists are long-tailed already)."""
        if self.imbalance_factor is not None:
            return self.imbalance_factor
        return None if self.source == "file_list" else DEFAULT_IMBALANCE_FACTOR

    @property
    def stream_workers(self) -> int:
        """DataLoader worker processes of the stream loader."""
        return DEFAULT_LOADER_WORKERS if self.loader_workers is None else self.loader_workers


class ModelConfig(StrictModel):
    architecture: Literal["resnet32", "small_cnn", "tiny_cnn", "resnet18", "resnet50"] = "resnet32"
    projection_dim: int = Field(128, ge=2, description="output size of the projection head")
    classifier: Literal["linear", "cosine"] | None = Field(
        None,
        description="linear, or cosine (normalised features and weights; the classifier of LDAM); "
        "unset: cosine for method.classifier_loss ldam_drw, linear otherwise",
    )


# Every default of a trial field that a release changed, by dotted key: what it was. A study
# started under one is resumed once its file sets that value (store/study_record.py).
FORMER_DEFAULTS: dict[str, tuple[Any, ...]] = {"method.saliency": ("spectral_residual",)}
# Every trial field a release added, by dotted key, with its default, which trains as before the
# field was there: a study started before it, whose record lacks it, resumes under that default.
ADDED_FIELDS: dict[str, Any] = {"data.mirror": None, "training.cuda_graph": False}


def flat_fields(tree: Any, prefix: str = "") -> dict[str, Any]:
    """A nested mapping's leaves by dotted key: {"training": {"lr": 0.1}} -> {"training.lr": 0.1}."""
    if not isinstance(tree, dict):
        return {prefix: tree}
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        flat.update(flat_fields(value, f"{prefix}.{key}" if prefix else str(key)))
    return flat


def trial_config_changes(before: dict[str, Any], now: dict[str, Any], prefix: str = "", shown: int = 3) -> str:
    """How a trial config as JSON that a study record or a checkpoint kept (`before`, each field added
    since at its ADDED_FIELDS default) differs from `now`: its first `shown` differing fields as
    `key: before -> now`; empty when none differs."""
    old = {**ADDED_FIELDS, **flat_fields(before)}
    new = flat_fields(now)
    changed = sorted(key for key in old.keys() | new.keys() if old.get(key, _UNSET) != new.get(key, _UNSET))
    described = ", ".join(f"{prefix}{key}: {_shown(old, key)} -> {_shown(new, key)}" for key in changed[:shown])
    return described + (f" and {len(changed) - shown} more" if len(changed) > shown else "")


_UNSET = object()  # a field one side lacks


def _shown(fields: dict[str, Any], key: str) -> str:
    return repr(fields[key]) if key in fields else "unset"


class MethodConfig(StrictModel):
    name: Literal["ce", "supcon", "mask_only", "smcl", "cmo"] = "smcl"
    # cam by the evidence of issue 39 (docs/RESULTS.md): its box misses the object far less often
    # than the spectral residual's once the model has trained, and SMCL gains accuracy by it
    saliency: Literal["spectral_residual", "gradient", "cam", "random"] = Field(
        "cam",
        description="cam (Grad-CAM of the current model's last convolutional block for the image's label), "
        "spectral_residual (no model), gradient (|d logit_y / d x|), or random: the box at a uniformly random "
        "place (the control)",
    )
    saliency_blur_sigma: float = Field(
        1.5, gt=0.0, le=32.0, description="Gaussian blur of the spectral-residual map, pixels"
    )
    compose: Literal["erase", "paste"] = Field(
        "erase",
        description="erase: x_tilde = (1 - M) * x_b + M * fill, M from the saliency of x_b (the paper's reading); "
        "paste: x_m pasted on x_b where M is 1 (the first reconstruction, close to CMO)",
    )
    mask_mode: Literal["threshold", "box"] = Field(
        "box",
        description="box: centred on argmax S, lambda ~ Beta(box_alpha, box_alpha); threshold: M = [S >= t]",
    )
    saliency_threshold: float = Field(
        0.5, ge=0.0, le=1.0, description="t of mask_mode threshold (M = [S >= t]); not used by box masks"
    )
    box_alpha: float = Field(1.0, gt=0.0, description="lambda ~ Beta(alpha, alpha) for box masks")
    mask_source: Literal["minor", "head"] = Field(
        "minor", description="paste only: the mask from the saliency of x_m (minor) or of x_b (head)"
    )
    erase_head: bool = Field(False, description="paste only: fill x_b's own salient region before pasting")
    fill: Literal["mean", "noise", "zero", "blur"] = Field(
        "mean",
        description="what replaces the erased region: the image's mean colour, Gaussian noise of its colours, 0 "
        "(the training set's mean colour) or a heavy blur of the image",
    )
    soft_label: Literal["mixed", "minor", "background"] = Field(
        "mixed",
        description="cross-entropy target of x_tilde, a its masked area: mixed (1 - a) y_b + a y_m, minor y_m, "
        "background a y_b + (1 - a) y_m",
    )
    minor_images: bool = Field(
        False, description="also forward the real minor images x_m (smcl, mask_only): [x_b ; x_tilde ; x_m]"
    )
    temperature: float = Field(0.1, gt=0.0, description="tau of the supervised contrastive loss")
    loss_weight: float = Field(1.0, ge=0.0, description="w in L = L_MCE + w * L_MSC")
    sampler_beta: float = Field(
        0.9999, gt=0.0, lt=1.0, description="beta of the effective number (minor-class sampler)"
    )
    mask_probability: float = Field(0.5, ge=0.0, le=1.0, description="p_mask: chance that a step masks")
    mask_start_epoch: int = Field(3, ge=0)
    mask_end_epoch: int | None = Field(None, ge=0, description="last masking epoch (exclusive); default epochs - 3")
    classifier_loss: Literal["ce", "drw", "balanced_softmax", "ldam_drw"] = "ce"
    drw_start_epoch: int = Field(160, ge=0, description="first epoch of DRW re-weighting (drw, ldam_drw)")
    drw_beta: float = Field(0.9999, gt=0.0, lt=1.0)
    ldam_max_margin: float = Field(
        0.5, gt=0.0, le=2.0, description="LDAM: the rarest class's margin, in cosine units; m_k = C / n_k^(1/4)"
    )
    ldam_scale: float = Field(30.0, gt=0.0, description="LDAM: s, the scale of the cosine logits in the loss")

    @property
    def uses_drw(self) -> bool:
        """Whether the classifier loss re-weights classes from drw_start_epoch on (DRW)."""
        return self.classifier_loss in ("drw", "ldam_drw")


class TrainingConfig(StrictModel):
    epochs: int = Field(200, ge=1, le=100_000)  # a bound that catches a typo of many digits before it trains for ever
    batch_size: int = Field(128, ge=2, le=1_000_000)
    lr: float = Field(0.1, gt=0.0)
    momentum: float = Field(0.9, ge=0.0, lt=1.0)
    nesterov: bool = False
    weight_decay: float = Field(2e-4, ge=0.0)
    schedule: Literal["step", "cosine", "onecycle"] = "step"
    warmup_epochs: float = Field(5.0, ge=0.0)
    milestones: list[int] = Field(
        default_factory=lambda: [160, 180], description="epochs where the step schedule drops"
    )
    milestone_factors: list[Annotated[float, Field(ge=0.0)]] = Field(
        default_factory=lambda: [0.01, 0.0001], description="lr multiplier from each milestone on"
    )
    augment: bool = Field(True, description="random crop (pad 4) and horizontal flip")
    seed: int = Field(0, **SEED_RANGE)
    device: str = Field("auto", description="auto, cpu, cuda, cuda:N, mps")
    num_threads: int | None = Field(None, ge=1, description="torch CPU threads; None leaves torch's default")
    max_steps_per_epoch: int | None = Field(None, ge=1, description="cap on steps per epoch (quick runs)")
    compile: bool = Field(False, description="torch.compile the network for training steps (CUDA only)")
    compile_mode: Literal["default", "reduce-overhead", "max-autotune"] = Field(
        "default", description="torch.compile mode; reduce-overhead adds CUDA graphs"
    )
    cuda_graph: bool = Field(
        False,
        description="replay each training step as one CUDA graph (CUDA only; eager, saying why, where it cannot)",
    )

    @field_validator("device")
    @classmethod
    def _known_device(cls, device: str) -> str:
        if not re.fullmatch(DEVICE_PATTERN, device):
            raise ValueError("one of auto, cpu, cuda, cuda:N (a GPU's index) or mps")
        return device

    @model_validator(mode="after")
    def _check(self) -> TrainingConfig:
        if len(self.milestones) != len(self.milestone_factors):
            raise ValueError(
                f"milestone_factors: needs one factor per milestone, "
                f"got {len(self.milestone_factors)} for {len(self.milestones)}"
            )
        if sorted(self.milestones) != self.milestones:
            raise ValueError(f"milestones: must be increasing, got {self.milestones}")
        if self.compile and self.device == "cpu":
            raise ValueError(
                "compile: torch.compile is used on CUDA devices only; set device to auto or cuda, or compile: false"
            )
        if self.cuda_graph and self.device == "cpu":
            raise ValueError(
                "cuda_graph: CUDA graphs need a CUDA device; set device to auto or cuda, or cuda_graph: false"
            )
        if self.cuda_graph and self.compile:
            raise ValueError(
                "cuda_graph: the step is captured whole, uncompiled; set compile: false or cuda_graph: false"
            )
        if not self.compile and self.compile_mode != "default":
            raise ValueError(f"compile_mode: '{self.compile_mode}' has no effect without compile: true")
        return self


class TrialConfig(StrictModel):
    data: DataConfig = Field(default_factory=DataConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    method: MethodConfig = Field(default_factory=MethodConfig)
    training: TrainingConfig = Field(default_factory=TrainingConfig)

    @property
    def mask_end_epoch(self) -> int:
        end = self.method.mask_end_epoch
        return self.training.epochs - 3 if end is None else end

    @property
    def classifier(self) -> str:
        """The network's classifier: model.classifier, or the one the classifier loss needs."""
        if self.model.classifier is not None:
            return self.model.classifier
        return "cosine" if self.method.classifier_loss == "ldam_drw" else "linear"

    @model_validator(mode="after")
    def _check(self) -> TrialConfig:
        method, epochs = self.method, self.training.epochs
        start, end = method.mask_start_epoch, self.mask_end_epoch
        if method.name != "ce" and min(end, epochs) <= start:  # no epoch of the run masks
            if end > start:
                raise ValueError(
                    f"method.mask_start_epoch: the masking window starts at epoch {start}, after the run's last "
                    f"epoch ({epochs - 1}), so '{method.name}' would train as plain CE; start it within the run, "
                    "e.g. method.mask_start_epoch: 0"
                )
            window = (
                f"the default window, from epoch {start} (mask_start_epoch) to epochs - 3 "
                f"(mask_end_epoch, exclusive), needs at least {start + 4} epochs"
                if method.mask_end_epoch is None
                else f"epochs {start} to {end} (exclusive)"
            )
            raise ValueError(
                f"method.mask_end_epoch: the masking window is empty in {epochs} epochs ({window}), so "
                f"'{method.name}' would train as plain CE; set it within the run, e.g. method.mask_start_epoch: 0 "
                f"and method.mask_end_epoch: {epochs}"
            )
        if method.saliency == "random" and method.mask_mode == "threshold":
            raise ValueError(
                "method.saliency: 'random' places a box at random; a threshold of a random map means nothing, so "
                "it needs mask_mode: box"
            )
        if method.compose == "erase" and method.erase_head and method.name in ("smcl", "mask_only"):
            raise ValueError(
                "method.erase_head: compose 'erase' already removes x_b's own salient region; erase_head is an "
                "option of compose 'paste'"
            )
        if method.uses_drw and method.drw_start_epoch >= epochs:
            raise ValueError(
                f"method.drw_start_epoch: DRW starts at epoch {method.drw_start_epoch} but training has only "
                f"{epochs} epochs; set an earlier start"
            )
        ldam = method.classifier_loss == "ldam_drw"
        if self.model.classifier == "linear" and ldam:
            raise ValueError(
                "model.classifier: LDAM's margins are in cosine units, so classifier_loss 'ldam_drw' needs the cosine "
                "classifier; leave model.classifier unset or set it to cosine"
            )
        if self.model.classifier == "cosine" and not ldam:
            raise ValueError(
                f"model.classifier: cosine logits lie in [-1, 1] and only classifier_loss 'ldam_drw' scales them "
                f"(method.ldam_scale); with '{method.classifier_loss}' use the linear classifier"
            )
        return self


def trial_config_from_dict(
    raw: dict[str, Any], prefix: str = "", hint: Callable[[tuple[str, ...]], str | None] | None = None
) -> TrialConfig:
    """Validate a plain mapping into a TrialConfig, raising ConfigError with field paths; `hint`
    words what an unknown field most likely meant (default: the trial's own closest field)."""
    try:
        return TrialConfig.model_validate(raw)
    except ValidationError as error:
        words = hint or functools.partial(trial_hint, prefix)
        raise ConfigError(format_validation_error(error, prefix, words)) from None


def trial_hint(prefix: str, parts: tuple[str, ...]) -> str | None:
    """`did you mean PREFIX.PATH?` for the trial's field most likely meant by the unknown `parts`."""
    meant = field_hint(TrialConfig, parts, peer_sections=True)
    if not meant:
        return None
    return f"did you mean {' or '.join('.'.join(filter(None, [prefix, path])) for path in meant.split(' or '))}?"
