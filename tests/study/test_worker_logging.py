"""The Ray Tune level a study's local Ray's workers take from the driver's environment (the resumed
study's output without "Restored on ..." is tested in test_resume.py): named while the Ray starts,
gone from the driver's environment afterwards, applied by a worker as it imports the trainable."""

import logging
import os

from smcl_tune.study.worker_logging import WORKER_LOG_LEVEL_ENV, apply_worker_log_level, worker_log_level


def test_the_level_is_named_while_the_ray_starts_and_the_drivers_environment_is_left_as_it_was(monkeypatch):
    monkeypatch.delenv(WORKER_LOG_LEVEL_ENV, raising=False)
    with worker_log_level("WARNING"):
        assert os.environ[WORKER_LOG_LEVEL_ENV] == "WARNING"  # what the Ray's processes inherit
    assert WORKER_LOG_LEVEL_ENV not in os.environ  # a later run in this process (--verbose) is its own
    monkeypatch.setenv(WORKER_LOG_LEVEL_ENV, "ERROR")
    with worker_log_level("INFO"):
        pass
    assert os.environ[WORKER_LOG_LEVEL_ENV] == "ERROR"


def test_a_worker_applies_the_named_level_to_ray_tune(monkeypatch):
    tune_logger = logging.getLogger("ray.tune")
    before = tune_logger.level
    try:
        monkeypatch.setenv(WORKER_LOG_LEVEL_ENV, "WARNING")
        apply_worker_log_level()
        assert tune_logger.level == logging.WARNING
        monkeypatch.setenv(WORKER_LOG_LEVEL_ENV, "INFO")  # --verbose
        apply_worker_log_level()
        assert tune_logger.level == logging.INFO
    finally:
        tune_logger.setLevel(before)  # setLevel: the loggers below it forget their cached levels too
