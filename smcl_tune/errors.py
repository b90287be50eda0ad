"""Errors the CLI reports in one line: StudyUnavailable with exit code 1 (the input was fine; the run cannot
go on), DataSourceError with exit code 2 (bad input)."""


class StudyUnavailable(RuntimeError):
    """A study that cannot be run or read now: another driver holds it, or its store is unreadable."""


class DamagedStore(StudyUnavailable):
    """A study's store (an sqlite file, Ray's saved state) that cannot be read; the message names it
    and says what the user can do. Nothing of it has been changed."""


class DataSourceError(ValueError):
    """A dataset that cannot be used (exit code 2, bad input); the message names the path and what was expected."""
