"""The package's rooms and the arrows between them: which part of smcl_tune imports which.

A room is a subpackage (`study/`, `report/`, ...) or a top-level module (`config.py`, ...). An
arrow A -> B means a module of A imports one of B (at the top of the file, or inside a function:
marked `lazy`). The layers below are the order ARCHITECTURE.md draws, top to bottom; an arrow to
a room of the same or a higher layer runs back up, and is flagged. Prints the rooms, the arrows
and the flagged arrows; exits 1 when there is any flagged arrow.

    python benchmarks/import_graph.py [--root smcl_tune]
"""

from __future__ import annotations

import argparse
import ast
import sys
from collections import defaultdict
from pathlib import Path

PACKAGE = "smcl_tune"
# The report's drawing of one trial's files (matplotlib over a TrialResult): the trial draws them
# itself, so they sit low, below everything that trains, and import only results.
DRAWING = "report.drawing"
DRAWING_MODULES = ("smcl_tune.report.trial_files", "smcl_tune.report.mask_gallery")
# Top to bottom; a room not named here sits in the bottom layer.
LAYERS = (
    ("cli",),
    ("study",),
    ("report",),
    ("study_status", "store_relocation"),
    ("tracking", "train", "store_checks", "sqlite_copy"),
    ("checkpoint", "trial_folder"),
    ("mask_gallery",),
    ("data",),
    ("method", "metrics", "models", "schedule", "device"),
    (DRAWING,),
    ("results", "study_config"),
    ("study_checks",),
    ("study_schema",),
    ("config",),
    ("atomic_write",),
    ("errors",),
)


def room_of(module: str) -> str | None:
    """`smcl_tune.study.runner` -> `study`; None outside the package or for the package itself."""
    parts = module.split(".")
    if parts[0] != PACKAGE or len(parts) < 2:
        return None
    if any(module == drawing or module.startswith(drawing + ".") for drawing in DRAWING_MODULES):
        return DRAWING
    return parts[1]


def is_room(root: Path, name: str) -> bool:
    if name == DRAWING:
        return True
    return (root / name).is_dir() or (root / f"{name}.py").is_file()


def module_name(path: Path, root: Path) -> str:
    relative = path.relative_to(root.parent).with_suffix("")
    parts = list(relative.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported_modules(tree: ast.Module, module: str, is_package: bool) -> list[tuple[str, bool]]:
    """(imported module, lazy) for each import in the file; lazy: inside a function. Imports under
    `if TYPE_CHECKING:` are for annotations only: no arrow."""
    found = []

    def visit(node: ast.AST, lazy: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                continue
            inner = lazy or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef))
            if isinstance(child, ast.Import):
                found.extend((alias.name, lazy) for alias in child.names)
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:
                    anchor = module.split(".")[: len(module.split(".")) - child.level + (1 if is_package else 0)]
                    base = ".".join([*anchor, base] if base else anchor)
                found.append((base, lazy))
                found.extend((f"{base}.{alias.name}", lazy) for alias in child.names)
            visit(child, inner)

    visit(tree, False)
    return found


def arrows(root: Path) -> dict[tuple[str, str], list[tuple[str, str, bool]]]:
    """(from room, to room) -> the imports behind the arrow: (module, imported module, lazy)."""
    edges: dict[tuple[str, str], list[tuple[str, str, bool]]] = defaultdict(list)
    for path in sorted(root.rglob("*.py")):
        module = module_name(path, root)
        source = room_of(module)
        if source is None:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for imported, lazy in imported_modules(tree, module, path.name == "__init__.py"):
            target = room_of(imported)
            if target is None or target == source or not is_room(root, target):
                continue
            if not any(known == imported.rsplit(".", 1)[0] for _, known, _ in edges[(source, target)]):
                edges[(source, target)].append((module, imported, lazy))
    return edges


def layer_of(room: str) -> int:
    return next((index for index, rooms in enumerate(LAYERS) if room in rooms), len(LAYERS) - 1)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=Path(__file__).resolve().parents[1] / PACKAGE)
    root = parser.parse_args().root
    edges = arrows(root)
    rooms = sorted({room for edge in edges for room in edge}, key=lambda room: (layer_of(room), room))
    outgoing = defaultdict(list)
    for (source, target), imports in sorted(edges.items(), key=lambda item: (layer_of(item[0][1]), item[0][1])):
        lazy = all(is_lazy for _, _, is_lazy in imports)
        outgoing[source].append(f"{target}{' (lazy)' if lazy else ''}")
    print(f"{len(rooms)} rooms, {len(edges)} arrows")
    for room in rooms:
        print(f"  [{layer_of(room)}] {room} -> {', '.join(outgoing[room]) or '-'}")
    back = [(s, t) for (s, t) in sorted(edges) if layer_of(t) <= layer_of(s)]
    print(f"{len(back)} arrows that run back up (to the same or a higher layer):")
    for source, target in back:
        print(f"  {source} [{layer_of(source)}] -> {target} [{layer_of(target)}]:")
        for module, imported, lazy in edges[(source, target)]:
            print(f"    {module} imports {imported}{' (lazy)' if lazy else ''}")
    return 1 if back else 0


if __name__ == "__main__":
    sys.exit(main())
