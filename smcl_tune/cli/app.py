"""The `smcl-tune` command. Exit codes: 0 success, 1 failure while running, 2 bad input."""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import subprocess
import sys
from pathlib import Path

import yaml

from smcl_tune.config import ConfigError, load_trial_config
from smcl_tune.data.pool import DataSourceError
from smcl_tune.errors import StudyUnavailable

EXIT_OK, EXIT_FAILURE, EXIT_BAD_INPUT = 0, 1, 2


def _format_accuracy(value: float) -> str:
    return "n/a" if value is None or math.isnan(value) else f"{100 * value:.1f}"


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
                f"{name:<12}{_format_accuracy(metrics['top1']):>8}{_format_accuracy(metrics['balanced_accuracy']):>10}"
                f"{_format_accuracy(metrics['many']):>8}{_format_accuracy(metrics['medium']):>8}"
                f"{_format_accuracy(metrics['few']):>8}"
            )


def _command_trial(arguments: argparse.Namespace) -> int:
    from smcl_tune.results import TrialState
    from smcl_tune.train import run_trial

    overrides = {} if arguments.epochs is None else {"training.epochs": arguments.epochs}
    result = run_trial(load_trial_config(arguments.config, overrides))
    _print_trial_result(result)
    if arguments.output:
        Path(arguments.output).write_text(json.dumps(result.to_dict(), indent=2))
    return EXIT_OK if result.status == TrialState.COMPLETED else EXIT_FAILURE


def _check_data(study) -> str | None:
    """Check each condition's data by its paths (nothing downloaded or decoded); a note or None."""
    from smcl_tune.data.splits import check_trial_data

    if any(path in ("data.root", "data.source") for path in study.config.search):
        return None
    notes = []
    for condition in study.conditions:
        where = f" (condition {condition.label})" if condition.label else ""
        try:
            note = check_trial_data(study.trial_config(condition.overrides).data)
        except DataSourceError as error:
            raise ConfigError(f"{study.source}: trial.data.root{where}: {error}") from None
        if note and note not in notes:
            notes.append(note)
    return "; ".join(notes) or None


def _command_validate(arguments: argparse.Namespace) -> int:
    from smcl_tune.study_config import load_study

    study = load_study(arguments.study)
    note = _check_data(study)
    print(yaml.safe_dump(study.display_dict(), sort_keys=False).rstrip())
    if note:
        print(f"# {note}")
    print(
        f"# study '{study.name}' is valid: {study.config.num_trials} sampled trials, "
        f"{len(study.config.baselines)} baselines, fingerprint {study.fingerprint()}"
    )
    return EXIT_OK


def _command_run(arguments: argparse.Namespace) -> int:
    from smcl_tune.report.tables import format_text
    from smcl_tune.study.runner import run_study
    from smcl_tune.study_config import load_study

    study = load_study(arguments.study)
    _check_data(study)
    outcome = run_study(study, address=arguments.address, restart=arguments.restart)
    print()
    print(f"study {study.name} ran for {outcome.wall_seconds:.0f} s")
    if outcome.leaderboard is not None:
        print(format_text(outcome.leaderboard))
    if not outcome.finished:
        print("the study did not finish; run the same command again to resume it", file=sys.stderr)
        return EXIT_FAILURE
    return EXIT_OK


def _tracking_uri(arguments: argparse.Namespace) -> str:
    from smcl_tune.tracking import default_tracking_uri

    if arguments.tracking_uri:
        return arguments.tracking_uri
    storage = Path(arguments.storage).resolve()
    if not (storage / "mlflow.db").exists():
        raise ConfigError(
            f"{storage / 'mlflow.db'}: no MLflow store there; run a study first, or pass --storage or --tracking-uri"
        )
    return default_tracking_uri(storage)


def _command_leaderboard(arguments: argparse.Namespace) -> int:
    from smcl_tune.report.html import comparison_html, format_html
    from smcl_tune.report.leaderboard import EmptyStudy, StudyNotFound, load_leaderboard
    from smcl_tune.report.reference import load_reference
    from smcl_tune.report.tables import format_comparison, format_csv, format_latex, format_markdown, format_text

    uri = _tracking_uri(arguments)
    try:
        boards = [load_leaderboard(uri, name, baseline=arguments.baseline) for name in arguments.studies]
    except StudyNotFound as error:
        raise ConfigError(str(error)) from None
    except EmptyStudy as error:
        print(f"smcl-tune: {error}", file=sys.stderr)
        return EXIT_FAILURE
    fmt = arguments.format
    if len(boards) > 1:
        if fmt == "latex":
            text = "\n".join(format_latex(board) for board in boards)
        else:
            text = comparison_html(boards) if fmt == "html" else format_comparison(boards, fmt)
    else:
        reference = None
        if arguments.reference is not None:
            reference = load_reference(Path(arguments.reference) if arguments.reference else None)
        if fmt == "latex":
            text = format_latex(boards[0])
        else:
            formats = {"table": format_text, "csv": format_csv, "markdown": format_markdown, "html": format_html}
            text = formats[fmt](boards[0], reference)
    if arguments.output:
        Path(arguments.output).write_text(text)
        print(f"wrote {arguments.output}")
    else:
        print(text)
    return EXIT_OK


def _command_ui(arguments: argparse.Namespace) -> int:
    from smcl_tune.tracking import default_tracking_uri

    if arguments.tracking_uri:
        uri = arguments.tracking_uri
    else:
        storage = Path(arguments.storage).resolve()
        storage.mkdir(parents=True, exist_ok=True)
        uri = default_tracking_uri(storage)
    command = [
        sys.executable,
        "-m",
        "mlflow",
        "ui",
        "--backend-store-uri",
        uri,
        "--host",
        arguments.host,
        "--port",
        str(arguments.port),
    ]
    print(f"MLflow UI on http://{arguments.host}:{arguments.port} over {uri} (Ctrl-C stops it)")
    process = subprocess.Popen(command)
    try:
        return process.wait()
    except KeyboardInterrupt:
        process.terminate()
        process.wait(timeout=20)
        return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="smcl-tune", description="Hyperparameter studies for SMCL.")
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="run or resume a study")
    run.add_argument("study", help="study YAML file")
    run.add_argument("--address", help="join the Ray cluster at this address (default: RAY_ADDRESS, else a local Ray)")
    run.add_argument("--restart", action="store_true", help="discard the study's earlier state and start over")
    run.set_defaults(handler=_command_run)
    validate = commands.add_parser("validate", help="check a study file and print the resolved study")
    validate.add_argument("study", help="study YAML file")
    validate.set_defaults(handler=_command_validate)
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
    board.add_argument("--storage", default="smcl-runs", help="the studies' storage folder (default smcl-runs)")
    board.add_argument("--tracking-uri", help="an MLflow tracking URI instead of the storage folder's store")
    board.set_defaults(handler=_command_leaderboard)
    ui = commands.add_parser("ui", help="serve the MLflow UI over the study store")
    ui.add_argument("--storage", default="smcl-runs", help="the studies' storage folder (default smcl-runs)")
    ui.add_argument("--tracking-uri", help="an MLflow tracking URI instead of the storage folder's store")
    ui.add_argument("--host", default="127.0.0.1")
    ui.add_argument("--port", type=int, default=5000)
    ui.set_defaults(handler=_command_ui)
    trial = commands.add_parser("trial", help="train and evaluate one trial from a trial config (no Ray)")
    trial.add_argument("config", help="YAML file with data / model / method / training sections")
    trial.add_argument("--epochs", type=int, help="override training.epochs")
    trial.add_argument("--output", help="write the result as JSON to this file")
    trial.set_defaults(handler=_command_trial)
    return parser


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # no progress bars in our output
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    logging.getLogger("mlflow").setLevel(logging.WARNING)  # its own INFO lines (database set-up) are noise here
    parser = build_parser()
    arguments = parser.parse_args(argv)  # argparse exits with 2 on bad arguments
    try:
        return arguments.handler(arguments)
    except (ConfigError, DataSourceError) as error:
        print(f"smcl-tune: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except StudyUnavailable as error:
        print(f"smcl-tune: {error}", file=sys.stderr)
        return EXIT_FAILURE
    except KeyboardInterrupt:
        print("smcl-tune: interrupted; run the same command again to resume", file=sys.stderr)
        return EXIT_FAILURE


if __name__ == "__main__":
    sys.exit(main())
