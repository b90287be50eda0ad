"""Every error a user sees as one line (the CLI prints it, no traceback).

Bad input, exit code 2: ConfigError (a study or trial file, an argument, a path), DataSourceError
(a dataset), StudyNotFound and UnknownBaseline (a name the store does not hold).
The input was fine but the study cannot go on now, exit code 1: StudyUnavailable (StudyBusy,
DamagedStore), EmptyStudy.
"""

from __future__ import annotations

import re
import reprlib
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pydantic import ValidationError

CHAIN_LIMIT = 20  # a chain that cycles through its own context ends here


def error_chain(error: BaseException | None) -> Iterator[BaseException]:
    """`error`, then what it was raised from or while handling, and so on: sqlalchemy, MLflow, Optuna,
    pyarrow and Ray each wrap an error their own way (Ray's task errors keep it as `.cause`)."""
    for _ in range(CHAIN_LIMIT):
        if error is None:
            return
        yield error
        cause = getattr(error, "cause", None)
        error = cause if isinstance(cause, BaseException) else error.__cause__ or error.__context__


def first_line(error: BaseException) -> str:
    """An error in one line: its message's first, or its type's name; a database error's own
    (SQLAlchemy keeps the driver's as `.orig`, and adds a background link below it)."""
    cause = getattr(error, "orig", None) or error
    lines = [line.strip() for line in str(cause).splitlines() if line.strip()]
    return lines[0] if lines else type(cause).__name__


class ConfigError(ValueError):
    """A configuration that cannot be used; the message names the field path and the reason."""


class DataSourceError(ValueError):
    """A dataset that cannot be used (exit code 2, bad input); the message names the path and what was expected."""


class DataCountError(DataSourceError):
    """A class that the long-tailed subset or the validation split leaves without training images:
    the data fields' doing (n_max, imbalance_factor, val_per_class), not a path's."""


class StudyUnavailable(RuntimeError):
    """A study that cannot be run or read now: another driver holds it, or its store is unreadable."""


class StudyStop(StudyUnavailable):
    """Raised in Ray Tune's callbacks or searcher to end the study with this one message (exit 1),
    every trial keeping its last checkpoint: a store that stopped answering, data every trial lacks."""


class StudyBusy(StudyUnavailable):
    """Another driver runs this study; the message says which (host and process id)."""


class DamagedStore(StudyUnavailable):
    """A study's store (an sqlite file, Ray's saved state) that cannot be read; the message names it
    and says what the user can do. Nothing of it has been changed."""


class StudyNotFound(LookupError):
    """No study of that name in the store; the message lists the studies that exist."""

    def __init__(self, name: str, known: list[str]) -> None:
        listing = ", ".join(known) if known else "none yet"
        super().__init__(f"no study named '{name}' in the MLflow store (studies there: {listing})")


class UnknownBaseline(LookupError):
    """A baseline the study does not have; the message lists those it has."""

    def __init__(self, study: str, name: str, known: list[str]) -> None:
        listing = ", ".join(known) if known else "none"
        super().__init__(f"--baseline: study '{study}' has no baseline named '{name}' (its baselines: {listing})")


class EmptyStudy(LookupError):
    """A study with no trial runs yet."""


def short_repr(value: Any, limit: int = 80) -> str:
    """A value as a message shows it: at most `limit` characters, however large the value."""
    shortened = reprlib.Repr()
    shortened.maxlevel, shortened.maxlist, shortened.maxdict = 3, 8, 8
    shortened.maxstring = shortened.maxother = 60
    text = shortened.repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def in_file(path, error: Exception) -> ConfigError:
    """`error` with the file `path` before each of its lines: several problems, a line each, each
    naming the file."""
    return ConfigError("\n".join(f"{path}: {line}" for line in str(error).splitlines()))


CREDENTIALS_IN_URI = "the URI carries credentials"  # a validation error whose input must not be shown


def format_validation_error(
    error: ValidationError, prefix: str = "", hint: Callable[[tuple[str, ...]], str | None] | None = None
) -> str:
    """One line per problem: `field.path: reason, got value`; an unknown field with `hint`'s words on
    what was meant, given its location in the model validated (`did you mean method.temperature?`)."""
    lines = []
    for problem in error.errors():
        location = [prefix] if prefix else []
        location += [str(part) if part != "" else '""' for part in problem["loc"]]  # an empty key, shown
        message = problem["msg"].removeprefix("Value error, ")
        field_in_message = re.match(r"^([a-z_.]+): (.*)$", message, re.DOTALL)
        if field_in_message:  # a model-level check names its field first
            location.append(field_in_message.group(1))
            message = field_in_message.group(2)
        if problem["type"] == "extra_forbidden":
            words = hint(tuple(str(part) for part in problem["loc"])) if hint else None
            message = "unknown field" + (f"; {words}" if words else "")
        elif problem["type"] == "int_from_float":
            message = "Input should be a whole number"
        elif problem["type"] == "model_type":  # pydantic names its class: "instance of DataConfig"
            message = "Input should be a section of fields (`field: value` lines under it)"
        if (
            problem["type"] not in ("missing", "extra_forbidden")
            and "input" in problem
            and not message.startswith(CREDENTIALS_IN_URI)
            and not isinstance(problem["input"], dict)
            and not _shows(message, problem)  # a check of ours that shows the value already
        ):
            message = f"{message}, got {short_repr(problem['input'])}"
        path = ".".join(location)
        lines.append((path, problem["type"], message))
    return "\n".join(f"{path}: {message}" if path else message for path, _, message in _without_meant_fields(lines))


def _without_meant_fields(lines: list[tuple[str, str, str]]) -> list[tuple[str, str, str]]:
    """The problems, less a required field's absence where an unknown field's hint names it
    (`Name: quickstart` is one mistake: `Name: unknown field; did you mean name?`)."""
    hints = [message for _, kind, message in lines if kind == "extra_forbidden"]

    def meant(path: str) -> bool:
        return any(re.search(rf"did you mean (.* or )?{re.escape(path)}( or .*)?\?$", hint) for hint in hints)

    return [(path, kind, message) for path, kind, message in lines if not (kind == "missing" and meant(path))]


def _shows(message: str, problem: dict) -> bool:
    """Whether a check of ours (a value error) wrote the value into its message, as a whole token:
    pydantic's own bounds ("greater than or equal to 16") never count, nor a digit inside a number."""
    if problem["type"] != "value_error":
        return False
    shown = re.escape(repr(problem["input"]))
    return re.search(rf"(?<![\w.']){shown}(?![\w.'])", message) is not None
