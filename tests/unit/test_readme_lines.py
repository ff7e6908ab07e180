"""The README's hub line makes its own environment (read as text; that it runs, from a
fresh venv, and that .ci/run runs the test line: tests/e2e/test_readme.py)."""

from __future__ import annotations

from support.docs import bash_block_after
from support.util import REPO


def test_the_readme_hub_line_makes_its_own_environment():
    line = bash_block_after((REPO / "README.md").read_text(), "Run the hub")
    assert line.startswith("python3 -m venv .venv && . .venv/bin/activate && ")
    assert line.endswith("scitex-orochi serve")
