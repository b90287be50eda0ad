"""Ray Tune's INFO lines in a study's trial workers, such as "Restored on HOST from checkpoint: ...",
which a resumed study's plain output carried: a trial worker says them as Ray Tune restores a trial,
before the trial's code sets Ray's level. The driver names the level in its environment before it
starts its own local Ray, whose workers inherit it, and the trainable's module applies it as a
worker imports it, before any restore. `--verbose` names INFO. A cluster's Ray, joined, keeps its
own settings. (Ray's `worker_process_setup_hook` does the same at about 2 s more per study: a job
runtime environment to set up.)"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager

WORKER_LOG_LEVEL_ENV = "SMCL_TUNE_RAY_WORKER_LOG_LEVEL"


@contextmanager
def worker_log_level(level: str) -> Iterator[None]:
    """In the driver, while it starts its local Ray: the Ray's processes inherit the environment as
    they start, and the driver's own is left as it was (a later run in the same process is its own)."""
    before = os.environ.get(WORKER_LOG_LEVEL_ENV)
    os.environ[WORKER_LOG_LEVEL_ENV] = level
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(WORKER_LOG_LEVEL_ENV, None)
        else:
            os.environ[WORKER_LOG_LEVEL_ENV] = before


def apply_worker_log_level() -> None:
    """In a worker, as it imports the trainable."""
    level = os.environ.get(WORKER_LOG_LEVEL_ENV)
    if level:
        logging.getLogger("ray.tune").setLevel(level)
