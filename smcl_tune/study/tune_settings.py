"""The Ray Tune settings a study's fit runs under, set for that fit only.

Ray Tune reads them from the environment when a fit starts. Left in `os.environ`, they would also
change whatever else the process runs with Ray Tune afterwards (a notebook's own Tuner, a benchmark).
"""

import contextlib
import os
from collections.abc import Iterator, Mapping

AUTO_LOGGERS_SWITCH = "TUNE_DISABLE_AUTO_CALLBACK_LOGGERS"  # Ray Tune adds CSV, JSON and TensorBoard loggers unless "1"
STUDY_SETTINGS = {
    # A snapshot of the experiment after every trial checkpoint is what makes resume exact; Ray warns about it.
    "TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S": "0",
    # Ray Tune's own per-trial logs stay (progress.csv, result.json, passed to the Tuner); its
    # TensorBoard files do not: MLflow holds the curves, and tensorboardX would load torch into the
    # driver, which never trains.
    AUTO_LOGGERS_SWITCH: "1",
}


@contextlib.contextmanager
def tune_settings(settings: Mapping[str, str] = STUDY_SETTINGS) -> Iterator[None]:
    """Each of `settings` the user has not set, set for the block; afterwards the environment is as it was."""
    added = [name for name in settings if name not in os.environ]
    os.environ.update({name: settings[name] for name in added})
    try:
        yield
    finally:
        for name in added:
            os.environ.pop(name, None)
