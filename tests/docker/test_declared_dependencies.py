"""Every package the code imports is declared in pyproject.toml and pinned in docker/constraints.txt."""

import ast
import re
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _normalised(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _imported_top_levels() -> set[str]:
    names = set()
    for path in (ROOT / "smcl_tune").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
    return names - set(sys.stdlib_module_names) - {"smcl_tune", "__future__"}


def _requirement_names(lines) -> set[str]:
    return {_normalised(re.split(r"[\[<>=!~ ;]", line.strip(), maxsplit=1)[0]) for line in lines if line.strip()}


def test_every_imported_package_is_declared_and_pinned():
    declared = _requirement_names(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"])
    pinned = _requirement_names(
        line for line in (ROOT / "docker" / "constraints.txt").read_text().splitlines() if not line.startswith("#")
    )
    distributions = packages_distributions()
    undeclared, unpinned = [], []
    for module in sorted(_imported_top_levels()):
        names = {_normalised(name) for name in distributions.get(module, [module])}
        if not names & declared:
            undeclared.append(module)
        if not names & (pinned | {"torch"}):  # torch comes from the image's base, not from the constraints
            unpinned.append(module)
    assert not undeclared, f"imported but not in pyproject.toml's dependencies: {undeclared}"
    assert not unpinned, f"imported but not pinned in docker/constraints.txt: {unpinned}"
