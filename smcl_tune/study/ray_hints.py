"""Ray Tune's lines about its own API and results, which a user of smcl-tune never calls or reads:
hidden during a study's fit, where smcl-tune says how to resume instead and reads its results from
MLflow and Optuna."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

HIDDEN_LINES = {  # logger -> the words of the lines it shows no more
    # its advice to call `Tuner.restore(...)`
    "ray.tune.tune": ("Resume experiment with:", "Resume training with:"),
    # its result grid's metrics, of a trial that a data error stopped before Ray wrote its result files;
    # smcl-tune reads only the grid's counts of trials (the warning said the resume after the fix had failed)
    "ray.tune.analysis.experiment_analysis": ("Failed to fetch metrics for",),
}


class _Without(logging.Filter):
    def __init__(self, words: tuple[str, ...]) -> None:
        super().__init__()
        self.words = words

    def filter(self, record: logging.LogRecord) -> bool:
        return not any(words in record.getMessage() for words in self.words)


@contextmanager
def without_rays_own_advice() -> Iterator[None]:
    with ExitStack() as stack:
        for name, words in HIDDEN_LINES.items():
            logger, line_filter = logging.getLogger(name), _Without(words)
            logger.addFilter(line_filter)
            stack.callback(logger.removeFilter, line_filter)
        yield
