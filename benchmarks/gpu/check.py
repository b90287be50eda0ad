"""CIFAR-10-LT (imbalance factor 100) on one GPU: CE and SMCL with the reference recipe, then four
SMCL trials sharing the GPU through Ray Tune, run by the study's own trainable
(`smcl_tune.study.trainable.train_study_trial`). Run through `benchmarks/gpu/gpu_check.sh`.

Prints one table per part; `--epochs`, `--ray-epochs` and `--compile-epochs` shorten a run.
"""

from __future__ import annotations

import argparse
import logging
import math
import statistics
import sys
import time
import warnings
from pathlib import Path

import torch

if __package__ in (None, ""):  # run as a file: the package `benchmarks` is found from the repository root
    sys.path[0] = str(Path(__file__).resolve().parents[2])

from benchmarks.gpu.short_recipe import mask_window_at, schedule_at
from benchmarks.stepped_trial import SteppedTrial
from smcl_tune.config import trial_config_from_dict
from smcl_tune.data.splits import TrialData, build_trial_data
from smcl_tune.trial.run import run_trial

log = logging.getLogger("gpu_check")


def trial_config(data_root: Path, method: str, epochs: int, device: str, **training) -> dict:
    """The reference recipe (SMCL.md): ResNet-32, batch 128, SGD 0.1, its step schedule at `epochs`."""
    return {
        "data": {
            "source": "image_folder",
            "root": str(data_root),
            "n_max": 5000,
            "imbalance_factor": 100,
            "val_per_class": 0,  # prepare_data.py's folder is the published subset: no image to hold out
            "subset_protocol": "ldam",
            "loader": "memory",
        },
        "model": {"architecture": "resnet32"},
        "method": {"name": method, **mask_window_at(epochs)},
        "training": {
            **schedule_at(epochs),
            "batch_size": 128,
            "lr": 0.1,
            "momentum": 0.9,
            "weight_decay": 2e-4,
            "schedule": "step",
            "device": device,
            # a CPU dry run packs 4 trials on the machine's cores: 2 threads each spun against each other
            "num_threads": 2 if device == "cuda" else 1,
            **training,
        },
    }


def _steady(history: list[dict], key: str) -> float:
    """Median of an epoch quantity, leaving out the first epoch (warm-up, compilation)."""
    values = [epoch[key] for epoch in history[1:]] or [epoch[key] for epoch in history]
    return statistics.median(values)


def _row(name: str, result, wall: float) -> str:
    test = result.test
    history = result.history
    peak = history[-1].get("gpu_memory_peak_mib", math.nan)
    return (
        f"{name:<16}{len(history):>7}{_steady(history, 'epoch_seconds'):>10.3f}"
        f"{_steady(history, 'images_per_second'):>10.0f}{peak:>10.0f}{wall:>9.0f}{100 * test['top1']:>7.1f}"
        f"{100 * test['many']:>7.1f}{100 * test['medium']:>7.1f}{100 * test['few']:>7.1f}"
    )


HEADER = (
    f"{'run':<16}{'epochs':>7}{'s/epoch':>10}{'img/s':>10}{'peak MiB':>10}{'wall s':>9}{'top-1':>7}"
    f"{'many':>7}{'medium':>7}{'few':>7}"
)


def train_runs(
    data_root: Path,
    data: TrialData,
    epochs: int,
    compile_epochs: int,
    device: str,
    steps: int | None,
    compile_mode: str = "default",
    graph_epochs: int = 0,
) -> list[str]:
    """CE and SMCL eager for `epochs` each, then each with its whole step replayed as a CUDA graph
    (training.cuda_graph) for `graph_epochs`, then SMCL compiled for `compile_epochs` (0: a run
    left out); compile_mode reduce-overhead captures the network's steps as CUDA graphs."""
    rows = []
    compiled_name = "smcl compile-graphed" if compile_mode == "reduce-overhead" else "smcl compiled"
    runs = [
        ("ce", "ce", epochs, {}),
        ("smcl", "smcl", epochs, {}),
        ("ce step-graphed", "ce", graph_epochs, {"cuda_graph": True}),
        ("smcl step-graphed", "smcl", graph_epochs, {"cuda_graph": True}),
        (compiled_name, "smcl", compile_epochs, {"compile": True, "compile_mode": compile_mode}),
    ]
    for name, method, run_epochs, extra in (run for run in runs if run[2] > 0):
        started = time.perf_counter()
        result = run_trial(
            trial_config_from_dict(
                trial_config(data_root, method, run_epochs, device, max_steps_per_epoch=steps, **extra)
            ),
            data=data,
        )
        wall = time.perf_counter() - started
        rows.append(_row(name, result, wall))
        print(f"{name}: {result.status}, epoch 0 took {result.history[0]['epoch_seconds']:.1f} s", flush=True)
        print(HEADER, rows[-1], sep="\n", flush=True)  # each row as it ends: a run cut later keeps it
    return rows


def host_synchronisations(data_root: Path, data: TrialData) -> list[str]:
    """Warnings of CUDA's sync debug mode during one SMCL training epoch (its end reads the totals once)."""
    config = trial_config_from_dict(trial_config(data_root, "smcl", 4, "cuda"))
    trial = SteppedTrial.build(config, data, torch.device("cuda"))
    trial.epoch = 1
    trial.train_epoch()  # warm-up
    torch.cuda.synchronize()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.cuda.set_sync_debug_mode("warn")
        try:
            metrics = trial.train_epoch()
        finally:
            torch.cuda.set_sync_debug_mode("default")
    syncs = [f"{w.filename}:{w.lineno}" for w in caught if "synchroniz" in str(w.message)]
    dtypes = {
        str(t.dtype)
        for m in trial.parts.network.modules()
        if isinstance(m, torch.nn.BatchNorm2d)
        for t in (m.weight, m.running_mean, m.running_var)
    }
    return [
        f"host synchronisations in one SMCL epoch ({metrics['masked_step_fraction']:.2f} of steps masked): "
        f"{len(syncs)} {sorted(set(syncs))}",
        f"BatchNorm weight and running-statistics dtypes: {sorted(dtypes)}",
    ]


def packed_trials(
    data_root: Path, epochs: int, device: str, steps: int | None, storage: Path, trials: int = 4
) -> list[str]:
    """`trials` SMCL trials (seeds 0, 1, ...) run by the study's own trainable, each holding
    1/`trials` of the GPU, all at once; a line per trial and the combined rate."""
    import ray
    from ray import tune
    from ray.tune.logger import CSVLoggerCallback, JsonLoggerCallback

    from smcl_tune.study.trainable import train_study_trial
    from smcl_tune.study.trial_spec import SEARCH, TRIAL_SPEC, TrialSpec
    from smcl_tune.studyfile.conditions import Condition

    # Ray runs each trial in its own folder: the data root is absolute.
    base = trial_config(data_root.resolve(), "smcl", epochs, device, max_steps_per_epoch=steps)
    no_condition = Condition("", {})
    specs = [
        TrialSpec(no_condition, SEARCH, f"packed-{seed}", f"packed-{seed}", {"training.seed": seed}).validated(base)
        for seed in range(trials)
    ]
    for spec in specs:
        if spec.config is None:
            raise SystemExit(f"{spec.name}: {spec.refusal}")
    # a Ray of its own: with no address, ray.init joins the last `ray start` on this machine
    ray.init(address="local", num_gpus=1, include_dashboard=False, log_to_driver=False)
    started = time.time()
    tuner = tune.Tuner(
        tune.with_resources(train_study_trial, {"cpu": 3 if device == "cuda" else 0.5, "gpu": 1.0 / trials}),
        param_space={TRIAL_SPEC: tune.grid_search(specs)},
        tune_config=tune.TuneConfig(max_concurrent_trials=trials),
        # the table reads each trial's result.json: written even where TUNE_DISABLE_AUTO_CALLBACK_LOGGERS=1
        run_config=tune.RunConfig(
            storage_path=str(storage.resolve()),
            name="packed",
            verbose=0,
            callbacks=[CSVLoggerCallback(), JsonLoggerCallback()],
        ),
    )
    results = tuner.fit()
    wall = time.time() - started
    ray.shutdown()
    lines = [
        f"{'trial':<10}{'epochs':>7}{'s/epoch':>10}{'img/s':>10}{'peak MiB':>10}{'reserved MiB':>14}{'ended s':>9}"
    ]
    rates, images = [], 0.0
    for result in results:
        name = result.config[TRIAL_SPEC].name
        if result.error is not None:
            lines.append(f"{name}: failed: {result.error}")
            continue
        history = result.metrics_dataframe
        steady = history.iloc[1:] if len(history) > 1 else history
        rate = float(steady["images_per_second"].median())
        rates.append(rate)
        images += float((history["images_per_second"] * history["epoch_seconds"]).sum())
        lines.append(
            f"{name:<10}{len(history):>7}{float(steady['epoch_seconds'].median()):>10.3f}{rate:>10.0f}"
            f"{_column_max(history, 'gpu_memory_peak_mib'):>10.0f}"
            f"{_column_max(history, 'gpu_memory_reserved_mib'):>14.0f}"
            f"{float(history['timestamp'].max()) - started:>9.0f}"
        )
    lines.append(
        f"combined: {sum(rates):.0f} img/s (sum of the trials' median training rates); "
        f"{images / wall:.0f} img/s over the {wall:.0f} s wall time including start-up and evaluation; "
        "ended s: a trial's last report, from the start of the Tuner"
    )
    return lines


def _column_max(frame, column: str) -> float:
    return float(frame[column].max()) if column in frame else math.nan


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path(".gpu-data/cifar10-lt-jpeg"))
    parser.add_argument("--epochs", type=int, default=200)
    parser.add_argument("--ray-epochs", type=int, default=6)
    parser.add_argument("--compile-epochs", type=int, default=0)
    parser.add_argument(
        "--graph-epochs", type=int, default=0, help="epochs of CE and SMCL with each step a CUDA graph (cuda_graph)"
    )
    parser.add_argument(
        "--compile-mode",
        default="default",
        choices=["default", "reduce-overhead", "max-autotune"],
        help="torch.compile mode of the compiled run; reduce-overhead: CUDA graphs",
    )
    parser.add_argument("--ray-storage", type=Path, default=Path("/tmp/gpu-check-ray"), help="Ray Tune's results")
    parser.add_argument("--skip", nargs="*", default=[], choices=["train", "sync", "ray"])
    parser.add_argument("--steps-per-epoch", type=int, default=None, help="cap on steps per epoch (dry runs)")
    parser.add_argument(
        "--cpu", action="store_true", help="a dry run of the script on the CPU (no timings worth reading)"
    )
    arguments = parser.parse_args()
    device = "cpu" if arguments.cpu else "cuda"
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    if device == "cuda" and not torch.cuda.is_available():
        print("no CUDA device: this check needs a GPU (--cpu for a dry run)", file=sys.stderr)
        return 2
    name = torch.cuda.get_device_name() if device == "cuda" else "cpu"
    print(f"torch {torch.__version__}, {name}, data {arguments.data}", flush=True)
    sections = []
    if "sync" not in arguments.skip or "train" not in arguments.skip:  # one decoding for both sections
        data = build_trial_data(trial_config_from_dict(trial_config(arguments.data, "ce", 10, device)).data)
    if "sync" not in arguments.skip and device == "cuda":
        sections.append(host_synchronisations(arguments.data, data))
        print("\n".join(sections[-1]), flush=True)
    if "train" not in arguments.skip:
        rows = train_runs(
            arguments.data,
            data,
            arguments.epochs,
            arguments.compile_epochs,
            device,
            arguments.steps_per_epoch,
            arguments.compile_mode,
            arguments.graph_epochs,
        )
        sections.append(
            [
                f"CIFAR-10-LT IF 100, ResNet-32, batch 128, {name}; accuracies in % on the 10,000 test images",
                HEADER,
                *rows,
            ]
        )
        print("\n".join(sections[-1]), flush=True)
    if "ray" not in arguments.skip:
        sections.append(
            [
                f"4 SMCL trials at 0.25 GPU each through Ray Tune, {arguments.ray_epochs} epochs each",
                *packed_trials(
                    arguments.data, arguments.ray_epochs, device, arguments.steps_per_epoch, arguments.ray_storage
                ),
            ]
        )
    print("\n=== summary ===")
    for lines in sections:
        print("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
