"""The README's Python snippet runs as written (its epochs lowered and capped), extracted from the README."""

import contextlib
import io
import re
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # a 7-epoch trial of 10 synthetic classes, 2 steps an epoch

README = Path(__file__).resolve().parents[1] / "README.md"


def _snippet() -> str:
    section = README.read_text().split("## One trial, from Python (no Ray)", 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.DOTALL).group(1)


def test_the_readmes_one_trial_snippet_runs_as_written():
    code = _snippet()
    assert '"epochs": 60' in code  # the one change below is still the one needed
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        # 7 epochs: the shortest run the default masking window allows; 2 steps each (the snippet's
        # whole epochs are 4.5 s each on 2 cores, the same code as a capped one)
        quick = code.replace('"epochs": 60', '"epochs": 7, "max_steps_per_epoch": 2')
        exec(compile(quick, "README.md", "exec"), {})
    lines = printed.getvalue().splitlines()
    assert [line.split()[0] for line in lines[:-1]] == [str(epoch) for epoch in range(7)]  # report: epoch, val
    assert lines[-1].startswith("completed {'top1': ")  # result.status, result.test
