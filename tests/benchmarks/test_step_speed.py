"""benchmarks/step_speed.py as a user runs it: a row per kind of step, timed on the product's own epoch."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ROWS = ["ce (B images)", "2B forward, CE only", "smcl masking step", "smcl + minor_images", "smcl paste threshold"]


def _step_speed(*options: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "benchmarks/step_speed.py", *options],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )


@pytest.mark.slow
def test_the_table_has_a_row_per_step_and_the_smcl_rows_mask_every_step():
    completed = _step_speed("--steps", "1", "--batch", "8")
    assert completed.returncode == 0, completed.stderr
    lines = completed.stdout.splitlines()
    assert "train_one_epoch" in lines[0]
    steps = {line[:22].strip(): line[22:].split() for line in lines if line[:22].strip() in ROWS}
    assert list(steps) == ROWS
    for name, cells in steps.items():
        milliseconds, images_per_second, times_ce, masked = map(float, cells)
        assert milliseconds > 0 and images_per_second > 0 and times_ce > 0
        assert masked == (0.0 if name == "ce (B images)" else 1.0), name
    assert steps["ce (B images)"][2] == "1.00"
    batches = [line.split() for line in lines if re.match(r"^(ce|smcl) +\d", line)]
    assert [cells[0] for cells in batches] == ["ce", "smcl"]
    assert all(float(rate) > 0 for cells in batches for rate in cells[1:])


@pytest.mark.slow
@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--steps", "2000"], "--steps: between 1 and 84, the full batches of 128 in 10847 images"),
        (["--batch", "1"], "--batch: at least 2, the smallest batch_size of a trial; got 1"),
    ],
    ids=["steps", "batch"],
)
def test_more_steps_than_an_epoch_has_or_a_batch_of_one_are_refused_before_anything_runs(
    options, message, monkeypatch, capsys
):
    from benchmarks import step_speed  # in this process: its run as a script is the test above

    monkeypatch.setattr(sys, "argv", ["step_speed.py", *options])
    monkeypatch.setattr(step_speed, "long_tailed_images", lambda device: pytest.fail("it ran"))
    with pytest.raises(SystemExit) as refused:
        step_speed.main()
    assert refused.value.code == 2
    captured = capsys.readouterr()
    assert message in captured.err and "Traceback" not in captured.err
    assert captured.out == ""
