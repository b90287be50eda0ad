"""`smcl-tune validate` and `smcl-tune run`."""

from __future__ import annotations

import argparse
import logging
import os
import shlex
import sys
from collections.abc import Iterator
from contextlib import contextmanager

import yaml

from smcl_tune.cli.data_stage import (
    check_job_data,
    checked_data,
    checked_images,
    prepare_data,
    searches_the_source,
)
from smcl_tune.cli.exit_codes import EXIT_FAILURE, EXIT_OK
from smcl_tune.cli.formatting import terminal_width
from smcl_tune.cli.fusion_note import fusion_lines
from smcl_tune.studyfile.field_effects import idle_search_fields


def check_data(study) -> list[str]:
    """Check each condition's data by its paths (nothing downloaded or decoded); notes for the user."""
    if searches_the_source(study):
        return []
    notes: list[str] = []
    for condition in study.conditions:
        data = study.trial_config(condition.overrides).data
        for note in checked_data(data, str(study.source), prefix="trial.", condition=condition.label):
            if note not in notes:  # a download to come is one note for all the conditions it serves
                notes.append(note)
    return notes


def command_validate(arguments: argparse.Namespace) -> int:
    from smcl_tune.store.paths import StudyPaths
    from smcl_tune.store.study_record import check_storage
    from smcl_tune.studyfile.study import load_study

    study = load_study(arguments.study)
    check_storage(StudyPaths.of(study))
    notes = check_data(study)
    print(yaml.safe_dump(study.display_dict(), sort_keys=False).rstrip())
    for note in notes:
        print(f"# {note}")
    for warning in idle_search_fields(study):
        print(f"# warning: {warning}")
    for line in fusion_lines(study):
        print(f"# {line}")
    per_condition = (
        f"{_count(study.config.num_trials, 'sampled trial')}, {_count(len(study.config.baselines), 'baseline')}"
    )
    conditions = len(study.conditions)
    if conditions > 1:
        per_condition += f" in each of {conditions} conditions"
    if study.planned_trials != study.config.num_trials + len(study.config.baselines):  # seeds, conditions, confirm
        per_condition += f" ({study.planned_trials} trials planned in all, as run counts them)"
    print(f"# study '{study.name}' is valid: {per_condition}, fingerprint {study.fingerprint()}")
    return EXIT_OK


def _count(number: int, thing: str) -> str:
    return f"{number} {thing}{'' if number == 1 else 's'}"


def _watching(verbose: bool, view):
    """Ray's own progress tables and INFO messages with --verbose; its warnings and errors always."""
    from smcl_tune.study.runner import Watching

    if verbose:
        return Watching(listener=view, ray_verbosity=1, ray_log_level="INFO")
    import mlflow  # noqa: F401 -- importing it sets its logger's level, which is set here after
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)  # "a new study created" and the like
    logging.getLogger("mlflow").setLevel(logging.WARNING)  # "creating initial database tables" and the like
    return Watching(listener=view, ray_verbosity=0, ray_log_level="WARNING")


@contextmanager
def _tune_reporter(verbose: bool) -> Iterator[None]:
    """Without --verbose, Tune's older reporter, which is silent at verbosity 0 (the newer one prints
    its start banner even then); the process's environment is restored afterwards, so that a later
    run in the same process (or a child it starts) is not changed by this one."""
    previous = os.environ.get("RAY_AIR_NEW_OUTPUT")
    if not verbose:
        os.environ["RAY_AIR_NEW_OUTPUT"] = "0"
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop("RAY_AIR_NEW_OUTPUT", None)
        else:
            os.environ["RAY_AIR_NEW_OUTPUT"] = previous


def _run_watched(study, arguments: argparse.Namespace):
    with _tune_reporter(arguments.verbose):
        return _run_viewed(study, arguments)


def _run_viewed(study, arguments: argparse.Namespace):
    from smcl_tune.study.runner import run_study

    if sys.stdout.isatty() and not arguments.verbose:
        from smcl_tune.cli.live_view import LiveView

        with LiveView(study.name) as view:
            return run_study(study, arguments.address, arguments.restart, _watching(False, view))
    from smcl_tune.cli.plain_view import PlainView

    view = PlainView(study.name)
    return run_study(study, arguments.address, arguments.restart, _watching(arguments.verbose, view))


def resume_command(arguments: argparse.Namespace) -> str:
    """The command that resumes the study this `run` ran: the same, without --restart."""
    words = ["smcl-tune", "run", shlex.quote(arguments.study)]
    if arguments.address:
        words += ["--address", shlex.quote(arguments.address)]
    return " ".join(words)


def command_prepare(arguments: argparse.Namespace) -> int:
    """Fetch and check each condition's data, for a machine or cluster that runs the study offline."""
    from smcl_tune.studyfile.study import load_study

    study = load_study(arguments.study)
    lines = prepare_data(study, fetch_all=True)
    check_data(study)  # every source, fetched or not, where the study expects it
    lines += checked_images(study)  # and every image file of a folder or list read
    for line in lines:
        print(line)
    print(f"study '{study.name}': its data is in place")
    return EXIT_OK


def command_run(arguments: argparse.Namespace) -> int:
    from smcl_tune.report.publish import publish_leaderboard
    from smcl_tune.report.text_table import format_text
    from smcl_tune.store.paths import StudyPaths
    from smcl_tune.study.job_storage import check_job_storage
    from smcl_tune.studyfile.study import load_study

    study = load_study(arguments.study)
    check_data(study)
    check_job_storage(study, StudyPaths.of(study))  # before a fetch: run_study checks it too, after
    check_job_data(study)
    for warning in idle_search_fields(study):
        print(f"smcl-tune: warning: {warning}", file=sys.stderr)
    if not (sys.stdout.isatty() and sys.stderr.isatty()):
        os.environ.setdefault("RAY_COLOR_PREFIX", "0")  # Ray's forwarded worker lines without colour codes
    for line in prepare_data(study):
        print(line, file=sys.stderr)
    outcome = _run_watched(study, arguments)
    board = publish_leaderboard(outcome.paths.tracking_uri, study.name, outcome.paths.artifact_root)
    print()
    print(f"study {study.name} ran for {outcome.wall_seconds:.0f} s")
    if board is not None:
        print(format_text(board, width=terminal_width()))
    if not outcome.finished:
        print(f"the study did not finish; resume with: {resume_command(arguments)}", file=sys.stderr)
        return EXIT_FAILURE
    return EXIT_OK
