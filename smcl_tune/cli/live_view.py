"""What `smcl-tune run` shows on a terminal: a compact view that redraws in place (rich.live).

While it is shown, everything else written to the terminal (log records, Ray's warnings, the
trials' forwarded output) is printed above it instead of through it.
"""

from __future__ import annotations

import logging
import sys

from rich.console import Console, Group
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from smcl_tune.cli.formatting import format_memory, format_objective, format_rate
from smcl_tune.cli.plain_view import best_summary, study_summary
from smcl_tune.results import TrialState
from smcl_tune.store.progress import StudyProgress, TrialProgress

_ENDED_STYLE = {TrialState.COMPLETED: "green", TrialState.PRUNED: "yellow", TrialState.FAILED: "red"}


def _stream_handlers() -> list[logging.StreamHandler]:
    """The handlers that hold the terminal's stream, subclasses included: Ray's handler is one, and
    writes to the stream it was made with (its docstring says sys.stderr at emit time; it is not)."""
    loggers = [logging.getLogger()] + [
        logger for logger in logging.root.manager.loggerDict.values() if isinstance(logger, logging.Logger)
    ]
    handlers = [
        handler
        for logger in loggers
        for handler in logger.handlers
        if isinstance(handler, logging.StreamHandler)
        and "stream" in vars(handler)  # not logging's last resort, whose stream is a read-only property
        and handler.stream in (sys.stdout, sys.stderr)
    ]
    return list(dict.fromkeys(handlers))  # a handler of two loggers is redirected (and restored) once


class LiveView:
    def __init__(self, study: str) -> None:
        self.study = study
        self.progress: StudyProgress | None = None
        self.console = Console(file=sys.stdout)
        self._live = Live(
            get_renderable=self._render,
            console=self.console,
            refresh_per_second=2,
            redirect_stdout=True,
            redirect_stderr=True,
        )
        self._handlers: list[tuple[logging.StreamHandler, object]] = []

    def __enter__(self) -> LiveView:
        handlers = _stream_handlers()
        self._live.start(refresh=True)  # drawn at once, not at the first refresh half a second later
        for handler in handlers:  # they hold the real streams; the live view redirects sys.stdout / stderr
            self._handlers.append((handler, handler.setStream(sys.stderr)))
        return self

    def __exit__(self, *_exc) -> None:
        for handler, stream in self._handlers:
            handler.setStream(stream)
        self._live.stop()

    def started(self, progress: StudyProgress) -> None:
        self.progress = progress

    def epoch_ended(self, progress: StudyProgress, trial: TrialProgress) -> None:
        pass  # the next redraw shows it

    def trial_ended(self, progress: StudyProgress, trial: TrialProgress) -> None:
        self.progress = progress
        self.console.print(Text(trial.describe(), style=_ENDED_STYLE[trial.state]))

    def _render(self):
        progress = self.progress
        title = Text(f"study {self.study}", style="bold")
        if progress is None:
            return Group(title, Text("starting Ray"))
        rows = Table.grid(padding=(0, 2))
        for trial in progress.running:
            rows.add_row(  # Text: a condition's "[imbalance_factor=10]" is not rich markup
                Text(f"{trial.name} ({trial.fused_group})" if trial.fused_group else trial.name),
                ProgressBar(total=max(1, trial.epochs_planned), completed=trial.epochs_done, width=20),
                Text(f"epoch {trial.epochs_done}/{trial.epochs_planned}"),
                Text(format_objective(trial.objective)),
                Text(format_rate(trial.images_per_second)),
                Text(format_memory(trial.gpu_memory_mib)),
            )
        return Group(title + Text(": " + study_summary(progress)), Text(best_summary(progress)), rows)
