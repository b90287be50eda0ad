"""One trial: build data and model, train epoch by epoch, select on validation, evaluate on test.

`run_trial(config)` runs without Ray. `report(metrics, checkpoint)` is called once per epoch with
that epoch's scalar metrics and the folder of its checkpoint; the trial's last report also carries
its final scalars, and its checkpoint folder the result file (`results.RESULT_FILE`).
"""

from __future__ import annotations

import copy
import logging
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

import smcl_tune
from smcl_tune.atomic_write import write_atomically, write_bytes_atomically
from smcl_tune.config import TrainingConfig, TrialConfig, trial_config_from_dict
from smcl_tune.data.batches import Batch, ChunkEdit, Plan, TrainingBatches, evaluation_chunks
from smcl_tune.data.samplers import InstanceSampler, MinorClassSampler
from smcl_tune.data.splits import Split, StreamSplit, TrialData, build_trial_data
from smcl_tune.mask_gallery import GALLERY_FILE, GALLERY_PAIRS, MaskGallery, capture, gallery_png
from smcl_tune.method.background import background_box_sizes, background_only
from smcl_tune.method.losses import drw_class_weights
from smcl_tune.method.step import StepSettings, mask_batch, step_loss
from smcl_tune.metrics import SHOT_GROUPS, accuracy_summary, confusion_matrix, head_share, per_class_accuracy
from smcl_tune.models import build_network
from smcl_tune.results import TrialResult, TrialState, write_result
from smcl_tune.schedule import learning_rate_factor

log = logging.getLogger(__name__)

Report = Callable[[dict[str, Any], Path | None], None]
EpochHook = Callable[["Trial", dict[str, float]], None]
CHECKPOINT_NAME = "trial.pt"
FULL_MASK_AREA = 0.9  # a mask above this covers (nearly) the whole image: the background is gone too


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


@torch.no_grad()
def evaluate(
    network: nn.Module, split: Split, data: TrialData, batch_size: int = 512, edit: ChunkEdit | None = None
) -> torch.Tensor:
    """Confusion matrix of `network` on `split` (no augmentation), [true, predicted]; `edit`
    changes each chunk of uint8 images first (the background-only test images)."""
    network.eval()
    device = data.mean.device
    predictions = []
    for images in evaluation_chunks(split, data.mean, data.std, device, batch_size, edit):
        with _autocast(device):
            logits, _ = network(images)
        predictions.append(logits.argmax(dim=1))
    network.train()
    return confusion_matrix(torch.cat(predictions), split.labels, data.num_classes)


def background_edit(data: TrialData) -> ChunkEdit:
    """Turns chunks of the test split into their background-only images (method/background.py):
    the known objects erased on the synthetic source, the salient boxes elsewhere."""
    sizes = background_box_sizes(len(data.test))

    def edit(images: torch.Tensor, positions: slice) -> torch.Tensor:
        if data.test_object_masks is not None:
            return background_only(images, object_masks=data.test_object_masks[positions])
        return background_only(images, sizes[positions])

    return edit


def background_head_share(network: nn.Module, data: TrialData, edit: ChunkEdit | None = None) -> float:
    """The share of the background-only test images that `network` puts in a many-shot class;
    `edit`: a `background_edit(data)` made once for several networks."""
    edit = edit or background_edit(data)
    return head_share(evaluate(network, data.test, data, edit=edit), data.groups["many"])


def _autocast(device: torch.device):
    # bf16 for convolutions and matrix products; BatchNorm keeps float32 weights and running
    # statistics and accumulates in float32 (cuDNN's mixed-precision batch norm).
    return (
        torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else torch.autocast("cpu", enabled=False)
    )


def _training_network(network: nn.Module, training: TrainingConfig, device: torch.device) -> nn.Module:
    """The network the training steps call: compiled when asked for on CUDA, else `network` itself."""
    if not training.compile:
        return network
    if device.type != "cuda":
        log.warning("training.compile: ignored on %s (torch.compile is used on CUDA devices only)", device)
        return network
    return torch.compile(network, mode=training.compile_mode)


def gpu_memory_metrics(device: torch.device) -> dict[str, float]:
    """Peak GPU memory of this process since the trial started, MiB (empty off CUDA)."""
    if device.type != "cuda":
        return {}
    return {
        "gpu_memory_peak_mib": torch.cuda.max_memory_allocated(device) / 2**20,
        "gpu_memory_reserved_mib": torch.cuda.max_memory_reserved(device) / 2**20,
    }


CUDA_CONTEXT_ALLOWANCE = 0.9  # of a GPU share: each process's CUDA context lies outside the allocator's cap


def cap_gpu_memory(share: float) -> None:
    """Cap this process's CUDA allocations when it holds `share` (0 < share < 1) of a GPU.

    A scheduler shares a GPU by bookkeeping only; without a cap one trial's caching allocator can
    take the memory its neighbours need.
    """
    if not 0 < share < 1 or not torch.cuda.is_available():
        return
    fraction = share * CUDA_CONTEXT_ALLOWANCE
    torch.cuda.set_per_process_memory_fraction(fraction)
    log.info("CUDA allocations capped at %.3f of the GPU's memory (a %.2f GPU share)", fraction, share)


class Trial:
    """The mutable state of one trial; everything in it goes into a checkpoint."""

    def __init__(self, config: TrialConfig, data: TrialData, device: torch.device) -> None:
        self.config = config
        self.data = data
        self.device = device
        seed = config.training.seed
        torch.manual_seed(seed)
        self.network = build_network(
            config.model.architecture, data.num_classes, config.model.projection_dim, config.classifier
        ).to(device)
        if device.type == "cuda":
            self.network = self.network.to(memory_format=torch.channels_last)
            torch.cuda.reset_peak_memory_stats(device)
        training = config.training
        self.step_network = _training_network(self.network, training, device)
        self.optimizer = torch.optim.SGD(
            self.network.parameters(),
            lr=training.lr,
            momentum=training.momentum,
            weight_decay=training.weight_decay,
            nesterov=training.nesterov,
        )
        # Indices are drawn where the images are: on the device, or on the host for a stream split.
        sampling_device = torch.device("cpu") if isinstance(data.train, StreamSplit) else device
        self.batch_generator = torch.Generator(device=sampling_device).manual_seed(seed + 1)
        self.step_generator = torch.Generator().manual_seed(seed + 2)
        self.batches = TrainingBatches(data.train, data.mean, data.std, training.augment, self.batch_generator, device)
        self.instance_sampler = InstanceSampler(len(data.train), training.batch_size, self.batch_generator)
        self.minor_sampler = MinorClassSampler(
            data.train.labels, data.train_counts, config.method.sampler_beta, self.batch_generator
        )
        self.settings = StepSettings.from_config(config.method, data.num_classes)
        self.counts = torch.as_tensor(data.train_counts, dtype=torch.float32, device=device)
        self.epoch = 0
        self.best_epoch: int | None = None
        self.best_score = -math.inf
        self.best_state: dict[str, torch.Tensor] | None = None
        self.history: list[dict[str, float]] = []
        self.gallery: MaskGallery | None = None  # pairs of the first masking epoch

    # -- checkpoints -------------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        return {
            "version": smcl_tune.__version__,
            "config": self.config.model_dump(mode="json"),
            "epoch": self.epoch,
            "network": self.network.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "batch_generator": self.batch_generator.get_state(),
            "step_generator": self.step_generator.get_state(),
            "best_epoch": self.best_epoch,
            "best_score": self.best_score,
            "best_state": self.best_state,
            "history": self.history,
            "gallery": None if self.gallery is None else self.gallery.state(),
        }

    def load(self, state: dict[str, Any]) -> None:
        self.epoch = state["epoch"]
        self.network.load_state_dict(state["network"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.batch_generator.set_state(state["batch_generator"])
        self.step_generator.set_state(state["step_generator"])
        self.best_epoch = state["best_epoch"]
        self.best_score = state["best_score"]
        self.best_state = state["best_state"]
        self.history = state["history"]
        gallery = state.get("gallery")
        self.gallery = None if gallery is None else MaskGallery.from_state(gallery)

    # -- the mask gallery --------------------------------------------------------------------
    def _collects_gallery(self) -> bool:
        if self.settings.method not in ("smcl", "mask_only"):
            return False
        return self.gallery is None or (self.gallery.epoch == self.epoch and len(self.gallery) < GALLERY_PAIRS)

    def _add_to_gallery(self, batch: Batch) -> None:
        """The step's own pairs, masked as the step is about to mask them (a copy of its generator)."""
        generator = torch.Generator()
        generator.set_state(self.step_generator.get_state())
        with _autocast(self.device):
            parts = mask_batch(
                self.settings,
                self.step_network,
                *batch[:4],
                generator,
                head_content=batch.head_content,
                minor_content=batch.minor_content,
            )
        pairs = capture(self.epoch, *batch[:4], parts, self.data.mean, self.data.std, compose=self.settings.compose)
        self.gallery = pairs if self.gallery is None else self.gallery.extended(pairs)

    def gallery_picture(self) -> bytes | None:
        """The gallery once its epoch has ended, as PNG bytes; None before, and for methods that do not mask."""
        if self.gallery is None or self.epoch <= self.gallery.epoch:
            return None
        return gallery_png(self.gallery, self.data.class_names, self.settings.mask_source)

    # -- one epoch ----------------------------------------------------------------------------
    def _plan(self) -> Plan:
        """This epoch's head batches and, for the steps that mask, their minor-class batches."""
        method = self.config.method
        heads = self.instance_sampler.epoch()
        if self.config.training.max_steps_per_epoch is not None:
            heads = heads[: self.config.training.max_steps_per_epoch]
        if method.name == "ce" or not (method.mask_start_epoch <= self.epoch < self.config.mask_end_epoch):
            return [(head, None) for head in heads]
        masking = (torch.rand(len(heads), generator=self.step_generator) < method.mask_probability).tolist()
        return [(head, self.minor_sampler.sample(len(head)) if masks else None) for head, masks in zip(heads, masking)]

    def _class_weights(self) -> torch.Tensor | None:
        method = self.config.method
        if method.uses_drw and self.epoch >= method.drw_start_epoch:
            return drw_class_weights(self.counts, method.drw_beta)
        return None

    def train_epoch(self) -> dict[str, float]:
        training = self.config.training
        self.network.train()
        plan = self._plan()
        class_weights = self._class_weights()
        # loss, L_MCE, L_MSC, correct; masks: count, area, empty (area 0), nearly whole image (area > 0.9)
        totals = torch.zeros(8, dtype=torch.float64, device=self.device)
        masked_steps = seen = 0
        started = time.perf_counter()
        for step, batch in enumerate(self.batches.epoch(plan)):
            head_labels, minor_images = batch.head_labels, batch.minor_images
            factor = learning_rate_factor(training, self.epoch, step, len(plan))
            for group in self.optimizer.param_groups:
                group["lr"] = training.lr * factor
            if minor_images is not None and self._collects_gallery():
                self._add_to_gallery(batch)
            with _autocast(self.device):
                output = step_loss(
                    self.settings,
                    self.step_network,
                    *batch[:4],
                    self.step_generator,
                    class_weights,
                    self.counts,
                    head_content=batch.head_content,
                    minor_content=batch.minor_content,
                )
            self.optimizer.zero_grad(set_to_none=True)
            output.loss.backward()
            self.optimizer.step()
            batch = len(head_labels)
            seen += batch
            masked_steps += minor_images is not None
            areas = output.mask_areas.detach().double()
            totals += torch.stack(
                [
                    output.loss.detach().double() * batch,
                    output.classification_loss.detach().double() * batch,
                    output.contrastive_loss.detach().double() * batch,
                    (output.head_logits.detach().argmax(1) == head_labels).sum().double(),
                    areas.new_tensor(float(areas.numel())),
                    areas.sum(),
                    (areas == 0).sum().double(),
                    (areas > FULL_MASK_AREA).sum().double(),
                ]
            )
        loss, mce, msc, correct, masks, area, empty, full = totals.tolist()  # the epoch's only host synchronisation
        elapsed = time.perf_counter() - started
        return {
            "loss": loss / seen,
            "loss_mce": mce / seen,
            "loss_msc": msc / seen,
            "train_accuracy": correct / seen,
            "masked_step_fraction": masked_steps / len(plan),
            "masked_area": area / masks if masks else math.nan,
            "masked_empty_fraction": empty / masks if masks else math.nan,
            "masked_full_fraction": full / masks if masks else math.nan,
            "lr": training.lr * learning_rate_factor(training, self.epoch, len(plan) - 1, len(plan)),
            "epoch_seconds": elapsed,
            "images_per_second": seen / elapsed,
        }

    @property
    def validates(self) -> bool:
        """Whether there is a validation split to select an epoch on (data.val_per_class > 0)."""
        return len(self.data.val) > 0

    def finish_epoch(self, metrics: dict[str, float]) -> None:
        """After an epoch's training: validate, keep the best weights so far, record, move on.
        Without a validation split there is nothing to select on: the last epoch is the result."""
        data = self.data
        metrics.update(gpu_memory_metrics(self.device))
        metrics["epoch"] = self.epoch
        if not self.validates:
            self.history.append(metrics)
            self.epoch += 1
            return
        validation = accuracy_summary(evaluate(self.network, data.val, data), data.groups)
        metrics.update({f"val_{name}": value for name, value in validation.items()})
        if validation["balanced_accuracy"] > self.best_score:
            self.best_score = validation["balanced_accuracy"]
            self.best_epoch = self.epoch
            self.best_state = copy.deepcopy(self.network.state_dict())
        self.history.append(metrics)
        self.epoch += 1

    def result(self, status: str, reason: str | None) -> TrialResult:
        """The trial's result: test metrics of the weights selected on validation, or of the last
        epoch without a validation split (the trial's own network keeps its last weights)."""
        data = self.data
        validation: dict[str, float] = {}
        test: dict[str, float] = {}
        last_test: dict[str, float] = {}
        per_class: list[float] = []
        confusion: list[list[int]] = []
        best_epoch = self.best_epoch if self.validates else (self.epoch - 1 if self.history else None)
        if best_epoch is not None:
            if self.validates:
                selected = copy.deepcopy(self.network)
                selected.load_state_dict(self.best_state)
                best = self.history[best_epoch]
                validation = {key.removeprefix("val_"): value for key, value in best.items() if key.startswith("val_")}
            else:
                selected = self.network
            matrix = evaluate(selected, data.test, data)
            test = accuracy_summary(matrix, data.groups)
            erase = background_edit(data)
            test["background_head_share"] = background_head_share(selected, data, erase)
            per_class = per_class_accuracy(matrix).tolist()
            confusion = matrix.tolist()
            if best_epoch == self.epoch - 1:
                last_test = test
            else:
                last_test = accuracy_summary(evaluate(self.network, data.test, data), data.groups)
                last_test["background_head_share"] = background_head_share(self.network, data, erase)
        return TrialResult(
            status=status,
            reason=reason,
            epochs_completed=self.epoch,
            best_epoch=best_epoch,
            validation=validation,
            test=test,
            last_test=last_test,
            test_per_class_accuracy=per_class,
            test_confusion=confusion,
            group_sizes={name: len(data.groups[name]) for name in SHOT_GROUPS},
            train_counts=data.train_counts,
            class_names=data.class_names,
            history=self.history,
        )


def save_checkpoint(trial: Trial, directory: Path) -> Path:
    """The trial's state as `directory/trial.pt`, written atomically; returns `directory`."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / CHECKPOINT_NAME
    write_atomically(path, lambda file: torch.save(trial.state(), file))  # the old one stays if this fails
    gallery = directory / GALLERY_FILE
    if not gallery.exists():
        picture = trial.gallery_picture()
        if picture is not None:
            write_bytes_atomically(gallery, picture)  # then in every later checkpoint of the trial
    return directory


def load_checkpoint(path: Path) -> dict[str, Any]:
    return torch.load(path, map_location="cpu", weights_only=True)


# Where a trial runs, not what it is: a checkpoint resumes across these.
RUN_ENVIRONMENT_FIELDS = {"data": {"root", "loader", "loader_workers"}, "training": {"device", "num_threads"}}


def _defining(config: dict[str, Any]) -> dict[str, Any]:
    return {
        section: {key: value for key, value in fields.items() if key not in RUN_ENVIRONMENT_FIELDS.get(section, ())}
        for section, fields in config.items()
    }


def resumable_state(path: Path, config: TrialConfig) -> dict[str, Any] | None:
    """The checkpoint at `path` (a file or the folder holding one) if this trial can continue from it.

    A checkpoint that cannot be read, or was written by another trial configuration or another
    version of the package, is set aside with a warning: the trial starts from scratch rather than
    failing again and again, or continuing from a state that is not its own.
    """
    path = path / CHECKPOINT_NAME if path.is_dir() else path
    try:
        state = load_checkpoint(path)
    except Exception as error:  # torch.load raises many kinds on a damaged file
        log.warning("checkpoint %s is unreadable (%s): the trial starts from scratch", path, error)
        return None
    missing = {"version", "config", "epoch", "network", "optimizer"} - set(state) if isinstance(state, dict) else {"*"}
    if missing:
        log.warning("checkpoint %s lacks %s: the trial starts from scratch", path, ", ".join(sorted(missing)))
        return None
    if state["version"] != smcl_tune.__version__:
        log.warning(
            "checkpoint %s was written by smcl-tune %s, this is %s: the trial starts from scratch",
            path,
            state["version"],
            smcl_tune.__version__,
        )
        return None
    if _defining(state["config"]) != _defining(config.model_dump(mode="json")):
        log.warning("checkpoint %s was written by another trial configuration: the trial starts from scratch", path)
        return None
    return state


def run_trial(
    config: TrialConfig | dict[str, Any],
    report: Report | None = None,
    checkpoint_dir: Path | None = None,
    resume_from: Path | None = None,
    data: TrialData | None = None,
    on_epoch: EpochHook | None = None,
) -> TrialResult:
    """Train and evaluate one SMCL (or baseline) model.

    report: called once per epoch with its metrics and its checkpoint folder (None without
    `checkpoint_dir`); the last report carries the final scalars, and its folder the result file.
    checkpoint_dir: where the checkpoint (and at the end the result file) is written.
    resume_from: a checkpoint folder (or file) to continue from.
    data: prebuilt data (benchmarks share it between trials); built from config.data if None.
    on_epoch: called with the trial and the epoch's metrics after each epoch's validation.
    """
    if isinstance(config, dict):
        config = trial_config_from_dict(config)
    training = config.training
    if training.num_threads is not None:
        torch.set_num_threads(training.num_threads)
    device = resolve_device(training.device)
    data = (data or build_trial_data(config.data)).to(device)
    trial = Trial(config, data, device)
    state = None if resume_from is None else resumable_state(Path(resume_from), config)
    if state is not None:
        trial.load(state)
        log.info("resumed at epoch %d", trial.epoch)
    status, reason = TrialState.COMPLETED, None
    last_metrics: dict[str, Any] = {}
    while trial.epoch < training.epochs:
        metrics = trial.train_epoch()
        if not math.isfinite(metrics["loss"]):
            status, reason = TrialState.FAILED, f"non-finite loss ({metrics['loss']}) in epoch {trial.epoch}"
            log.warning("trial stopped: %s", reason)
            break
        trial.finish_epoch(metrics)
        if on_epoch is not None:
            on_epoch(trial, metrics)
        log.info(
            "epoch %d: loss %.4f, val balanced accuracy %.4f",
            trial.epoch - 1,
            metrics["loss"],
            metrics.get("val_balanced_accuracy", math.nan),
        )
        if trial.epoch == training.epochs:
            # The last epoch's report is the trial's last: a scheduler may stop the trial as soon
            # as it has seen `epochs` reports.
            last_metrics = metrics
            break
        checkpoint = save_checkpoint(trial, checkpoint_dir) if checkpoint_dir is not None else None
        if report is not None:
            report(metrics, checkpoint)
    # The final report: after the last epoch, or of a trial that failed or resumed after its last epoch.
    result = trial.result(status, reason)
    checkpoint = None
    if checkpoint_dir is not None:
        checkpoint = save_checkpoint(trial, checkpoint_dir)
        write_result(result, checkpoint)
    if report is not None:
        epoch = {"epoch": trial.epoch - 1} if trial.epoch else {}
        report({**epoch, **last_metrics, **result.final_metrics()}, checkpoint)
    return result
