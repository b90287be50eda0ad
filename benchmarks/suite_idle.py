"""When the suite leaves a core idle, and which tests were running then: `make test` with the per-test
plugin's timeline (benchmarks/per_test_cpu.py) and the machine's /proc/stat sampled every second.

    (while true; do echo "$(date +%s.%N) $(head -1 /proc/stat)" >> /tmp/stat.txt; sleep 1; done) &
    PER_TEST_CPU_OUT=/tmp/timeline.jsonl PYTEST_ADDOPTS="-p benchmarks.per_test_cpu" make test
    .venv/bin/python -m benchmarks.suite_idle /tmp/timeline.jsonl /tmp/stat.txt

Each second's idle share of the machine's cores is charged to the tests running then (both
workers' at once, as one pair): the pairs that waited together most head the table.
"""

from __future__ import annotations

import argparse
import collections
import itertools
import json
import os


def idle_seconds(stat_lines: list[str]) -> list[tuple[float, float, float, float]]:
    """(start, end, idle core-seconds, all core-seconds) of each interval between two samples, from
    the recording machine's own ticks (user, nice, system, idle, iowait, irq, softirq, steal)."""
    tick = os.sysconf("SC_CLK_TCK")
    samples = [(float(line.split()[0]), [int(value) for value in line.split()[2:10]]) for line in stat_lines]
    intervals = []
    for (start, before), (end, after) in itertools.pairwise(samples):
        ticks = [later - earlier for earlier, later in zip(before, after)]
        intervals.append((start, end, (ticks[3] + ticks[4]) / tick, sum(ticks) / tick))
    return intervals


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("timeline", help="the plugin's JSON lines, written under make test")
    parser.add_argument("stat", help="the /proc/stat samples: epoch seconds, then the 'cpu' line")
    parser.add_argument("--top", type=int, default=20)
    arguments = parser.parse_args()
    with open(arguments.timeline) as lines:
        rows = [json.loads(line) for line in lines]
    with open(arguments.stat) as lines:
        intervals = idle_seconds(lines.read().splitlines())
    start = min(row["start"] for row in rows)
    end = max(row["start"] + row["wall_s"] for row in rows)
    blamed: dict[str, float] = collections.Counter()
    capacity = 0.0
    for begin, finish, idle, whole in intervals:
        middle = (begin + finish) / 2
        if not start <= middle <= end:
            continue
        capacity += whole
        running = sorted(
            row["test"].split("/")[-1][:70] for row in rows if row["start"] <= middle < row["start"] + row["wall_s"]
        )
        blamed[" | ".join(running) or "(between tests)"] += idle
    print(f"idle core-seconds while the tests ran: {sum(blamed.values()):.0f} of {capacity:.0f}")
    ends = {}
    for row in rows:
        ends[row["worker"]] = max(ends.get(row["worker"], 0.0), row["start"] + row["wall_s"] - start)
    print("each worker's last test ended at: " + ", ".join(f"{w} {s:.0f} s" for w, s in sorted(ends.items())))
    print(f"\n{'idle':>6}  tests running then")
    for running, idle in blamed.most_common(arguments.top):
        print(f"{idle:6.1f}  {running}")


if __name__ == "__main__":
    main()
