"""Ray Tune's advice that names its own API (`Tuner.restore(...)`), which a user of smcl-tune never
calls: hidden during a study's fit, where smcl-tune says how to resume instead."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

TUNE_LOGGER = "ray.tune.tune"
RESTORE_HINTS = ("Resume experiment with:", "Resume training with:")


class _WithoutRestoreHint(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not any(hint in record.getMessage() for hint in RESTORE_HINTS)


@contextmanager
def without_rays_restore_hint() -> Iterator[None]:
    hint_filter = _WithoutRestoreHint()
    logger = logging.getLogger(TUNE_LOGGER)
    logger.addFilter(hint_filter)
    try:
        yield
    finally:
        logger.removeFilter(hint_filter)
