"""A test that skips for a missing tool on a developer's machine fails under CI, which provides it."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NEEDS_A_TOOL = """
from tests.fixtures.ci import skip_unless_ci

def test_needs_a_tool():
    skip_unless_ci("the tool is not installed here")
"""


def _run(tmp_path: Path, ci: str | None) -> subprocess.CompletedProcess:
    (tmp_path / "test_tool.py").write_text(NEEDS_A_TOOL)
    env = {"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", **({"SMCL_CI_PROVIDES": ci} if ci else {})}
    command = [sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", "-p", "no:xdist", str(tmp_path)]
    return subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)


def test_a_missing_tool_skips_with_its_reason_off_ci_and_fails_under_ci(tmp_path):
    off_ci = _run(tmp_path, None)
    assert off_ci.returncode == 0 and "1 skipped" in off_ci.stdout and "the tool is not installed here" in off_ci.stdout
    under_ci = _run(tmp_path, "1")
    assert under_ci.returncode == 1 and "CI provides this, but: the tool is not installed here" in under_ci.stdout
