"""`smcl-tune leaderboard` and `smcl-tune ui`: reading a study's results."""

from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

from smcl_tune.cli.exit_codes import EXIT_FAILURE, EXIT_OK
from smcl_tune.cli.formatting import terminal_width
from smcl_tune.cli.output_file import checked_output, write_output
from smcl_tune.cli.server_address import check_address_free, server_url
from smcl_tune.errors import ConfigError
from smcl_tune.layout import MLFLOW_DATABASE

UI_WORKERS = 1  # one reader at a desk; MLflow's default of 4 processes takes 4 times the memory and start-up
# MLflow's server also starts a job runner (a process of its own) for its GenAI jobs; smcl-tune runs none.
NO_JOB_RUNNER = {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
# MLflow's server warns of its own use of starlette, which a user of the UI can do nothing about.
STARLETTE_WARNING = "ignore:starlette.middleware.wsgi is deprecated"


def _quiet_server() -> dict[str, str]:
    """PYTHONWARNINGS with the starlette filter added to the user's own."""
    own = os.environ.get("PYTHONWARNINGS")
    return {"PYTHONWARNINGS": f"{own},{STARLETTE_WARNING}" if own else STARLETTE_WARNING}


def tracking_uri(arguments: argparse.Namespace) -> str:
    """The MLflow store a read command reads: --tracking-uri, else the storage folder's own."""
    from smcl_tune.store.health_check import check_tracking_answers

    if arguments.tracking_uri:
        check_usable_scheme(arguments.tracking_uri)
        check_tracking_answers(arguments.tracking_uri, "--tracking-uri", "or check the URI")
        return existing_store_uri(arguments.tracking_uri)
    return storage_store_uri(Path(arguments.storage).resolve())


def check_usable_scheme(uri: str) -> None:
    """A --tracking-uri with a scheme names a store smcl-tune can use (a bare path is
    existing_store_uri's to check)."""
    from smcl_tune.studyfile.tracking_uri import TRACKING_URI_FORMS, usable_tracking_uri
    from smcl_tune.studyfile.uri_credentials import without_credentials

    if "://" in uri and not usable_tracking_uri(uri):
        raise ConfigError(f"--tracking-uri: {without_credentials(uri)}: {TRACKING_URI_FORMS}")


def existing_store_uri(uri: str) -> str:
    """A --tracking-uri that names a local store: refused when the store is not there (a reader
    never makes one), or when it is a bare path: to a study's sqlite file (MLflow would take it for
    a folder store), or to a folder (MLflow 3 refuses folder stores)."""
    from smcl_tune.store.sqlite_copy import sqlite_path

    database = sqlite_path(uri)
    if database is not None and not database.is_file():
        raise ConfigError(f"--tracking-uri: {database}: no MLflow store there; run a study first, or check the URI")
    if "://" in uri:
        return uri
    path = Path(uri.removeprefix("file:"))
    if path.is_file():
        raise ConfigError(f"--tracking-uri: {uri} is a path, not a URI: write sqlite:///{path.resolve()}")
    if not path.is_dir():
        raise ConfigError(f"--tracking-uri: {uri}: no MLflow store there; run a study first, or check the URI")
    # a folder: MLflow 3 reads no folder store (`mlruns`); a study's storage holds its sqlite store
    database = path.resolve() / MLFLOW_DATABASE
    hint = f"--storage {path}" if database.is_file() else "sqlite:///PATH of a study's mlflow.db, or --storage FOLDER"
    raise ConfigError(f"--tracking-uri: {uri} is a folder, which MLflow 3 reads no store from: give {hint}")


def storage_store_uri(storage: Path) -> str:
    """The MLflow store of a storage folder; refused when there is none (nothing is created)."""
    from smcl_tune.store.paths import default_tracking_uri
    from smcl_tune.store.sqlite_copy import sqlite_path

    uri = default_tracking_uri(storage)  # the store StudyPaths gives a study there
    database = sqlite_path(uri)
    if not database.exists():
        raise ConfigError(f"{database}: no MLflow store there; run a study first, or pass --storage or --tracking-uri")
    return uri


def command_leaderboard(arguments: argparse.Namespace) -> int:
    from smcl_tune.errors import EmptyStudy, StudyNotFound, UnknownBaseline
    from smcl_tune.report.comparison import format_comparison
    from smcl_tune.report.csv_table import format_csv
    from smcl_tune.report.latex_table import format_latex
    from smcl_tune.report.leaderboard import load_leaderboard
    from smcl_tune.report.markdown_table import format_markdown
    from smcl_tune.report.reference import load_own_reference, load_reference, rows_of_other_benchmarks
    from smcl_tune.report.text_table import format_text

    output = checked_output(arguments.output)
    twice = next((name for index, name in enumerate(arguments.studies) if name in arguments.studies[:index]), None)
    if twice is not None:
        raise ConfigError(f"leaderboard: study '{twice}' is named twice; name each study once")
    if arguments.baseline is not None and len(arguments.studies) > 1:
        raise ConfigError(
            "--baseline: studies side by side are compared best trial against best trial, without paired "
            "differences; run `smcl-tune leaderboard STUDY --baseline NAME` for each"
        )
    reference = own = None
    if arguments.reference is not None:
        if len(arguments.studies) > 1:
            raise ConfigError(
                "--reference: studies side by side are shown without published results; "
                "run `smcl-tune leaderboard STUDY --reference` for each"
            )
        own = load_own_reference(Path(arguments.reference)) if arguments.reference else None
        reference = load_reference(own)
    uri = tracking_uri(arguments)
    try:
        boards = [load_leaderboard(uri, name, baseline=arguments.baseline) for name in arguments.studies]
    except (StudyNotFound, UnknownBaseline) as error:
        raise ConfigError(str(error)) from None
    except EmptyStudy as error:
        print(f"smcl-tune: {error}", file=sys.stderr)
        return EXIT_FAILURE
    fmt = arguments.format
    if fmt == "html":  # plotly and optuna load only for the HTML report
        from smcl_tune.report.html import comparison_html, format_html
    if len(boards) > 1:
        if fmt == "latex":
            text = "\n".join(format_latex(board) for board in boards)
        else:
            text = comparison_html(boards) if fmt == "html" else format_comparison(boards, fmt)
    else:
        if fmt == "latex":
            text = format_latex(boards[0], reference)
        elif fmt == "table":
            text = format_text(boards[0], reference, width=None if output else terminal_width())
        elif fmt == "html":
            text = format_html(boards[0], reference)
        else:
            text = {"csv": format_csv, "markdown": format_markdown}[fmt](boards[0], reference)
    if output is not None:
        write_output(output, text)
        print(f"wrote {arguments.output}")
    else:
        print(text, end="" if text.endswith("\n") else "\n")  # a CSV ends in its own newline: no blank line
    for board in boards:
        if arguments.baseline and board.differences().empty:
            print(
                f"study {board.study}: no paired differences to '{arguments.baseline}': a difference needs a "
                "configuration that shares at least two seeds with it (baselines' `seeds`, `confirm.seeds`)",
                file=sys.stderr,
            )
    unshown = None if own is None else rows_of_other_benchmarks(own, boards[0].trials, boards[0].class_names)
    if unshown:
        print(f"smcl-tune: --reference {arguments.reference}: {unshown}", file=sys.stderr)
    return EXIT_OK


def _study_links(uri: str, base_url: str) -> list[str]:
    from smcl_tune.report.ui_links import trial_runs_link
    from smcl_tune.store.snapshot import StoreSnapshot
    from smcl_tune.tracking.tags import OBJECTIVE_METRIC_TAG, OBJECTIVE_MODE_TAG, STUDY_TAG

    with StoreSnapshot(uri, None) as snapshot:
        runs = snapshot.store.study_runs()
    lines = []
    for run in sorted(runs, key=lambda run: run.data.tags.get(STUDY_TAG, "")):
        tags = run.data.tags
        link = trial_runs_link(
            base_url,
            run.info.experiment_id,
            tags.get(STUDY_TAG, ""),
            tags.get(OBJECTIVE_METRIC_TAG, "val_balanced_accuracy"),
            tags.get(OBJECTIVE_MODE_TAG, "max"),
        )
        lines.append(f"  {tags.get(STUDY_TAG, '')}: {link}")
    return lines


def command_ui(arguments: argparse.Namespace) -> int:
    from smcl_tune.layout import ARTIFACT_FOLDER
    from smcl_tune.store.relocation import relocate_artifacts
    from smcl_tune.store.sqlite_copy import sqlite_path
    from smcl_tune.studyfile.study import redact_uri

    storage = None if arguments.tracking_uri else Path(arguments.storage).resolve()
    if arguments.tracking_uri and urlsplit(arguments.tracking_uri).scheme in ("http", "https"):
        raise ConfigError(
            f"--tracking-uri: {redact_uri(arguments.tracking_uri)} is a tracking server: open its own UI at that "
            "address; `smcl-tune ui` serves a store of files (--storage, or --tracking-uri sqlite:///PATH)"
        )
    # a database that does not answer (MLflow's server would end in a traceback), an empty folder or a
    # missing sqlite file: refused, and no store of MLflow's making
    uri = tracking_uri(arguments)
    check_address_free(arguments.host, arguments.port)  # before the store is touched
    if storage is not None:
        relocate_artifacts(uri, storage / ARTIFACT_FOLDER)  # logs where a moved store's artifacts now are
    base_url = server_url(arguments.host, arguments.port)
    database = sqlite_path(uri)
    links = _study_links(uri, base_url) if database is not None and database.is_file() else []
    # the store's URI goes through the environment, not the command line, which every user can read (ps)
    stores = {"MLFLOW_BACKEND_STORE_URI": uri, "MLFLOW_REGISTRY_STORE_URI": uri}
    command = [sys.executable, "-m", "mlflow", "ui"]
    command += ["--host", arguments.host, "--port", str(arguments.port)]
    command += ["--workers", str(UI_WORKERS)]
    print(f"MLflow UI on {base_url} over {redact_uri(uri)} (Ctrl-C stops it)")
    if links:
        print("each study's trials, best first:")
        print("\n".join(links), flush=True)
    return serve_until_stopped(command, environment={**os.environ, **NO_JOB_RUNNER, **_quiet_server(), **stores})


def serve_until_stopped(command: list[str], environment: dict[str, str] | None = None) -> int:
    """Run a server until it exits, or until this process gets Ctrl-C or SIGTERM; then stop the
    server with every process it started (MLflow runs uvicorn and its workers), never leaving one."""
    # A session of its own: Ctrl-C in the terminal reaches only this process.
    process = subprocess.Popen(command, start_new_session=True, env=environment)
    try:
        return process.wait()
    except KeyboardInterrupt:  # Ctrl-C, or SIGTERM, which cli/app.py takes as one
        stop_process_tree(process.pid)
        process.wait(timeout=10)
        return EXIT_OK


def stop_process_tree(pid: int, grace_s: float = 20.0) -> None:
    """SIGTERM to a process and all its descendants; SIGKILL to those still alive after `grace_s`."""
    import psutil

    try:
        root = psutil.Process(pid)
        tree = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return
    for member in tree:
        with contextlib.suppress(psutil.NoSuchProcess):
            member.terminate()
    _, alive = psutil.wait_procs(tree, timeout=grace_s)
    for member in alive:
        with contextlib.suppress(psutil.NoSuchProcess):
            member.kill()
    psutil.wait_procs(alive, timeout=10)
