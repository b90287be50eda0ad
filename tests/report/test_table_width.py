"""The leaderboard's table fits the terminal it is printed on; a pipe keeps every column."""

import os
import pty
import subprocess
import sys

from tests.fixtures.terminal import read_until_closed

TRIALS_HEADING = "rank"


def _leaderboard(storage, cwd, terminal_columns=None) -> str:
    command = [sys.executable, "-m", "smcl_tune.cli", "leaderboard", "lt", "--storage", str(storage)]
    if terminal_columns is None:
        done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        return done.stdout
    leader, follower = pty.openpty()
    env = {**os.environ, "COLUMNS": str(terminal_columns)}
    process = subprocess.Popen(command, cwd=cwd, stdout=follower, stderr=subprocess.PIPE, env=env)
    os.close(follower)
    written = read_until_closed(leader)
    assert process.wait(timeout=120) == 0, process.stderr.read().decode()
    return written.decode().replace("\r\n", "\n")


def _trials_table(text: str) -> list[str]:
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(TRIALS_HEADING))
    end = next((i for i in range(start, len(lines)) if not lines[i].strip() or lines[i].startswith("left out")), None)
    return lines[start:end]


def test_the_table_fits_a_narrow_terminal_and_names_what_it_left_out(build_store, tmp_path):
    build_store(tmp_path / "store")
    piped = _leaderboard(tmp_path / "store", tmp_path)
    full_width = max(len(line) for line in _trials_table(piped))
    assert "wall s" in _trials_table(piped)[0] and "left out" not in piped
    columns = 140  # the terminal
    assert full_width > columns  # so the terminal below is too narrow for the whole table
    shown = _leaderboard(tmp_path / "store", tmp_path, terminal_columns=columns)
    table = _trials_table(shown)
    assert max(len(line) for line in table) <= columns, "\n".join(table)
    lines = shown.splitlines()
    note = next(i for i, line in enumerate(lines) if line.startswith("left out to fit 140 columns"))
    assert "wall s" in lines[note] and "wall s" not in table[0]
    assert "--format csv" in lines[note + 1]
    for heading in ("trial", "few", "many"):  # what the table is for stays
        assert heading in table[0]
    assert len(table) == len(_trials_table(piped))  # one line per trial, no wrapping


def test_the_background_share_outlasts_the_searched_values_and_its_note_goes_with_it(build_store, tmp_path):
    from smcl_tune.report.leaderboard import load_leaderboard
    from smcl_tune.report.text_table import format_text

    board = load_leaderboard(build_store(tmp_path / "store"), "lt")
    full = format_text(board)
    widest = max(len(line) for line in _trials_table(full))
    searched = [f"{name}" for name in board.searched]
    assert searched and all(name in _trials_table(full)[0] for name in searched)
    for width in range(widest, 40, -1):
        text = format_text(board, width=width)
        heading = _trials_table(text)[0]
        share_shown = "bg→many" in heading
        if any(name in heading for name in searched):
            assert share_shown, width  # the mechanism metric goes after the searched hyperparameters
        assert ("of uniform guessing" in text) == share_shown, width
        assert ("bg→many: the share of the test images" in text) == share_shown, width


def test_on_an_80_column_terminal_the_table_keeps_the_objective_it_is_ranked_by(build_store, tmp_path):
    build_store(tmp_path / "store")  # two conditions, a failed trial with its reason
    table = _trials_table(_leaderboard(tmp_path / "store", tmp_path, terminal_columns=80))
    assert max(len(line) for line in table) <= 80, "\n".join(table)
    for heading in ("rank", "condition", "trial", "val objective", "top-1", "few"):
        assert heading in table[0], table[0]
