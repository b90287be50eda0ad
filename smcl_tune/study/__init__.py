"""Studies on Ray Tune: the only package that imports Ray."""

from smcl_tune.study.runner import StudyOutcome, StudyPaths, run_study

__all__ = ["StudyOutcome", "StudyPaths", "run_study"]
