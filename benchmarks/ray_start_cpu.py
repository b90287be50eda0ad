"""The CPU a study's own local Ray spends starting, with Ray's idle workers (one per CPU, started
with the node) and without them (smcl_tune/study/ray_session.py's NO_IDLE_WORKERS). Ray Tune starts
each trial actor in a worker of its own (its runtime environment), so an idle worker is never used.

Each run starts a Ray in a fresh process as `smcl-tune run` does (address "local", no dashboard),
waits WAIT_S for it to settle, and sums the CPU time (user and system) of that process and of every
Ray process it started; the runs of the two settings alternate.

    .venv/bin/python benchmarks/ray_start_cpu.py [--runs 4] [--out docs/results/ray_start_cpu.jsonl]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

WAIT_S = 8
SETTINGS = {  # label -> whether the probe passes NO_IDLE_WORKERS
    "Ray's default (idle workers)": "default",
    "NO_IDLE_WORKERS": "no-idle",
}
# Runs in a child process: starts the Ray, waits, prints the CPU seconds of itself and of Ray's processes.
PROBE = """
import json, sys, time
import psutil, ray
from smcl_tune.study.ray_session import NO_IDLE_WORKERS
config = NO_IDLE_WORKERS if sys.argv[1] == "no-idle" else {}
ray.init(address="local", include_dashboard=False, logging_level="ERROR", _system_config=config)
time.sleep(float(sys.argv[2]))
me = psutil.Process()
cpu = {"driver": sum(me.cpu_times()[:2]), "idle workers": 0.0, "Ray daemons and agents": 0.0}
for process in me.children(recursive=True):
    try:
        name, times = " ".join(process.cmdline()), process.cpu_times()
    except psutil.NoSuchProcess:
        continue
    kind = "idle workers" if "ray::IDLE" in name or "default_worker.py" in name else "Ray daemons and agents"
    cpu[kind] += times.user + times.system
ray.shutdown()
print(json.dumps(cpu))
"""


def one_start(setting: str) -> dict[str, float]:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, setting, str(WAIT_S)], capture_output=True, text=True, timeout=300, check=True
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=4, help="Ray starts of each setting, alternating (4)")
    parser.add_argument("--out", type=Path, help="append each run as a JSON line to this file")
    arguments = parser.parse_args()
    runs: dict[str, list[dict[str, float]]] = {label: [] for label in SETTINGS}
    for _ in range(arguments.runs):
        for label, setting in SETTINGS.items():
            cpu = one_start(setting)
            runs[label].append(cpu)
            if arguments.out:
                with arguments.out.open("a") as out:
                    out.write(json.dumps({"setting": label, "wait_s": WAIT_S, "cpu_s": cpu}) + "\n")
    kinds = ("driver", "Ray daemons and agents", "idle workers")
    print(f"a local Ray's start: CPU s in its first {WAIT_S} s, median of {arguments.runs} starts")
    print(f"{'setting':30}" + "".join(f"{kind:>24}" for kind in kinds) + f"{'all':>8}")
    for label, cpus in runs.items():
        medians = [statistics.median(cpu[kind] for cpu in cpus) for kind in kinds]
        total = statistics.median(sum(cpu.values()) for cpu in cpus)
        print(f"{label:30}" + "".join(f"{value:24.2f}" for value in medians) + f"{total:8.2f}")


if __name__ == "__main__":
    main()
