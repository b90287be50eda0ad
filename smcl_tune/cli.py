"""The `smcl-tune` command. Exit codes: 0 success, 1 failure while running, 2 bad input."""

from __future__ import annotations

import argparse
import json
import logging
import math
import sys
from pathlib import Path

from smcl_tune.config import ConfigError, load_trial_config
from smcl_tune.data.pool import DataSourceError

EXIT_OK, EXIT_FAILURE, EXIT_BAD_INPUT = 0, 1, 2


def _format_accuracy(value: float) -> str:
    return "n/a" if value is None or math.isnan(value) else f"{100 * value:.1f}"


def _print_trial_result(result) -> None:
    sizes = result.group_sizes
    print(f"status: {result.status}" + (f" ({result.reason})" if result.reason else ""))
    print(f"epochs: {result.epochs_completed}, selected on validation: epoch {result.best_epoch}")
    print(f"shot groups (classes): many {sizes['many']} / medium {sizes['medium']} / few {sizes['few']}")
    header = f"{'split':<12}{'top-1':>8}{'balanced':>10}{'many':>8}{'medium':>8}{'few':>8}"
    print(header)
    for name, metrics in (("validation", result.validation), ("test", result.test)):
        if metrics:
            print(f"{name:<12}{_format_accuracy(metrics['top1']):>8}{_format_accuracy(metrics['balanced_accuracy']):>10}"
                  f"{_format_accuracy(metrics['many']):>8}{_format_accuracy(metrics['medium']):>8}"
                  f"{_format_accuracy(metrics['few']):>8}")


def _command_trial(arguments: argparse.Namespace) -> int:
    from smcl_tune.train import run_trial

    config = load_trial_config(arguments.config)
    if arguments.epochs is not None:
        config.training.epochs = arguments.epochs
    result = run_trial(config)
    _print_trial_result(result)
    if arguments.output:
        Path(arguments.output).write_text(json.dumps(result.to_dict(), indent=2))
    return EXIT_OK if result.status == "completed" else EXIT_FAILURE


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="smcl-tune", description="Hyperparameter studies for SMCL.")
    commands = parser.add_subparsers(dest="command", required=True)
    trial = commands.add_parser("trial", help="train and evaluate one trial from a trial config (no Ray)")
    trial.add_argument("config", help="YAML file with data / model / method / training sections")
    trial.add_argument("--epochs", type=int, help="override training.epochs")
    trial.add_argument("--output", help="write the result as JSON to this file")
    trial.set_defaults(handler=_command_trial)
    return parser


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    parser = build_parser()
    arguments = parser.parse_args(argv)  # argparse exits with 2 on bad arguments
    try:
        return arguments.handler(arguments)
    except (ConfigError, DataSourceError) as error:
        print(f"smcl-tune: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("smcl-tune: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
