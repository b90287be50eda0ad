"""Failures the CLI reports in one line with exit code 1 (the input was fine; the run cannot go on)."""


class StudyUnavailable(RuntimeError):
    """A study that cannot be run or read now: another driver holds it, or its store is unreadable."""
