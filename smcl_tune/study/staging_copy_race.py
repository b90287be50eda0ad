"""Ray Tune copies the experiment's state from its local staging folder into the storage in a
background thread, and the driver's next save writes that folder meanwhile: the searcher's state is
written under a temporary name (`.<uuid4>-tmp-<name>`) and renamed, so the copy can list a file that
is gone when it opens it. Ray then logs the copy's error with a traceback (over the live view, and
in CI): as an ERROR where the next save waits for the copy, as a WARNING where the next copy starts.
Nothing is lost: the next copy takes the state, and the study's last copy, forced after its last
save with nothing written beside it, takes it whole. Those records are logged at debug instead."""

from __future__ import annotations

import logging
import os
import re
import sys
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

from smcl_tune.errors import error_chain

EXPERIMENT_STATE_LOGGER = "ray.tune.execution.experiment_state"  # waits for the copy: logger.error(exc_info)
SYNCER_LOGGER = "ray.train._internal.syncer"  # starts the next copy: logger.warning, the traceback as text
# pyarrow's words for a local file it could not open
_UNOPENED_FILE = re.compile(r"Failed to open local file '([^']+)'")
# Ray's temporary names (tune.utils.util._atomic_save, Searcher.save_to_dir)
_RAYS_TEMPORARY_NAME = re.compile(r"\.[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}-tmp-")

log = logging.getLogger(__name__)


def vanished_temporary_file(error: BaseException | None) -> str | None:
    """Ray's temporary file, gone now, whose disappearance `error` reports, if it does."""
    for link in error_chain(error):
        match = _UNOPENED_FILE.search(str(link)) if isinstance(link, FileNotFoundError) else None
        if match and _RAYS_TEMPORARY_NAME.match(os.path.basename(match[1])) and not os.path.exists(match[1]):
            return match[1]
    return None


class _WithoutVanishedCopies(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        # the syncer's warning is logged in the except block that caught the error, without exc_info
        error = record.exc_info[1] if record.exc_info else sys.exc_info()[1]
        gone = vanished_temporary_file(error)
        if gone is None:
            return True
        log.debug("a copy of the experiment state missed %s, renamed while it ran; the next copy takes it", gone)
        return False


@contextmanager
def without_staging_copy_races() -> Iterator[None]:
    race_filter = _WithoutVanishedCopies()
    with ExitStack() as filters:
        for name in (EXPERIMENT_STATE_LOGGER, SYNCER_LOGGER):
            logger = logging.getLogger(name)
            logger.addFilter(race_filter)
            filters.callback(logger.removeFilter, race_filter)
        yield
