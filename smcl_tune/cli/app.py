"""The `smcl-tune` command line: its subcommands and how errors become exit codes."""

from __future__ import annotations

import argparse
import logging
import os
import sys

from smcl_tune.cli.exit_codes import EXIT_BAD_INPUT, EXIT_FAILURE
from smcl_tune.cli.interruption import sigterm_as_interrupt
from smcl_tune.cli.report_commands import command_leaderboard, command_ui
from smcl_tune.cli.study_commands import command_prepare, command_run, command_validate, resume_command
from smcl_tune.cli.trial_command import command_trial
from smcl_tune.cli.watch_commands import command_dashboard, command_status
from smcl_tune.errors import ConfigError, DataSourceError, StudyUnavailable
from smcl_tune.layout import DEFAULT_STORAGE

STORAGE_HELP = f"the studies' storage folder (default {DEFAULT_STORAGE})"
TRACKING_HELP = "an MLflow tracking URI instead of the storage folder's store"


def _add_store_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--storage", default=DEFAULT_STORAGE, help=STORAGE_HELP)
    parser.add_argument("--tracking-uri", help=TRACKING_HELP)


def _add_run(commands) -> None:
    run = commands.add_parser("run", help="run or resume a study")
    run.add_argument("study", help="study YAML file")
    run.add_argument("--address", help="join the Ray cluster at this address (default: RAY_ADDRESS, else a local Ray)")
    run.add_argument("--restart", action="store_true", help="discard the study's earlier state and start over")
    run.add_argument("--verbose", action="store_true", help="show Ray's own progress tables and messages")
    run.set_defaults(handler=command_run)
    validate = commands.add_parser("validate", help="check a study file and print the resolved study")
    validate.add_argument("study", help="study YAML file")
    validate.set_defaults(handler=command_validate)
    prepare = commands.add_parser(
        "prepare", help="fetch and check a study's data now (CIFAR), for machines that run it offline later"
    )
    prepare.add_argument("study", help="study YAML file")
    prepare.set_defaults(handler=command_prepare)


def _add_reports(commands) -> None:
    board = commands.add_parser("leaderboard", help="rank a study's trials; several studies side by side")
    board.add_argument("studies", nargs="+", metavar="STUDY", help="study name(s)")
    board.add_argument("--format", choices=("table", "csv", "markdown", "html", "latex"), default="table")
    board.add_argument("--baseline", help="compare configurations with this baseline (default: the study's first)")
    board.add_argument(
        "--reference",
        nargs="?",
        const="",
        metavar="FILE",
        help="add published results for the same benchmark (and those of FILE, a CSV of the same columns)",
    )
    board.add_argument("--output", help="write to this file instead of the terminal")
    _add_store_arguments(board)
    board.set_defaults(handler=command_leaderboard)
    ui = commands.add_parser("ui", help="serve the MLflow UI over the study store")
    _add_store_arguments(ui)
    _add_server_arguments(ui, 5000)
    ui.set_defaults(handler=command_ui)


def _add_server_arguments(parser, port: int) -> None:
    parser.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to serve on (127.0.0.1: this machine only; 0.0.0.0: every network interface)",
    )
    parser.add_argument("--port", type=int, default=port, help=f"port to serve on ({port})")


def _add_watching(commands) -> None:
    status = commands.add_parser("status", help="where a study stands (or every study in the store), without Ray")
    status.add_argument("study", nargs="?", metavar="NAME", help="a study's name (default: list the studies)")
    _add_store_arguments(status)
    status.set_defaults(handler=command_status)
    dashboard = commands.add_parser("dashboard", help="serve optuna-dashboard over a study's Optuna storage")
    dashboard.add_argument("study", metavar="NAME", help="the study's name")
    dashboard.add_argument("--storage", default=DEFAULT_STORAGE, help=STORAGE_HELP)
    _add_server_arguments(dashboard, 8080)
    dashboard.add_argument("--refresh", type=float, default=10.0, help="seconds between reads of the study (10)")
    dashboard.add_argument(
        "--optuna-storage",
        metavar="URL",
        help="the study's optuna.storage as its study file sets it (a database server, or sqlite:///PATH), "
        "instead of the storage folder's optuna.db",
    )
    dashboard.set_defaults(handler=command_dashboard)


def _add_trial(commands) -> None:
    trial = commands.add_parser("trial", help="train and evaluate one trial from a trial config (no Ray)")
    trial.add_argument("config", help="YAML file with data / model / method / training sections")
    trial.add_argument("--epochs", type=int, help="override training.epochs")
    trial.add_argument("--output", help="write the result as JSON to this file")
    trial.set_defaults(handler=command_trial)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="smcl-tune", description="Hyperparameter studies for SMCL.")
    commands = parser.add_subparsers(dest="command", required=True)
    _add_run(commands)
    _add_reports(commands)
    _add_watching(commands)
    _add_trial(commands)
    return parser


# options whose empty value (an unset variable: `--address "$HEAD"`) would silently mean their default
NON_EMPTY_OPTIONS = ("address", "storage", "tracking_uri", "optuna_storage")


def check_no_empty_option(arguments: argparse.Namespace) -> None:
    """ConfigError naming the first option given an empty (or blank) value."""
    for name in NON_EMPTY_OPTIONS:
        value = getattr(arguments, name, None)
        if value is not None and not value.strip():
            raise ConfigError(
                f"--{name.replace('_', '-')}: empty; give a value, or leave the option out for its default"
            )


# each command's file argument, and what the file is: an empty one ("") would be read as the current folder
FILE_ARGUMENTS = {
    "run": ("study", "a study YAML file"),
    "validate": ("study", "a study YAML file"),
    "prepare": ("study", "a study YAML file"),
    "trial": ("config", "a trial config YAML file"),
}


def check_no_empty_file(arguments: argparse.Namespace) -> None:
    """ConfigError naming the command's file argument when it is empty (or blank)."""
    name, what = FILE_ARGUMENTS.get(arguments.command, (None, None))
    if name is not None and not getattr(arguments, name).strip():
        raise ConfigError(f"{name}: empty; give the path of {what}")


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # no progress bars in our output
    # nor MLflow's "View run at URL" lines, which show a server's URL as given (with its user part)
    os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    logging.getLogger("mlflow").setLevel(logging.WARNING)  # its own INFO lines (database set-up) are noise here
    parser = build_parser()
    arguments = parser.parse_args(argv)  # argparse exits with 2 on bad arguments
    try:
        check_no_empty_file(arguments)
        check_no_empty_option(arguments)
        with sigterm_as_interrupt():
            return arguments.handler(arguments)
    except (ConfigError, DataSourceError) as error:
        for line in str(error).splitlines():  # several problems: a line each
            print(f"smcl-tune: {line}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except StudyUnavailable as error:
        print(f"smcl-tune: {error}", file=sys.stderr)
        return EXIT_FAILURE
    except KeyboardInterrupt:
        if arguments.command == "run":
            print(f"smcl-tune: interrupted; resume with: {resume_command(arguments)}", file=sys.stderr)
        else:
            print("smcl-tune: interrupted", file=sys.stderr)
        return EXIT_FAILURE
    except BrokenPipeError:  # the reader went away (`smcl-tune status | head`): stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_FAILURE
