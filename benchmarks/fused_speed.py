"""Fused trials against one trial: summed images/s and peak memory of the product's own fused step.

Each row times `FusedGroup.train_epoch` (smcl_tune/trial/fused/group_run.py) on a group of N
ResNet-32 members at batch 128 over random uint8 images in CIFAR-100-LT's class counts (the
images of benchmarks/step_speed.py): the median of three epochs of --steps steps, after two
warm-up epochs of two steps; the members differ in seed, temperature and learning rate, as a
study's trials do. In a graphed row the warm-up's members then leave and as many of the same
shapes (their own seeds and temperatures) refill the slots: the timed epochs are the newcomers',
replaying the graphs recorded for their predecessors. The row "unfused" is one trial's own step
(`train_one_epoch` through benchmarks/stepped_trial.py). Each row runs in a process of its own, so
its peak memory is its own: the process's peak resident set on the CPU, the allocator's peak on
CUDA. "x unfused" divides the summed images/s by the unfused trial's on the same cores; "trials
MiB" is the peak less what the process held before the trials were built, and "MiB/member" that
divided by N, against the unfused trial's.

    .venv/bin/python benchmarks/fused_speed.py [--members 1,2,4,8] [--methods smcl,smcl_half,ce] [--steps 4]
        [--device cpu] [--strategies loop,vmap,fixed (graph: CUDA)] [--output docs/results/fused_speed_cpu.jsonl]

With --output, rows already in the file are not run again (a killed run resumes) and every new
row is appended as a JSON line as soon as it ends.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a file: the package `benchmarks` is found from the repository root
    sys.path[0] = str(Path(__file__).resolve().parents[1])

# smcl_tune/trial/fused/stacked_network.py; "graph": vmapped, each step replayed as a CUDA graph
# (training.cuda_graph, trial/fused/group_graphs.py), on CUDA only; "fixed": the step a graph
# records (trial/fused/kinds_step.py), run eagerly: what its fixed shape costs, on any device
STRATEGIES = ("loop", "vmap", "graph", "fixed")
METHODS = {
    "smcl": {"name": "smcl", "mask_probability": 1.0, "mask_start_epoch": 0},
    "smcl_half": {"name": "smcl", "mask_probability": 0.5, "mask_start_epoch": 0},  # members' decisions differ
    "ce": {"name": "ce"},
}
UNFUSED = 0  # the members count of the unfused row
WARMUP_EPOCHS = 2  # of step_speed's warm-up steps each: a CPU step still speeds up over the first few
TIMED_EPOCHS = 3  # of --steps steps each; the row is the median
# a graphed row's warm-up epochs' steps: N = 1 of smcl_half has two plans, each warmed up 3 times
GRAPH_WARMUP_STEPS = 10


def _member_method(method: str, index: int) -> dict:
    section = dict(METHODS[method])
    if section["name"] != "ce":
        section["temperature"] = 0.1 + 0.05 * index
    return section


def measure(method: str, members: int, steps: int, batch: int, device_name: str, strategy: str) -> dict:
    """One row, in this process: summed images/s, one member's s/step and the peak memory."""
    import torch

    from benchmarks.step_speed import long_tailed_images, step_trial_config
    from benchmarks.stepped_trial import SteppedTrial
    from smcl_tune.trial.fused.group_run import build_group

    device = torch.device(device_name)
    data = long_tailed_images(device)
    before_mib = _peak_mib(device)  # torch, the images: what every row's process holds anyway
    configs = []
    for index in range(max(members, 1)):
        config = step_trial_config(_member_method(method, index), batch, device)
        config.training.seed, config.training.lr = index, 0.1 + 0.01 * index
        config.training.cuda_graph = strategy == "graph"
        configs.append(config)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    if members == UNFUSED:
        trial = SteppedTrial.build(configs[0], data, device)

        def epoch() -> list[dict]:
            return [trial.train_epoch()]
    else:
        group = build_group(configs, data, device, strategy="vmap" if strategy in ("graph", "fixed") else strategy)
        if strategy == "fixed":
            from smcl_tune.trial.fused.group_graphs import GroupGraphs

            group.graphs = GroupGraphs(group, capture=None, warmup_steps=sys.maxsize)  # never captured

        def epoch() -> list[dict]:
            metrics = list(group.train_epoch(group.members).values())
            for member in group.members:
                member.epoch += 1
            return metrics

    if strategy == "graph":  # each plan of the step (which kinds mask) warms up, then is recorded, before the timing
        for config in configs:
            config.training.max_steps_per_epoch = GRAPH_WARMUP_STEPS
    for _ in range(WARMUP_EPOCHS):
        epoch()
    for config in configs:
        config.training.max_steps_per_epoch = steps
    captured, recorded, warm_peak = 0, {}, 0.0
    if strategy == "graph" and members != UNFUSED:
        warm_peak = _peak_mib(device)  # the warm-up's peak, whatever the refill does to the allocator's
        _refill(group, configs, data, device)
        captured, recorded = group.graphs.captures, dict(group.graphs.graphs)
    timed = sorted(
        (epoch() for _ in range(TIMED_EPOCHS)), key=lambda epochs: sum(e["images_per_second"] for e in epochs)
    )
    epochs = timed[len(timed) // 2]  # the median epoch by summed images/s
    seconds = max(epoch["epoch_seconds"] for epoch in epochs)
    graphs = None if members == UNFUSED or strategy != "graph" else group.graphs
    return {
        "device": device_name,
        "method": method,
        "members": members,
        "strategy": strategy if members != UNFUSED else "unfused",
        "batch": batch,
        "steps": steps,
        "threads": torch.get_num_threads(),
        "images_per_second": sum(epoch["images_per_second"] for epoch in epochs),
        "member_seconds_per_step": seconds / steps,
        "peak_mib": max(warm_peak, _peak_mib(device)),
        "before_mib": before_mib,
        "graph_replays": 0 if graphs is None else graphs.replays,
        "graph_captures_timed": 0 if graphs is None else graphs.captures - captured,
        # the graphs recorded for the warm-up's members, all replayed by the newcomers, none recorded again
        "graph_kept_over_refill": graphs is not None
        and all(graphs.graphs.get(key) is graph for key, graph in recorded.items()),
        "graph_failed": None if graphs is None else graphs.failed,
    }


def _refill(group, configs: list, data, device) -> None:
    """The warm-up's members leave, and as many of the same shapes, with their own seeds and
    temperatures, take their slots: the timed epochs are theirs, replaying the graphs recorded
    for their predecessors (slot_values.py); a capture in the timed epochs is reported."""
    from smcl_tune.trial.fused.group_run import new_member

    for member in list(group.members):
        group.release(member)
    for index, config in enumerate(configs):
        newcomer = config.model_copy(deep=True)
        newcomer.training.seed = len(configs) + index
        if newcomer.method.name != "ce":
            newcomer.method.temperature = config.method.temperature + 0.02
        group.admit(new_member(0, newcomer, data, device))


def _peak_mib(device) -> float:
    import torch

    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def _key(row: dict) -> tuple:
    return row["device"], row["method"], row["members"], row["strategy"], row["batch"], row["steps"]


def _run_in_own_process(method: str, members: int, strategy: str, arguments: argparse.Namespace) -> dict | None:
    """The row, measured in a process of its own; None (said on stderr) if that process failed."""
    command = [
        sys.executable,
        __file__,
        "--one",
        f"{method}:{members}:{strategy}",
        "--steps",
        str(arguments.steps),
        "--batch",
        str(arguments.batch),
        "--device",
        arguments.device,
    ]
    completed = subprocess.run(command, capture_output=True, text=True, check=False)
    if completed.returncode != 0:
        print(f"{method} {strategy} at N = {members} failed:\n{completed.stderr[-2000:]}", file=sys.stderr, flush=True)
        return None
    return json.loads(completed.stdout.strip().splitlines()[-1])


def _print_table(rows: list[dict], seconds: float) -> None:
    first = rows[0]
    print(
        f"fused trials, device {first['device']}, ResNet-32, batch {first['batch']}, 32x32, "
        f"median of {TIMED_EPOCHS} epochs of {first['steps']} steps after {WARMUP_EPOCHS} warm-up epochs, "
        f"{first['threads']} threads; {seconds:.0f} s"
    )
    print(
        f"{'method':<10}{'strategy':>9}{'N':>4}{'images/s':>10}{'x unfused':>11}{'s/step':>8}{'peak MiB':>10}"
        f"{'trials MiB':>12}{'MiB/member':>12}"
    )
    for method in dict.fromkeys(row["method"] for row in rows):
        mine = [row for row in rows if row["method"] == method]
        alone = next((row for row in mine if row["members"] == UNFUSED), None)
        for row in sorted(mine, key=lambda row: (row["strategy"] != "unfused", row["strategy"], row["members"])):
            count = row["members"]
            ratio = f"{row['images_per_second'] / alone['images_per_second']:.2f}" if alone else "-"
            added = row["peak_mib"] - row["before_mib"]
            label = "-" if count == UNFUSED else str(count)
            print(
                f"{method:<10}{row['strategy']:>9}{label:>4}{row['images_per_second']:>10.1f}{ratio:>11}"
                f"{row['member_seconds_per_step']:>8.2f}{row['peak_mib']:>10.0f}{added:>12.0f}"
                f"{added / max(count, 1):>12.0f}"
            )
    for row in rows:
        if row["strategy"] == "graph" and (row.get("graph_failed") or not row.get("graph_replays")):
            why = row.get("graph_failed") or "no step was replayed"
            print(f"{row['method']} graph N = {row['members']}: its steps ran eagerly ({why})")
        if row["strategy"] == "graph" and row.get("graph_replays") and not row.get("graph_kept_over_refill"):
            print(f"{row['method']} graph N = {row['members']}: the refill recorded its graphs anew")
        if row.get("graph_captures_timed"):
            print(
                f"{row['method']} graph N = {row['members']}: {row['graph_captures_timed']} captures in the "
                "timed epochs (plans the warm-up had not recorded: their steps warmed up eagerly first)"
            )
    print(
        "(images/s: head images of all members per second; s/step: one step of the group, i.e. of each member;\n"
        " trials MiB: the peak less what the process held before the trials were built (torch, the images))"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", default="1,2,4,8", help="group sizes N, comma-separated")
    parser.add_argument("--methods", default="smcl", help=f"of {', '.join(METHODS)}, comma-separated")
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--device", default="cpu")
    parser.add_argument(
        "--strategies",
        default="loop,vmap",
        help=f"how a group's passes run, of {', '.join(STRATEGIES)}, comma-separated",
    )
    parser.add_argument("--output", type=Path, help="JSON lines: rows on file are not run again")
    parser.add_argument("--one", help=argparse.SUPPRESS)  # METHOD:N, run in this process, one JSON line out
    arguments = parser.parse_args()
    if arguments.one:
        method, members, strategy = arguments.one.split(":")
        row = measure(method, int(members), arguments.steps, arguments.batch, arguments.device, strategy)
        print(json.dumps(row))
        return
    methods = arguments.methods.split(",")
    unknown = [method for method in methods if method not in METHODS]
    if unknown:
        parser.error(f"--methods: {', '.join(unknown)} unknown; known: {', '.join(METHODS)}")
    try:
        sizes = [int(size) for size in arguments.members.split(",")]
    except ValueError:
        parser.error(f"--members: whole numbers separated by commas, got {arguments.members!r}")
    if any(size < 1 for size in sizes):
        parser.error(f"--members: each at least 1, got {arguments.members}")
    on_file = []
    if arguments.output and arguments.output.exists():
        on_file = [json.loads(line) for line in arguments.output.read_text().splitlines() if line.strip()]
    strategies = arguments.strategies.split(",")
    if any(strategy not in STRATEGIES for strategy in strategies):
        parser.error(f"--strategies: of {', '.join(STRATEGIES)}, got {arguments.strategies}")
    if "graph" in strategies and not arguments.device.startswith("cuda"):
        parser.error(f"--strategies: graph replays CUDA graphs, and --device is {arguments.device}")
    started = time.perf_counter()
    rows, failed = [], []
    runs = [(method, UNFUSED, "unfused") for method in methods]
    runs += [(method, size, strategy) for method in methods for strategy in strategies for size in sizes]
    for method, members, strategy in runs:
        wanted = (arguments.device, method, members, strategy, arguments.batch, arguments.steps)
        row = next((row for row in on_file if _key(row) == wanted), None)
        if row is None:
            row = _run_in_own_process(method, members, strategy, arguments)
            if row is None:  # the rows after it are still measured: a failed graph leaves the eager ones
                failed.append(f"{method} {strategy} N={members}")
                continue
            if arguments.output:
                arguments.output.parent.mkdir(parents=True, exist_ok=True)
                with arguments.output.open("a") as output:
                    output.write(json.dumps(row) + "\n")
        rows.append(row)
    if rows:
        _print_table(rows, time.perf_counter() - started)
    if failed:
        sys.exit(f"failed: {', '.join(failed)}")


if __name__ == "__main__":
    main()
