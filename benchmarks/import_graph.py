"""The package's rooms and the arrows between them: which part of smcl_tune imports which, and the
rules of the house that follow from the imports.

A room is a subpackage (`study/`, `report/`, ...) or a top-level module (`config.py`, ...). An arrow
A -> B means a module of A imports one of B: at the top of a file, inside a function (`lazy`), or
for annotations only (under `if TYPE_CHECKING:`); every kind counts. The layers below are the
architecture's order, top to bottom: an arrow to the same or a higher layer runs back up. A circle
is a set of modules (or of rooms) that import each other round. The library rules say which rooms
may import Ray, MLflow, Optuna and torch.

Prints the rules section of docs/ARCHITECTURE.md (`--check` compares it with the file, `--write`
replaces it there); exits 1 when there is a circle, an arrow back up, a room outside the layers,
or a broken library rule.

    python benchmarks/import_graph.py [--check | --write]
"""

from __future__ import annotations

import argparse
import ast
import sys
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "smcl_tune"
ARCHITECTURE = ROOT / "docs" / "ARCHITECTURE.md"
BEGIN, END = "<!-- rules: made by benchmarks/import_graph.py -->", "<!-- end of the rules -->"
# Top to bottom: a room imports only rooms of lower layers.
LAYERS = (
    ("cli",),
    ("study",),
    ("report",),
    ("store",),
    ("tracking",),
    ("trial",),
    ("figures",),
    ("data",),
    ("method", "metrics", "models"),
    ("studyfile",),
    ("results", "config"),
    ("atomic_write", "layout"),
    ("errors", "moved_modules", "field_hints", "signal_handlers"),
)
# Which rooms may import a library (at all, lazily included); the others may not.
LIBRARY_RULES = {
    "ray": ("study",),
    "mlflow": ("tracking", "store", "report", "cli"),
    "optuna": ("study", "report", "studyfile", "store", "cli"),
    "torch": ("trial", "figures", "data", "method", "metrics", "models", "study"),
}
LIBRARY_NOTES = {
    "mlflow": "cli: `smcl-tune run` sets MLflow's logger after importing it; `ui` serves it",
    "optuna": "studyfile: a distribution becomes Optuna's in the searcher only (lazy); cli: its logger; "
    "store: the study's database opens its Optuna storage (lazy)",
    "torch": "study: the trainable, in a trial's worker only (lazy); the driver never loads it",
}
METHOD_ROOMS = ("method", "metrics")  # the science: torch, and of the package only these:
SCIENCE_READS = ("config", "results")  # the method's configuration; the shot groups' and metrics' names


@dataclass(frozen=True)
class Import:
    module: str  # the importing module
    imported: str  # the imported module (or module.name)
    how: str  # "top", "lazy" (inside a function) or "annotation" (under TYPE_CHECKING)


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(path: Path, module: str) -> list[Import]:
    """Every import statement of a file, with how it is made."""
    is_package = path.name == "__init__.py"
    found: list[Import] = []

    def visit(node: ast.AST, how: str) -> None:
        for child in ast.iter_child_nodes(node):
            inner = how
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                inner = "annotation"
            elif isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)) and how == "top":
                inner = "lazy"
            if isinstance(child, ast.Import):
                found.extend(Import(module, alias.name, how) for alias in child.names)
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:
                    parts = module.split(".")
                    anchor = parts[: len(parts) - child.level + (1 if is_package else 0)]
                    base = ".".join([*anchor, base] if base else anchor)
                found.append(Import(module, base, how))
                found.extend(Import(module, f"{base}.{alias.name}", how) for alias in child.names)
            visit(child, inner)

    visit(ast.parse(path.read_text(encoding="utf-8")), "top")
    return found


def package_modules(root: Path) -> dict[str, Path]:
    return {module_name(path, root): path for path in sorted(root.rglob("*.py"))}


def resolve(imported: str, modules: dict[str, Path]) -> str | None:
    """The package's module an import names (`smcl_tune.x.y.Name` -> `smcl_tune.x.y`), or None."""
    while imported and imported not in modules:
        imported = imported.rpartition(".")[0]
    return imported or None


def room_of(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if parts[0] == PACKAGE and len(parts) > 1 else None


def layer_of(room: str) -> int | None:
    return next((index for index, rooms in enumerate(LAYERS) if room in rooms), None)


def circles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected sets of more than one node (Tarjan's algorithm), and self-loops."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def connect(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(edges.get(node, ())):
            if target not in index:
                connect(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            members = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                members.append(member)
                if member == node:
                    break
            if len(members) > 1 or node in edges.get(node, ()):
                found.append(sorted(members))

    sys.setrecursionlimit(10_000)
    for node in sorted(edges):
        if node not in index:
            connect(node)
    return found


@dataclass
class Graph:
    module_edges: dict[str, set[str]]
    room_edges: dict[tuple[str, str], list[Import]]
    libraries: dict[str, dict[str, set[str]]]  # library -> room -> how it is imported
    method_imports: set[str]  # what the science rooms import of the package


def build(root: Path) -> Graph:
    modules = package_modules(root)
    module_edges: dict[str, set[str]] = defaultdict(set)
    room_edges: dict[tuple[str, str], list[Import]] = defaultdict(list)
    libraries: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    method_imports: set[str] = set()
    for module, path in modules.items():
        source = room_of(module)
        for found in imports_of(path, module):
            top = found.imported.split(".")[0]
            if top in LIBRARY_RULES and source is not None:
                libraries[top][source].add(found.how)
            target = resolve(found.imported, modules) if top == PACKAGE else None
            if target is None or target == module or module.startswith(target + "."):
                continue  # outside the package, or a package's own __init__ seen from inside
            module_edges[module].add(target)
            if source in METHOD_ROOMS:
                method_imports.add(target)
            destination = room_of(target)
            if source is not None and destination is not None and source != destination:
                room_edges[(source, destination)].append(found)
    return Graph(module_edges, room_edges, libraries, method_imports)


def _how(imports: list[Import]) -> str:
    kinds = {found.how for found in imports}
    return "" if "top" in kinds else f" ({', '.join(sorted(kinds))})"


def report(graph: Graph) -> tuple[str, int]:
    """The rules section (Markdown) and the number of broken rules."""
    rooms = sorted({room for edge in graph.room_edges for room in edge})
    unplaced = [room for room in rooms if layer_of(room) is None]
    placed = [(s, t) for (s, t) in sorted(graph.room_edges) if s not in unplaced and t not in unplaced]
    back = [(s, t) for (s, t) in placed if layer_of(t) <= layer_of(s)]
    module_circles = circles(graph.module_edges)
    room_circles = circles({s: {t for (a, t) in graph.room_edges if a == s} for (s, _) in graph.room_edges})
    broken_libraries = [
        (library, room)
        for library, by_room in sorted(graph.libraries.items())
        for room in sorted(by_room)
        if room not in LIBRARY_RULES[library]
    ]
    foreign_science = sorted(
        target for target in graph.method_imports if room_of(target) not in (*METHOD_ROOMS, *SCIENCE_READS)
    )
    lines = [
        BEGIN,
        "## Rules",
        "",
        "Generated from the imports by `benchmarks/import_graph.py` (`--write` renews this section; a test",
        "fails when it is stale). Every import counts: at the top of a file, inside a function (lazy), and",
        "for annotations only.",
        "",
        "**Layers**, top to bottom; a room imports only rooms of lower layers:",
        "",
    ]
    for number, layer in enumerate(LAYERS):
        lines.append(f"{number}. {', '.join(f'`{room}`' for room in layer)}")
    lines += ["", "**Arrows** (what each room imports):", ""]
    for room in sorted(rooms, key=lambda room: (layer_of(room) if layer_of(room) is not None else -1, room)):
        targets = sorted((t for (s, t) in graph.room_edges if s == room), key=lambda t: (layer_of(t) or 0, t))
        shown = ", ".join(f"`{target}`{_how(graph.room_edges[(room, target)])}" for target in targets) or "nothing"
        lines.append(f"- `{room}` -> {shown}")
    lines += ["", "**Libraries**, by the rooms that import them (lazy: inside a function only):", ""]
    for library in sorted(LIBRARY_RULES):
        by_room = graph.libraries.get(library, {})
        shown = ", ".join(f"`{room}`" + ("" if "top" in by_room[room] else " (lazy)") for room in sorted(by_room))
        note = f"; {LIBRARY_NOTES[library]}" if library in LIBRARY_NOTES else ""
        lines.append(f"- {library}: {shown or 'no room'} (allowed: {', '.join(LIBRARY_RULES[library])}){note}")
    lines += [
        "",
        "**The science** (`method/`, `metrics.py`) imports torch and, of the package, only "
        f"{' and '.join(f'`{room}`' for room in SCIENCE_READS)}: "
        f"{', '.join(f'`{t}`' for t in sorted(t for t in graph.method_imports if room_of(t) not in METHOD_ROOMS))}.",
        "",
        f"{len(module_circles)} circles of modules, {len(room_circles)} circles of rooms, "
        f"{len(back)} arrows back up, {len(unplaced)} rooms outside the layers, "
        f"{len(broken_libraries)} broken library rules.",
    ]
    for circle in module_circles + room_circles:
        lines.append(f"- circle: {' <-> '.join(circle)}")
    for source, target in back:
        for found in graph.room_edges[(source, target)]:
            lines.append(f"- back up: `{found.module}` imports `{found.imported}` ({found.how})")
    lines += [f"- outside the layers: `{room}`" for room in unplaced]
    lines += [f"- `{room}` imports {library}" for library, room in broken_libraries]
    lines += [f"- the science imports `{target}`" for target in foreign_science]
    lines.append(END)
    broken = len(module_circles) + len(room_circles) + len(back) + len(unplaced) + len(broken_libraries)
    return "\n".join(lines) + "\n", broken + len(foreign_science)


def section_in(text: str) -> str | None:
    if BEGIN not in text or END not in text:
        return None
    return text[text.index(BEGIN) : text.index(END) + len(END)] + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    action = parser.add_mutually_exclusive_group()
    action.add_argument("--check", action="store_true", help="exit 1 when docs/ARCHITECTURE.md's section is stale")
    action.add_argument("--write", action="store_true", help="replace the section in docs/ARCHITECTURE.md")
    arguments = parser.parse_args()
    section, broken = report(build(ROOT / PACKAGE))
    print(section, end="")
    if arguments.write or arguments.check:
        text = ARCHITECTURE.read_text(encoding="utf-8")
        current = section_in(text)
        if arguments.write:
            if current is None:
                raise SystemExit(f"{ARCHITECTURE}: no section between {BEGIN!r} and {END!r} to replace")
            ARCHITECTURE.write_text(text.replace(current, section), encoding="utf-8")
        elif current != section:
            print(
                f"{ARCHITECTURE}: the rules section is stale; run benchmarks/import_graph.py --write", file=sys.stderr
            )
            return 1
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(main())
