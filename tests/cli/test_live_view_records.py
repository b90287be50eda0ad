"""While the live view is shown on a terminal, Ray's log records are printed above it, on lines of
their own. Ray's handler keeps the stream it was made with (a subclass of StreamHandler); it wrote
into the view's last line (seen in CI: an experiment-state ERROR inside a trial's row)."""

import os
import pty
import re
import subprocess
import sys
import textwrap

PROGRAM = textwrap.dedent(
    """
    import logging, time
    import ray  # its handler is made here, before the view, as in `smcl-tune run`
    from smcl_tune.cli.live_view import LiveView
    with LiveView("tiny"):
        time.sleep(0.7)  # drawn at least once
        logging.getLogger("ray.tune.execution.experiment_state").error("A RAY RECORD")
        time.sleep(0.7)
    """
)
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def _on_a_terminal(program: str) -> str:
    main, child = pty.openpty()
    process = subprocess.Popen([sys.executable, "-c", program], stdout=child, stderr=child, stdin=subprocess.DEVNULL)
    os.close(child)
    chunks = []
    while True:
        try:
            chunk = os.read(main, 4096)
        except OSError:  # the terminal closed with the process
            break
        if not chunk:
            break
        chunks.append(chunk)
    assert process.wait(timeout=60) == 0, b"".join(chunks).decode(errors="replace")
    os.close(main)
    return b"".join(chunks).decode(errors="replace")


def test_rays_records_print_above_the_live_view_on_lines_of_their_own():
    screen = _on_a_terminal(PROGRAM)
    lines = [ANSI.sub("", line) for line in re.split(r"\r\n|\r|\n", screen)]
    record_lines = [line for line in lines if "A RAY RECORD" in line]
    assert record_lines, screen
    assert all(re.match(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+\s+ERROR ", line) for line in record_lines), record_lines
    assert lines.index(record_lines[0]) < max(i for i, line in enumerate(lines) if line == "study tiny"), lines
