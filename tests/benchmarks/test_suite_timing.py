"""benchmarks/per_test_cpu.py (a pytest plugin and its table) and benchmarks/suite_idle.py, run as
their docstrings run them."""

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _run(*arguments, env=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *arguments], cwd=ROOT, capture_output=True, text=True, timeout=120, env=env)


def test_the_plugin_writes_a_row_per_test_and_the_table_sums_them_by_file(tmp_path):
    tests = tmp_path / "test_two.py"
    tests.write_text("import time\n\ndef test_quick():\n    pass\n\ndef test_slow():\n    time.sleep(0.3)\n")
    rows = tmp_path / "rows.jsonl"
    # one process, as the docstring runs it (not a worker of the xdist run this test may be in)
    env = {key: value for key, value in os.environ.items() if not key.startswith("PYTEST_XDIST")}
    env["PER_TEST_CPU_OUT"] = str(rows)
    # --rootdir: the rows' test ids from tmp_path, wherever the checkout is (pytest would otherwise take
    # the common folder of the checkout and tmp_path when it has one, such as /tmp)
    plugin = ("-p", "benchmarks.per_test_cpu", "-p", "no:cacheprovider", "--rootdir", str(tmp_path))
    ran = _run("-m", "pytest", "-q", *plugin, str(tests), env=env)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    written = {row["test"].split("::")[1]: row for row in map(json.loads, rows.read_text().splitlines())}
    assert sorted(written) == ["test_quick", "test_slow"]
    assert written["test_slow"]["wall_s"] >= 0.3 > written["test_quick"]["wall_s"]
    assert all(row["worker"] == "main" and row["machine_cpu_s"] >= 0 for row in written.values())

    table = _run("-m", "benchmarks.per_test_cpu", str(rows))
    assert table.returncode == 0, table.stderr
    assert table.stdout.startswith("2 tests: machine CPU ")
    assert any(line.split()[2:] == ["2", "test_two.py"] for line in table.stdout.splitlines()), table.stdout


def test_idle_ticks_are_charged_to_the_tests_running_then(tmp_path):
    tick = os.sysconf("SC_CLK_TCK")
    # 10 s of a 2-core machine: a quarter of its ticks idle (idle and iowait), the rest busy
    stat = tmp_path / "stat.txt"
    stat.write_text(
        f"100.0 cpu  0 0 0 0 0 0 0 0 0 0\n110.0 cpu  {10 * tick} {2 * tick} {3 * tick} {4 * tick} {tick} 0 0 0 0 0\n"
    )
    timeline = tmp_path / "timeline.jsonl"
    rows = [
        {"test": "tests/a/test_one.py::test_x", "worker": "gw0", "start": 100.0, "wall_s": 10.0, "machine_cpu_s": 0},
        {"test": "tests/b/test_two.py::test_y", "worker": "gw1", "start": 100.0, "wall_s": 8.0, "machine_cpu_s": 0},
    ]
    timeline.write_text("".join(json.dumps(row) + "\n" for row in rows))
    table = _run("-m", "benchmarks.suite_idle", str(timeline), str(stat))
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    assert lines[0] == "idle core-seconds while the tests ran: 5 of 20"
    assert lines[1] == "each worker's last test ended at: gw0 10 s, gw1 8 s"
    assert lines[-1].split() == ["5.0", "test_one.py::test_x", "|", "test_two.py::test_y"]
