"""The machine's CPU each test costs, with every process it starts (studies, Ray, servers): a pytest
plugin that writes a JSON line per test (its setup, call and teardown) to $PER_TEST_CPU_OUT. Run the
suite in one process, so that nothing else spends the machine's CPU meanwhile:

    OMP_NUM_THREADS=1 PER_TEST_CPU_OUT=/tmp/per_test.jsonl \\
        .venv/bin/python -m pytest -q -p benchmarks.per_test_cpu
    .venv/bin/python -m benchmarks.per_test_cpu /tmp/per_test.jsonl   # the table, by file and by test

OMP_NUM_THREADS=1 is each `make test` worker's share of this 2-core machine (tests/conftest.py). A
module fixture's cost falls on the first test that asks for it; Ray's CPU while a later test runs
falls on that test. Under `make test`'s workers (PYTEST_ADDOPTS="-p benchmarks.per_test_cpu") the
rows say which worker ran the test and when it started, a timeline; the CPU then mixes the two.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import time

import pytest

from benchmarks.suite_cpu import machine_cpu_s


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    started, wall, cpu = time.time(), time.perf_counter(), machine_cpu_s()
    yield
    row = {
        "test": item.nodeid,
        "worker": os.environ.get("PYTEST_XDIST_WORKER", "main"),
        "start": round(started, 2),
        "wall_s": round(time.perf_counter() - wall, 2),
        "machine_cpu_s": round(machine_cpu_s() - cpu, 2),
    }
    with open(os.environ["PER_TEST_CPU_OUT"], "a") as out:
        out.write(json.dumps(row) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("rows", help="the JSON lines the plugin wrote")
    parser.add_argument("--top", type=int, default=40, help="how many files and tests to list")
    arguments = parser.parse_args()
    with open(arguments.rows) as lines:
        rows = [json.loads(line) for line in lines]
    top = arguments.top
    by_file: dict[str, list[float]] = collections.defaultdict(lambda: [0.0, 0.0, 0])
    for row in rows:
        totals = by_file[row["test"].split("::")[0]]
        totals[0] += row["machine_cpu_s"]
        totals[1] += row["wall_s"]
        totals[2] += 1
    cpu, wall = sum(row["machine_cpu_s"] for row in rows), sum(row["wall_s"] for row in rows)
    print(f"{len(rows)} tests: machine CPU {cpu:.0f} s, wall {wall:.0f} s")
    print(f"{'CPU s':>7} {'wall s':>7} {'tests':>5}  file")
    for name, (file_cpu, file_wall, count) in sorted(by_file.items(), key=lambda item: -item[1][0])[:top]:
        print(f"{file_cpu:7.1f} {file_wall:7.1f} {count:5d}  {name}")
    print(f"\n{'CPU s':>7} {'wall s':>7}  test")
    for row in sorted(rows, key=lambda row: -row["machine_cpu_s"])[:top]:
        print(f"{row['machine_cpu_s']:7.1f} {row['wall_s']:7.1f}  {row['test']}")


if __name__ == "__main__":
    main()
