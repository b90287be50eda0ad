"""The object-hit diagnostics: its measures by hand, and the script as a user runs it."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from benchmarks.object_hits import hits

ROOT = Path(__file__).resolve().parents[2]


def test_the_hit_measures_by_hand():
    objects = torch.zeros(3, 4, 4, dtype=torch.bool)
    objects[:, :2, :2] = True  # a 4-pixel object in the corner
    masks = torch.zeros(3, 4, 4, dtype=torch.bool)
    masks[0, :2, :] = True  # 8 pixels, all 4 of the object: half the box is object, the whole object erased
    masks[1, 3, 3] = True  # 1 pixel beside it: a miss
    # masks[2] is empty: a miss, and no share of a box
    measured = hits(masks, objects)
    assert measured["box_is_object"] == pytest.approx((4 / 8 + 0 / 1) / 2)
    assert measured["object_erased"] == pytest.approx((1 + 0 + 0) / 3)
    assert measured["misses"] == pytest.approx(2 / 3)
    assert measured["area"] == pytest.approx((8 / 16 + 1 / 16 + 0) / 3)


def test_the_script_prints_each_saliency_and_writes_its_rows(tmp_path):
    output = tmp_path / "hits.jsonl"
    done = subprocess.run(
        [sys.executable, "benchmarks/object_hits.py", "--epochs", "1", "--images", "60", "--output", str(output)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    rows = [json.loads(line) for line in output.read_text().splitlines()]
    assert {(row["saliency"], row["model"]) for row in rows} >= {
        ("spectral_residual", "-"),
        ("random", "-"),
        ("cam", "untrained"),
        ("cam", "CE 1 epochs"),
        ("gradient", "CE 1 epochs"),
    }
    assert all(0 <= row["misses"] <= 1 for row in rows)
    assert "box is object" in done.stdout and "the object covers" in done.stdout
