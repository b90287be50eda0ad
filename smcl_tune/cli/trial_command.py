"""`smcl-tune trial`: one trial from a trial config, without Ray."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from smcl_tune.cli.data_stage import checked_data
from smcl_tune.cli.exit_codes import EXIT_FAILURE, EXIT_OK
from smcl_tune.cli.formatting import format_accuracy
from smcl_tune.cli.output_file import checked_output, write_output
from smcl_tune.errors import ConfigError
from smcl_tune.report.aligned_columns import aligned_columns


def _print_trial_result(result) -> None:
    sizes = result.group_sizes
    print(f"status: {result.status}" + (f" ({result.reason})" if result.reason else ""))
    selection = "selected on validation" if result.validation else "no validation split, the last"
    print(f"epochs: {result.epochs_completed}, {selection}: epoch {result.best_epoch + 1}")  # from 1, as the views
    print(f"shot groups (classes): many {sizes['many']} / medium {sizes['medium']} / few {sizes['few']}")
    splits = [("validation", result.validation), ("test", result.test)]
    if result.last_test and result.last_test != result.test:
        splits.append(("test, last", result.last_test))
    names = ("top1", "balanced_accuracy", "many", "medium", "few")
    rows = [[split, *(format_accuracy(metrics[name]) for name in names)] for split, metrics in splits if metrics]
    print(aligned_columns(["split", "top-1", "balanced", "many", "medium", "few"], rows, left=("split",)))


def _check_device_here(device: str, path: str) -> None:
    """The trial trains on this machine: a CUDA or MPS device it lacks is refused before anything trains."""
    from smcl_tune.trial.device import missing_device

    missing = missing_device(device)
    if missing:
        raise ConfigError(f"{path}: training.device: {device}, but {missing}; set training.device: auto or cpu")


def command_trial(arguments: argparse.Namespace) -> int:
    from smcl_tune.results import TrialState
    from smcl_tune.studyfile.trial_file import load_trial_config
    from smcl_tune.trial.run import run_trial

    output = checked_output(arguments.output)
    config_file = Path(arguments.config)
    if output is not None and output.exists() and config_file.exists() and output.samefile(config_file):
        # the result would replace the config it came from
        raise ConfigError(f"--output {arguments.output}: that is the trial file itself; name another file")
    overrides = {} if arguments.epochs is None else {"training.epochs": arguments.epochs}
    config = load_trial_config(arguments.config, overrides)
    _check_device_here(config.training.device, arguments.config)
    for note in checked_data(config.data, arguments.config):  # its paths, before anything trains
        print(f"smcl-tune: {note}", file=sys.stderr)
    result = run_trial(config)
    _print_trial_result(result)
    if output is not None:
        write_output(output, json.dumps(result.to_dict(), indent=2))
    return EXIT_OK if result.status == TrialState.COMPLETED else EXIT_FAILURE
