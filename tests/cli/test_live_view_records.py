"""While the live view is shown on a terminal, Ray's log records are printed above it, on lines of
their own. Ray's handler keeps the stream it was made with (a subclass of StreamHandler); it wrote
into the view's last line (seen in CI: an experiment-state ERROR inside a trial's row). Afterwards
every handler writes to the terminal as before."""

import os
import pty
import re
import subprocess
import sys
import textwrap

from tests.fixtures.terminal import read_until_closed

PROGRAM = textwrap.dedent(
    """
    import logging, sys, time
    import ray  # its handler is made here, before the view, as in `smcl-tune run`
    from smcl_tune.cli.live_view import LiveView
    shared = logging.StreamHandler(sys.stderr)  # one handler on two loggers
    for name in ("one", "two"):
        logging.getLogger(name).addHandler(shared)
    with LiveView("tiny"):  # drawn at once
        logging.getLogger("ray.tune.execution.experiment_state").error("A RAY RECORD")
        time.sleep(0.7)  # drawn again
    logging.getLogger("two").warning("AFTER THE VIEW")
    """
)
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def _on_a_terminal(program: str) -> str:
    main, child = pty.openpty()
    process = subprocess.Popen([sys.executable, "-c", program], stdout=child, stderr=child, stdin=subprocess.DEVNULL)
    os.close(child)
    written = read_until_closed(main)
    assert process.wait(timeout=60) == 0, written.decode(errors="replace")
    return written.decode(errors="replace")


def test_rays_records_print_above_the_live_view_on_lines_of_their_own():
    screen = _on_a_terminal(PROGRAM)
    lines = [ANSI.sub("", line) for line in re.split(r"\r\n|\r|\n", screen)]
    record_lines = [index for index, line in enumerate(lines) if "A RAY RECORD" in line]
    assert len(record_lines) == 1, screen
    assert re.match(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+\s+ERROR ", lines[record_lines[0]]), lines
    views = [index for index, line in enumerate(lines) if line == "study tiny"]
    assert views[0] < record_lines[0] < views[-1], lines  # drawn before the record, and again below it
    # the handler of two loggers writes to the terminal again once the view is gone
    assert "AFTER THE VIEW" in screen and "Logging error" not in screen, screen
