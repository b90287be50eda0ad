"""Run by every worker process of a study's own local Ray as it starts (Ray's
`worker_process_setup_hook`), before Ray Tune restores a trial there: Ray Tune's INFO lines in a
worker, such as "Restored on HOST from checkpoint: ...", reach the plain output otherwise (the
study says itself that it resumes). `--verbose` shows Ray's lines: it sets no hook. A cluster's
Ray, joined, keeps its own settings."""

from __future__ import annotations

import logging

QUIET_RAY_WORKERS = "smcl_tune.study.worker_logging.quiet_ray_tune"


def quiet_ray_tune() -> None:
    logging.getLogger("ray.tune").setLevel(logging.WARNING)
