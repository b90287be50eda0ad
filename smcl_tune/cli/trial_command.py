"""`smcl-tune trial`: one trial from a trial config, without Ray."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from smcl_tune.cli.exit_codes import EXIT_FAILURE, EXIT_OK
from smcl_tune.cli.formatting import format_accuracy
from smcl_tune.studyfile.trial_file import load_trial_config


def _print_trial_result(result) -> None:
    sizes = result.group_sizes
    print(f"status: {result.status}" + (f" ({result.reason})" if result.reason else ""))
    selection = "selected on validation" if result.validation else "no validation split, the last"
    print(f"epochs: {result.epochs_completed}, {selection}: epoch {result.best_epoch}")
    print(f"shot groups (classes): many {sizes['many']} / medium {sizes['medium']} / few {sizes['few']}")
    header = f"{'split':<12}{'top-1':>8}{'balanced':>10}{'many':>8}{'medium':>8}{'few':>8}"
    print(header)
    rows = [("validation", result.validation), ("test", result.test)]
    if result.last_test and result.last_test != result.test:
        rows.append(("test, last", result.last_test))
    for name, metrics in rows:
        if metrics:
            print(
                f"{name:<12}{format_accuracy(metrics['top1']):>8}{format_accuracy(metrics['balanced_accuracy']):>10}"
                f"{format_accuracy(metrics['many']):>8}{format_accuracy(metrics['medium']):>8}"
                f"{format_accuracy(metrics['few']):>8}"
            )


def command_trial(arguments: argparse.Namespace) -> int:
    from smcl_tune.results import TrialState
    from smcl_tune.trial.run import run_trial

    overrides = {} if arguments.epochs is None else {"training.epochs": arguments.epochs}
    result = run_trial(load_trial_config(arguments.config, overrides))
    _print_trial_result(result)
    if arguments.output:
        Path(arguments.output).write_text(json.dumps(result.to_dict(), indent=2))
    return EXIT_OK if result.status == TrialState.COMPLETED else EXIT_FAILURE
