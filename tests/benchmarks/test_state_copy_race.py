"""benchmarks/state_copy_race.py as its docstring runs it: through smcl-tune's filesystem, no copy
leaves a torn experiment state in the storage, and each copy is counted once per filesystem."""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_whole_file_storage_never_holds_a_torn_state(tmp_path):
    output = tmp_path / "race.jsonl"
    command = [sys.executable, "benchmarks/state_copy_race.py", "--copies", "30", "--output", str(output)]
    shown = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert shown.returncode == 0, shown.stderr[-3000:]
    rows = [json.loads(line) for line in output.read_text().splitlines()]
    assert [row["filesystem"] for row in rows] == ["pyarrow local (Ray's default)", "smcl-tune whole-file"]
    whole = rows[1]
    assert whole["copies"] == 30 and whole["torn"] == 0 and 0 <= whole["vanished"] <= 30
    printed = next(line for line in shown.stdout.splitlines() if line.startswith("smcl-tune whole-file"))
    assert printed.split()[-3:] == ["30", "0", str(whole["vanished"])]
