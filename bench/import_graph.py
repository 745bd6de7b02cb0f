"""The import graph of ``apps/``: module cycles and imports against DESIGN's app order.

Usage: ``.venv/bin/python bench/import_graph.py [--edges] [--local]``

Reads every module under ``apps/`` with ``ast`` (nothing is imported or run), resolves
relative imports, and prints:

- the app-level graph (which app imports which) and every edge that runs against the
  one-way order ``ml <- core <- accounts <- datasets <- ... <- maturity <- demo``;
- each import circle between modules (strongly connected components of more than one
  module), counting function-local imports too, since a lazy import still ties the
  modules together;
- with ``--local``, the function-local imports of ``apps.*`` modules (each either
  breaks a cycle or should be a top-level import);
- with ``--edges``, every module-to-module edge.
"""

from __future__ import annotations

import argparse
import ast
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ORDER = ["ml", "core", "accounts", "datasets", "experiments", "registry", "tracking", "deployments",
         "monitoring", "maturity", "demo"]


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def modules() -> dict[str, Path]:
    found = {}
    for path in sorted((ROOT / "apps").rglob("*.py")):
        if "migrations" in path.parts:
            continue
        found[module_name(path)] = path
    return found


def resolve(current: str, is_package: bool, node: ast.ImportFrom) -> str:
    if node.level == 0:
        return node.module or ""
    base = current.split(".") if is_package else current.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def imports_of(name: str, path: Path, known: dict[str, Path]) -> list[tuple[str, bool]]:
    """(imported module, is function-local) for every import of an ``apps.*`` module."""
    tree = ast.parse(path.read_text(), filename=str(path))
    is_package = path.name == "__init__.py"
    out: list[tuple[str, bool]] = []

    def target(dotted: str) -> str | None:
        while dotted and dotted not in known:
            dotted = dotted.rpartition(".")[0]
        return dotted or None

    def visit(node: ast.AST, local: bool) -> None:
        for child in ast.iter_child_nodes(node):
            inner = local or isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda)
            if isinstance(child, ast.Import):
                for alias in child.names:
                    if alias.name.startswith("apps") and (hit := target(alias.name)):
                        out.append((hit, local))
            elif isinstance(child, ast.ImportFrom):
                base = resolve(name, is_package, child)
                if not base.startswith("apps"):
                    continue
                for alias in child.names:
                    hit = target(f"{base}.{alias.name}") or target(base)
                    if hit:
                        out.append((hit, local))
            if isinstance(child, ast.If) and _is_type_checking(child.test):
                continue
            visit(child, inner)

    visit(tree, False)
    return [(m, local) for m, local in out if m != name]


def _is_type_checking(test: ast.expr) -> bool:
    return isinstance(test, ast.Name) and test.id == "TYPE_CHECKING"


def app_of(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = [0]
    sys.setrecursionlimit(10_000)

    def strong(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            strong(v)
    return found


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--edges", action="store_true")
    parser.add_argument("--local", action="store_true")
    args = parser.parse_args()
    known = modules()
    graph: dict[str, set[str]] = defaultdict(set)
    local_imports: list[tuple[str, str]] = []
    for name, path in known.items():
        graph.setdefault(name, set())
        for imported, local in imports_of(name, path, known):
            graph[name].add(imported)
            if local:
                local_imports.append((name, imported))
    edges = sum(len(v) for v in graph.values())
    print(f"{len(known)} modules, {edges} module-to-module edges")

    apps: dict[str, set[str]] = defaultdict(set)
    against: list[str] = []
    for source, targets in graph.items():
        for imported in targets:
            a, b = app_of(source), app_of(imported)
            if a == b or not a or not b:
                continue
            apps[a].add(b)
            if a in ORDER and b in ORDER and ORDER.index(b) > ORDER.index(a):
                against.append(f"  {source} -> {imported}")
    print("\napp graph (app: the apps it imports)")
    for app in sorted(apps, key=lambda a: ORDER.index(a) if a in ORDER else 99):
        print(f"  {app}: {', '.join(sorted(apps[app], key=lambda a: ORDER.index(a) if a in ORDER else 99))}")
    print(f"\nimports against the app order: {len(against)}")
    print("\n".join(sorted(against)))
    found = cycles(graph)
    print(f"\nimport circles between modules: {len(found)}")
    for component in found:
        print("  " + " <-> ".join(component))
    if args.local:
        print(f"\nfunction-local imports of apps modules: {len(local_imports)}")
        for source, imported in sorted(local_imports):
            print(f"  {source} -> {imported}")
    if args.edges:
        print("\nedges")
        for source in sorted(graph):
            for imported in sorted(graph[source]):
                print(f"  {source} -> {imported}")


if __name__ == "__main__":
    main()
