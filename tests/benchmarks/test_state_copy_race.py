"""benchmarks/state_copy_race.py as its docstring runs it: with Ray's save made whole, no copy
leaves a torn experiment state, into either storage; each row counts its copies."""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_whole_save_never_leaves_a_torn_state(tmp_path):
    output = tmp_path / "race.jsonl"
    command = [sys.executable, "benchmarks/state_copy_race.py", "--copies", "30", "--output", str(output)]
    shown = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert shown.returncode == 0, shown.stderr[-3000:]
    rows = [json.loads(line) for line in output.read_text().splitlines()]
    assert [(row["save"], row["storage"]) for row in rows] == [
        ("Ray's", "pyarrow local"),
        ("Ray's", "whole-file"),
        ("whole", "pyarrow local"),
        ("whole", "whole-file"),
    ]
    assert all(row["copies"] == 30 and 0 <= row["vanished"] <= 30 for row in rows)
    assert [row["torn"] for row in rows[1:]] == [0, 0, 0]  # smcl-tune's storage, its save, or both
    assert [row["vanished"] for row in rows[2:]] == [0, 0]  # the whole save's temporary is never listed
    printed = [line.split() for line in shown.stdout.splitlines() if line.startswith(("Ray's ", "whole "))]
    assert [cells[-3:] for cells in printed] == [["30", str(row["torn"]), str(row["vanished"])] for row in rows]
