"""Settings are read in one place: no module of the hub or the client reads os.environ or
os.getenv except the ones named here (walked with ast, so an alias cannot hide one)."""

from __future__ import annotations

import ast

from support.util import REPO

PACKAGES = ("scitex_orochi", "broker", "persister", "gateway_ws", "gateway_http", "bridges")
ALLOWED = {
    "scitex_orochi/hub/config.py": "the hub's settings, and the environment passed through "
    "to child processes (process_environ)",
    "scitex_orochi/client/settings.py": "the agent client's and the CLI's own few variables",
    "scitex_orochi/hub/testing/__init__.py": "the test harness's own knobs (OROCHI_TEST_*)",
}
READERS = {"environ", "environb", "getenv", "getenvb"}


def env_reads(tree: ast.AST) -> list[int]:
    """Lines that touch os.environ/os.getenv, however os or the name was imported."""
    os_names = {"os"}
    lines = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            os_names |= {a.asname or a.name for a in node.names if a.name == "os"}
        elif isinstance(node, ast.ImportFrom) and node.module == "os":
            lines += [node.lineno for a in node.names if a.name in READERS]
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and node.attr in READERS
            and isinstance(node.value, ast.Name)
            and node.value.id in os_names
        ):
            lines.append(node.lineno)
    return sorted(lines)


def test_no_module_reads_the_environment_outside_the_settings_modules():
    found = []
    for package in PACKAGES:
        for path in sorted((REPO / package).rglob("*.py")):
            rel = path.relative_to(REPO).as_posix()
            if rel in ALLOWED:
                continue
            found += [f"{rel}:{line}" for line in env_reads(ast.parse(path.read_text()))]
    assert not found, (
        "read settings through scitex_orochi.hub.config.Config (or, on the "
        f"agent side, scitex_orochi.client.settings): {found}"
    )


def test_the_walk_finds_every_spelling():
    source = (
        "import os\nimport os as o\nfrom os import getenv\n"
        "a = os.environ['X']\nb = o.getenv('Y')\nc = getenv('Z')\n"
    )
    assert env_reads(ast.parse(source)) == [3, 4, 5]
    assert all((REPO / rel).is_file() for rel in ALLOWED)
