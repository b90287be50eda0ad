"""`benchmarks/import_graph.py`: the package has no circle and no arrow back up, counting every
import (annotation-only ones too), and docs/ARCHITECTURE.md's rules section is the script's own."""

import subprocess
import sys
from pathlib import Path

from benchmarks.import_graph import build, circles, report

ROOT = Path(__file__).resolve().parents[2]


def test_the_package_keeps_its_layers_and_the_architecture_says_so():
    run = subprocess.run(
        [sys.executable, "benchmarks/import_graph.py", "--check"], cwd=ROOT, capture_output=True, text=True
    )
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr
    assert "0 circles of modules, 0 circles of rooms, 0 arrows back up, 0 rooms outside the layers" in run.stdout


def _package(root: Path, files: dict[str, str]) -> Path:
    package = root / "smcl_tune"
    for name, text in {"__init__.py": "", **files}.items():
        path = package / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return package


def test_an_import_for_annotations_only_still_closes_a_circle_and_runs_back_up(tmp_path):
    package = _package(
        tmp_path,
        {
            "trial/__init__.py": "",
            "trial/run.py": "from smcl_tune.trial.checkpoint import save\n",
            "trial/checkpoint.py": (
                "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from smcl_tune.trial.run import Trial\n"
            ),
            "errors.py": "from smcl_tune.trial import run\n",
        },
    )
    graph = build(package)
    assert circles(graph.module_edges) == [["smcl_tune.trial.checkpoint", "smcl_tune.trial.run"]]
    section, broken = report(graph)
    assert "1 arrows back up" in section and "`smcl_tune.errors` imports `smcl_tune.trial`" in section
    assert broken >= 2
