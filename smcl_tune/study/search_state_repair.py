"""Ray's count of the trials its search algorithm handed out, mended after a driver was killed
between saving the searcher's state and saving its own experiment state.

Ray (2.60) keeps, beside the searcher's own state, the count of suggestions made
(`search_gen_state-*.json`, with the live trials of a ConcurrencyLimiter that older studies had),
and stops asking once it reaches the study's trials. A suggestion Ray's experiment state never held
is planned again (its slot back in the searcher's saved state, here), so it must not count:
without this, a resumed study ended one trial short. Anything unexpected in the files
leaves them as they are.
"""

from __future__ import annotations

import logging
import pickle

import pyarrow.fs as pafs

from smcl_tune.study.experiment_state_repair import STATE_PATTERN, _listing
from smcl_tune.study.searcher import forget_lost_suggestions, trial_ids_in_state

log = logging.getLogger(__name__)

SEARCHER_PATTERN = "searcher-state-*.pkl"
SEARCH_GENERATOR_PATTERN = "search_gen_state-*.json"


def _read(fs: pafs.FileSystem, path: str) -> bytes:
    with fs.open_input_stream(path) as stream:
        return stream.readall()


def uncount_lost_suggestions(experiment_dir: str, filesystem: pafs.FileSystem | None = None) -> list[str]:
    """The suggestions taken out of Ray's count (and of a ConcurrencyLimiter's live trials)."""
    from ray import cloudpickle

    fs, root = filesystem or pafs.LocalFileSystem(), str(experiment_dir)
    newest = {}
    for pattern in (STATE_PATTERN, SEARCHER_PATTERN, SEARCH_GENERATOR_PATTERN):
        found = _listing(fs, root, pattern, pafs.FileType.File)
        if not found:
            return []
        newest[pattern] = f"{root}/{found[-1]}"
    try:
        known = trial_ids_in_state(_read(fs, newest[STATE_PATTERN]))
        searcher = pickle.loads(_read(fs, newest[SEARCHER_PATTERN]))
        lost = forget_lost_suggestions(searcher, set(known))
        if not lost:
            return []
        counts = cloudpickle.loads(_read(fs, newest[SEARCH_GENERATOR_PATTERN]))
        counts["counter"] = max(0, int(counts["counter"]) - len(lost))
        for key, wrapper in counts.items():
            if key.startswith("name:") and isinstance(wrapper, dict) and "live_trials" in wrapper:
                still = set(wrapper["live_trials"]) - set(lost)
                wrapper["num_unfinished_live_trials"] -= len(wrapper["live_trials"]) - len(still)
                wrapper["live_trials"] = still
    except Exception as error:  # Ray's and an older smcl-tune's files: any surprise leaves them alone
        log.warning("cannot check the searcher's saved state in %s (%s); left as it is", root, error)
        return []
    # the searcher's file first: once it no longer names them, a second repair changes nothing
    with fs.open_output_stream(newest[SEARCHER_PATTERN]) as stream:
        stream.write(pickle.dumps(searcher))
    with fs.open_output_stream(newest[SEARCH_GENERATOR_PATTERN]) as stream:
        stream.write(cloudpickle.dumps(counts))
    log.warning("%d suggestion(s) Ray's saved state does not hold are planned again: %s", len(lost), ", ".join(lost))
    return lost
