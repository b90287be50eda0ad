"""benchmarks/gpu/study_at_epochs.py, run as gpu_run.sh runs it: the shipped GPU study at the epoch
budget that the GPU check's packed trials leave time for, still a valid study."""

import json
import subprocess
import sys
from pathlib import Path

import yaml

from smcl_tune.studyfile.study import load_study

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "gpu" / "study_at_epochs.py"
STUDY = ROOT / "studies" / "cifar10_lt_gpu.yaml"
# The packed trials' table as check.py prints it (the first GPU run's rows).
PACKED_TABLE = """trial      epochs   s/epoch     img/s  peak MiB  reserved MiB  ended s
packed-0        5     2.190      5620       454           488       33
packed-1        5     2.299      5354       454           488       33
packed-2        5     2.162      5692       454           488       31
packed-3        5     2.263      5447       454           492       34
"""


def _run(tmp_path: Path, *arguments: str, study: Path = STUDY) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(SCRIPT), str(study), "--out", str(tmp_path / "study.yaml"), *arguments],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )


def test_the_time_left_becomes_an_equal_epoch_budget_with_the_schedule_rescaled(tmp_path):
    log = tmp_path / "gpu_check.log"
    log.write_text(PACKED_TABLE)
    done = _run(tmp_path, "--seconds", "332", "--log", str(log), "--storage", str(tmp_path / "runs"))
    assert done.returncode == 0, done.stderr
    # median 2.2265 s/epoch; 6 trials in waves of 4: 2 waves of 166 s, 45 s of each for start-up
    assert done.stdout.strip() == "2.23 s/epoch packed, 6 trials, 332 s: 54 epochs"
    study = load_study(tmp_path / "study.yaml")
    training = study.base_trial.training
    assert (training.epochs, training.milestones, training.warmup_epochs) == (54, [43, 49], 5)
    assert study.config.storage == str(tmp_path / "runs")
    assert (study.config.resources.gpus, study.config.max_concurrent) == (0.25, 4)


def test_a_short_budget_opens_the_mask_window_and_a_missing_table_is_refused(tmp_path):
    done = _run(tmp_path, "--epochs", "4")
    assert done.returncode == 0, done.stderr
    method = yaml.safe_load((tmp_path / "study.yaml").read_text())["trial"]["method"]
    assert (method["mask_start_epoch"], method["mask_end_epoch"]) == (0, 4)
    refused = _run(tmp_path, "--seconds", "300", "--log", str(tmp_path / "no-such.log"))
    assert refused.returncode == 2 and "--epochs" in refused.stderr


def test_a_fused_study_takes_its_budget_from_the_fusion_sweep(tmp_path):
    """The recipe study fuses its 15 trials: a member's s/step at the smallest measured group of at
    least 15 (16 here), times the 97 steps of an epoch of CIFAR-10-LT's 12,406 images at batch 128."""
    rows = tmp_path / "fused_speed.jsonl"
    lines = [
        {"device": "cuda", "method": "smcl", "members": members, "strategy": "vmap", "member_seconds_per_step": step}
        for members, step in ((8, 0.02), (16, 0.03), (32, 0.05))
    ]
    lines.append({"device": "cuda", "method": "ce", "members": 16, "strategy": "vmap", "member_seconds_per_step": 0.01})
    rows.write_text("".join(json.dumps(line) + "\n" for line in lines))
    recipe = ROOT / "studies" / "cifar10_lt_gpu_recipe.yaml"
    done = _run(tmp_path, "--seconds", "345", "--fused-rows", str(rows), study=recipe)
    assert done.returncode == 0, done.stderr
    # 0.03 x 97 = 2.91 s/epoch; 15 trials in one group: one wave of 80% of 345 s, 45 s of it for start-up
    assert done.stdout.strip() == "2.91 s/epoch a member fused at 15, 15 trials, 345 s (80% of it for steps): 79 epochs"
    study = load_study(tmp_path / "study.yaml")
    assert study.base_trial.training.epochs == 79 and study.config.resources.fuse == 15
    # measured at 8 members only (the larger rows cut): a step of 15 is taken to cost 15 / 8 of it
    rows.write_text(json.dumps(lines[0]) + "\n")
    done = _run(tmp_path, "--seconds", "345", "--fused-rows", str(rows), study=recipe)
    assert done.stdout.strip() == "3.64 s/epoch a member fused at 15, 15 trials, 345 s (80% of it for steps): 63 epochs"
    refused = _run(tmp_path, "--seconds", "345", "--log", str(tmp_path / "no.log"), study=recipe)
    assert refused.returncode == 2 and "--fused-rows" in refused.stderr


def test_a_fused_study_is_graphed_when_its_tested_graphs_beat_the_eager_rows(tmp_path):
    """--graphs (the CUDA tests passed): the graphed and eager rows of members that mask half the
    time (smcl_half), at the group size; without --graphs, with graphed rows that never replayed,
    slower, or of members that all mask (smcl: no unused passes, unlike a study's), it stays eager."""
    rows = tmp_path / "fused_speed.jsonl"
    eager = {
        "device": "cuda",
        "method": "smcl_half",
        "members": 16,
        "strategy": "vmap",
        "member_seconds_per_step": 0.03,
    }
    graphed = {**eager, "strategy": "graph", "member_seconds_per_step": 0.02, "graph_replays": 60}
    recipe = ROOT / "studies" / "cifar10_lt_gpu_recipe.yaml"

    def run(*lines: dict, graphs: bool = True) -> tuple[str, bool]:
        rows.write_text("".join(json.dumps(line) + "\n" for line in lines))
        flags = ["--graphs"] if graphs else []
        done = _run(tmp_path, "--seconds", "345", "--fused-rows", str(rows), *flags, study=recipe)
        assert done.returncode == 0, done.stderr
        written = yaml.safe_load((tmp_path / "study.yaml").read_text())["trial"]["training"]
        return done.stdout.strip().splitlines()[-1], bool(written.get("cuda_graph"))

    # 0.02 x 97 = 1.94 s/epoch against 2.91 eager: one wave of 80% of 345 s, 45 s of it for start-up
    graphed_study = (
        "1.94 s/epoch a member fused at 15, its steps graphed, 15 trials, 345 s (80% of it for steps): 119 epochs"
    )
    assert run(eager, graphed) == (graphed_study, True)
    eager_study = "2.91 s/epoch a member fused at 15, 15 trials, 345 s (80% of it for steps): 79 epochs"
    assert run(eager, graphed, graphs=False) == (eager_study, False)
    assert run(eager, {**graphed, "graph_replays": 0}) == (eager_study, False)
    assert run(eager, {**graphed, "member_seconds_per_step": 0.035}) == (eager_study, False)
    assert run(eager, {**graphed, "method": "smcl"}) == (eager_study, False)
    assert run(graphed)[1] is True


def _packing(out: Path) -> tuple:
    """fuse, gpus, cpus, max_concurrent, epochs, threads and planned trials of the study written."""
    study = load_study(out)
    resources, training = study.config.resources, study.base_trial.training
    return (
        *(resources.fuse, resources.gpus, resources.cpus, study.config.max_concurrent),
        *(training.epochs, training.num_threads, study.planned_trials),
    )


PACKED_FOUR_TO_THE_GPU = (1, 0.25, 3, 4)  # unfused, a quarter of the GPU each, 3 cores, 4 at once


def test_a_fused_study_without_a_fused_row_runs_unfused_packed_four_to_the_gpu(tmp_path):
    """When the fusion sweep wrote no fused GPU row (fusion failed on the GPU: only its unfused trials
    and a CPU row), gpu_run.sh's calls run the same trials, each its own, four at a time at a quarter of
    the GPU, priced by the packed trials' table; with a fused GPU row the study stays fused."""
    recipe, out = ROOT / "studies" / "cifar10_lt_gpu_recipe.yaml", tmp_path / "study.yaml"
    rows, log = tmp_path / "fused_speed.jsonl", tmp_path / "gpu_check.log"
    log.write_text(PACKED_TABLE)
    unfused = {"device": "cuda", "method": "smcl", "members": 1, "strategy": "unfused", "member_seconds_per_step": 0.01}
    on_cpu = {**unfused, "device": "cpu", "members": 16, "strategy": "vmap"}
    rows.write_text(json.dumps(unfused) + "\n" + json.dumps(on_cpu) + "\n")
    done = _run(tmp_path, "--seconds", "332", "--log", str(log), "--fused-rows", str(rows), study=recipe)
    assert done.returncode == 0, done.stderr
    # 15 trials in 4 waves of 83 s, 45 s of each for start-up, at the packed median 2.2265 s/epoch
    assert done.stdout.splitlines() == [
        f"no fused GPU row in {rows}: the trials unfused, packed 4 to the GPU",
        "2.23 s/epoch packed, 15 trials, 332 s: 17 epochs",
    ]
    assert _packing(out) == (*PACKED_FOUR_TO_THE_GPU, 17, 3, 15)
    # gpu_run.sh's fallback call, when no budget can be priced; --unfused says it outright
    assert _run(tmp_path, "--epochs", "6", "--fused-rows", str(rows), study=recipe).returncode == 0
    assert _packing(out) == (*PACKED_FOUR_TO_THE_GPU, 6, 3, 15)
    assert _run(tmp_path, "--epochs", "6", "--unfused", study=recipe).returncode == 0
    assert _packing(out) == (*PACKED_FOUR_TO_THE_GPU, 6, 3, 15)
    rows.write_text(json.dumps({**on_cpu, "device": "cuda:0", "strategy": "graph"}) + "\n")
    assert _run(tmp_path, "--epochs", "6", "--fused-rows", str(rows), study=recipe).returncode == 0
    assert load_study(out).config.resources.fuse == 15
