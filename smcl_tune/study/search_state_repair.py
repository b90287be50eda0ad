"""The searcher's saved state mended against Ray's, before Ray restores a study whose driver was
killed between saving the one and the other (Ray writes them as separate files, and to S3 one
after the other).

- A trial the searcher suggested that Ray's experiment state does not hold is planned again: its
  slot (or its baseline) goes back to the searcher's queue.
- A trial Ray's experiment state holds that the searcher never suggested is taken up by it
  (searcher_state_edits.py).
- Ray's count of suggestions (`search_gen_state-*.json`, with the live trials of the
  ConcurrencyLimiter older studies had) forgets every suggestion its experiment state does not
  hold, the searcher's file named it or not (that file may be the older one). Ray stops asking once
  that count reaches the study's trials: without this, a resumed study hung (a live trial that
  never ends) or ended one trial short.
- A trial Ray's state holds as ended is ended for the searcher too: Ray never reports its end
  again, and a searcher saved before it (or by an smcl-tune that kept no baseline among its ended
  trials) would count it live for ever.
Once mended, the files say the same, and a second repair changes nothing. Anything unexpected in
them leaves them as they are.
"""

from __future__ import annotations

import json
import logging
import pickle
from pathlib import Path

import pyarrow.fs as pafs

from smcl_tune.atomic_write import write_bytes_atomically
from smcl_tune.store.probes import EXPERIMENT_STATE_FILES
from smcl_tune.study.experiment_state_repair import listing, ray_trials, read_file
from smcl_tune.study.searcher_state_edits import adopt_unknown_trials, forget_lost_suggestions
from smcl_tune.study.trial_spec import TRIAL_SPEC, TrialSpec

log = logging.getLogger(__name__)

SEARCHER_PATTERN = "searcher-state-*.pkl"
SEARCH_GENERATOR_PATTERN = "search_gen_state-*.json"
ENDED_RAY_STATES = ("TERMINATED", "ERROR")


def _newest(fs: pafs.FileSystem, root: str, pattern: str) -> str | None:
    found = listing(fs, root, pattern, pafs.FileType.File)
    return f"{root}/{found[-1]}" if found else None


def _spec(trial: dict) -> TrialSpec | None:
    """The spec a trial of Ray's saved state was suggested with, as Ray encodes it in its JSON."""
    from ray.tune.utils.serialization import TuneFunctionDecoder

    encoded = (trial.get("config") or {}).get(TRIAL_SPEC)
    if encoded is None:
        return None
    # Ray's own files, which Ray's restore decodes the same way
    return json.loads(json.dumps(encoded), cls=TuneFunctionDecoder, allow_cloudpickle=True)


def _held_to(counts: dict, held: set[str]) -> bool:
    """Ray's search-generator state counting no suggestion beyond the `held` trials (every trial of
    a study comes from its searcher); whether it changed."""
    changed = False
    if int(counts["counter"]) > len(held):
        counts["counter"], changed = len(held), True
    for key, wrapper in counts.items():
        if key.startswith("name:") and isinstance(wrapper, dict) and "live_trials" in wrapper:
            still = set(wrapper["live_trials"]) & held
            if still != set(wrapper["live_trials"]):
                wrapper["num_unfinished_live_trials"] -= len(wrapper["live_trials"]) - len(still)
                wrapper["live_trials"], changed = still, True
    return changed


def mend_searcher_state(experiment_dir: str, filesystem: pafs.FileSystem | None = None) -> list[str]:
    """Mend the searcher's saved state (and Ray's count) in `experiment_dir`, a local folder or a
    path of `filesystem`; the suggestions planned again."""
    from ray import cloudpickle

    fs, root = filesystem or pafs.LocalFileSystem(), str(experiment_dir)
    state_file, searcher_file = _newest(fs, root, EXPERIMENT_STATE_FILES), _newest(fs, root, SEARCHER_PATTERN)
    if state_file is None or searcher_file is None:
        return []
    counts_file = _newest(fs, root, SEARCH_GENERATOR_PATTERN)
    try:
        trials = [trial for trial, _ in ray_trials(read_file(fs, state_file))]
        statuses = {trial["trial_id"]: str(trial.get("status", "")) for trial in trials}
        searcher = pickle.loads(read_file(fs, searcher_file))
        lost = forget_lost_suggestions(searcher, set(statuses))
        specs = {trial["trial_id"]: _spec(trial) for trial in trials}
        adopted = adopt_unknown_trials(searcher, {key: spec for key, spec in specs.items() if spec is not None})
        ended = {trial_id for trial_id, status in statuses.items() if status in ENDED_RAY_STATES}
        newly_ended = ended - searcher["_ended"]
        searcher["_ended"] |= ended
        counts = cloudpickle.loads(read_file(fs, counts_file)) if counts_file else None
        recount = counts is not None and _held_to(counts, set(statuses))
    except Exception as error:  # Ray's and an older smcl-tune's files: any surprise leaves them alone
        log.warning("cannot check the searcher's saved state in %s (%s); left as it is", root, error)
        return []
    # the searcher's file first: once it no longer names them, a second repair changes nothing
    if lost or adopted or newly_ended:
        _replace_whole(fs, searcher_file, pickle.dumps(searcher))
    if recount:
        log.info("Ray's count of suggestions held to the %d trials of its saved state", len(statuses))
        _replace_whole(fs, counts_file, cloudpickle.dumps(counts))
    if lost:
        log.warning(
            "%d suggestion(s) Ray's saved state does not hold are planned again: %s", len(lost), ", ".join(lost)
        )
    return lost


def _replace_whole(fs: pafs.FileSystem, path: str, data: bytes) -> None:
    """A local file is replaced by a rename: a kill during a resume's repair leaves the old file or
    the new one, never a part of it, which the next resume would need. An object store writes whole
    objects."""
    if isinstance(fs, pafs.LocalFileSystem):
        write_bytes_atomically(Path(path), data)
    else:
        with fs.open_output_stream(path) as stream:
            stream.write(data)
