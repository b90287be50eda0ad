"""Errors the CLI reports in one line: StudyUnavailable with exit code 1 (the input was fine; the run cannot
go on), DataSourceError with exit code 2 (bad input)."""


class StudyUnavailable(RuntimeError):
    """A study that cannot be run or read now: another driver holds it, or its store is unreadable."""


class DataSourceError(ValueError):
    """A dataset that cannot be used (exit code 2, bad input); the message names the path and what was expected."""
