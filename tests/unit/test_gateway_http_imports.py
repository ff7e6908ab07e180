"""gateway_http's modules import each other without a circle, read from their source.

Every import counts, those under `if TYPE_CHECKING:` and inside functions too: a
circle of type-only imports is still a circle a reader has to walk.
"""

from __future__ import annotations

import ast
from pathlib import Path

from support.util import REPO

PACKAGE = "gateway_http"
ROOT = REPO / PACKAGE


def local_imports(path: Path) -> set[str]:
    """The gateway_http modules one module imports (by module name, no package prefix)."""
    modules = {p.stem for p in ROOT.glob("*.py")}
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names if a.name.startswith(PACKAGE + ".")]
            found.update(n.split(".")[1] for n in names)
        elif isinstance(node, ast.ImportFrom):
            if node.level == 1 or node.module == PACKAGE:
                base = node.module if node.level == 1 else None
                if base:  # from .x import y
                    found.add(base.split(".")[0])
                else:  # from . import x, y
                    found.update(a.name for a in node.names if a.name in modules)
            elif node.module and node.module.startswith(PACKAGE + "."):
                found.add(node.module.split(".")[1])
    found.discard(path.stem)
    return found & modules


def import_graph() -> dict[str, set[str]]:
    return {p.stem: local_imports(p) for p in sorted(ROOT.glob("*.py"))}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle as [a, b, ..., a], or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for dep in sorted(graph.get(node, ())):
            if state.get(dep) == 1:
                return path[path.index(dep) :] + [dep]
            if dep not in state:
                cycle = visit(dep)
                if cycle:
                    return cycle
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state:
            cycle = visit(start)
            if cycle:
                return cycle
    return None


def test_the_checker_sees_a_circle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set(), "c": {"a", "b"}}) is None


def test_the_checker_reads_every_import_form():
    graph = import_graph()
    assert {"keys", "errors", "auth"} <= graph["api_workspaces"]
    assert "service" in graph["app"]  # `from .service import HttpHub`
    assert "gitea_routes" in graph["app"]  # `from . import (..., gitea_routes, ...)`


def test_gateway_http_has_no_import_cycle():
    cycle = find_cycle(import_graph())
    assert cycle is None, " -> ".join(cycle or [])


def test_route_modules_do_not_reach_for_the_whole_hub():
    """Only the factory knows service.HttpHub; routes take their resources by key."""
    graph = import_graph()
    importers = sorted(name for name, deps in graph.items() if "service" in deps)
    assert importers == ["app"], importers
    assert not graph["keys"], graph["keys"]  # the keys depend on no module of the package
