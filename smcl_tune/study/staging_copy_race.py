"""Ray Tune copies the experiment's state from its local staging folder into the storage in a
background thread, and the driver's next save writes that folder meanwhile: the searcher's state is
written under a temporary name (`.<uuid>-tmp-<name>`) and renamed, so the copy can list a file that
is gone when it opens it. Ray then logs an ERROR with a traceback (over the live view, and in CI).
Nothing is lost: the next copy takes the state, and the study's last copy, forced after its last
save with nothing written beside it, takes it whole. That record is logged at debug instead."""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager

from smcl_tune.errors import error_chain

EXPERIMENT_STATE_LOGGER = "ray.tune.execution.experiment_state"
# pyarrow's words for a local file it could not open
_UNOPENED_FILE = re.compile(r"Failed to open local file '([^']+)'")

log = logging.getLogger(__name__)


def vanished_temporary_file(error: BaseException | None) -> str | None:
    """The temporary file (a dot name, gone now) whose disappearance `error` reports, if it does."""
    for link in error_chain(error):
        match = _UNOPENED_FILE.search(str(link)) if isinstance(link, FileNotFoundError) else None
        if match and os.path.basename(match[1]).startswith(".") and not os.path.exists(match[1]):
            return match[1]
    return None


class _WithoutVanishedCopies(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        gone = vanished_temporary_file(record.exc_info[1] if record.exc_info else None)
        if gone is None:
            return True
        log.debug("a copy of the experiment state missed %s, renamed while it ran; the next copy takes it", gone)
        return False


@contextmanager
def without_staging_copy_races() -> Iterator[None]:
    race_filter = _WithoutVanishedCopies()
    logger = logging.getLogger(EXPERIMENT_STATE_LOGGER)
    logger.addFilter(race_filter)
    try:
        yield
    finally:
        logger.removeFilter(race_filter)
