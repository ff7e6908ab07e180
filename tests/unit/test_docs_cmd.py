"""`scitex-orochi docs list|get` through click.testing: every page of the repository is
listed with its file's first heading, `get` prints the file as written, unknown pages
and sections exit 2; and docpages reads the package's copy before the checkout's."""

from __future__ import annotations

import json
import re
import tomllib

import pytest
from click.testing import CliRunner

from scitex_orochi import docpages
from scitex_orochi.cli import main

from support.util import REPO


def run(*args):
    return CliRunner().invoke(main, list(args), env={"NO_COLOR": "1"})


def repo_file(name: str):
    file = docpages.PAGES[name]
    return REPO / file if file == "README.md" else REPO / "docs" / file


def first_heading(path) -> str:
    for line in path.read_text().splitlines():
        if line.startswith("#"):
            return line.lstrip("#").strip()
    raise AssertionError(f"{path} has no heading")


def test_the_pages_are_the_readme_and_every_file_in_docs():
    in_docs = {p.name for p in (REPO / "docs").glob("*.md")}
    assert set(docpages.PAGES.values()) == in_docs | {"README.md"}
    for name in ("readme", "protocol", "fleet", "operations", "security"):
        assert name in docpages.PAGES


def test_the_wheel_gets_the_pages_from_the_repository():
    build = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["hatch"]["build"]
    included = build["targets"]["wheel"]["force-include"]
    assert included["README.md"] == f"scitex_orochi/{docpages.PACKAGED_DIR}/README.md"
    assert included["docs"] == f"scitex_orochi/{docpages.PACKAGED_DIR}"


def test_list_names_every_page_with_its_heading_and_size():
    result = run("docs", "list")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].split() == ["PAGE", "TITLE", "BYTES"]
    rows = lines[1:]
    assert [row.split()[0] for row in rows] == list(docpages.PAGES)
    for name, row in zip(docpages.PAGES, rows, strict=True):
        path = repo_file(name)
        assert re.fullmatch(
            rf"{re.escape(name)}\s+{re.escape(first_heading(path))}\s+{path.stat().st_size}", row
        ), row


def test_list_json_is_a_list_of_objects():
    result = run("docs", "list", "--json")
    assert result.exit_code == 0, result.output
    pages = json.loads(result.output)
    assert [p["name"] for p in pages] == list(docpages.PAGES)
    for p in pages:
        assert set(p) == {"name", "title", "file", "size"}
        path = repo_file(p["name"])
        assert p["title"] == first_heading(path)
        assert p["file"] == path.name
        assert p["size"] == path.stat().st_size


@pytest.mark.parametrize("name", list(docpages.PAGES))
def test_get_prints_the_file_as_written(name):
    result = run("docs", "get", name)
    assert result.exit_code == 0, result.output
    assert result.output == repo_file(name).read_text()


def test_get_json_carries_the_text():
    result = run("docs", "get", "protocol", "--json")
    assert result.exit_code == 0, result.output
    page = json.loads(result.output)
    assert page["name"] == "protocol"
    assert page["text"] == repo_file("protocol").read_text()
    assert page["title"] == first_heading(repo_file("protocol"))


def test_an_unknown_page_exits_2_listing_the_pages():
    result = run("docs", "get", "nope")
    assert result.exit_code == 2
    assert f"unknown page 'nope'; pages: {', '.join(docpages.PAGES)}" in result.output


def test_a_close_name_is_suggested():
    result = run("docs", "get", "protocl")
    assert result.exit_code == 2
    assert "did you mean 'protocol'?" in result.output


def test_get_section_stops_at_the_next_heading_of_its_level():
    text = "# T\nintro\n## A\na\n### A1\n```bash\n# not a heading\n```\n## B\nb\n"
    assert docpages.section(text, "a") == "## A\na\n### A1\n```bash\n# not a heading\n```\n"
    assert docpages.section(text, "## B") == "## B\nb\n"
    assert docpages.section(text, "missing") is None
    assert docpages.headings(text) == ["T", "A", "A1", "B"]


def test_get_section_from_the_command_line():
    result = run("docs", "get", "operations", "--section", "Docker")
    assert result.exit_code == 0, result.output
    assert result.output.startswith("## Docker\n")
    assert "docker run" in result.output
    assert "## Upgrades" not in result.output
    missing = run("docs", "get", "operations", "--section", "Nope")
    assert missing.exit_code == 2
    assert "no section 'Nope' in operations; headings: Operating the hub" in missing.output


def test_the_packaged_copy_comes_before_the_checkout(tmp_path, monkeypatch):
    (tmp_path / "protocol.md").write_text("# Packaged\n")
    monkeypatch.setattr(docpages, "_packaged", lambda file: tmp_path / file)
    assert docpages.page_text("protocol") == "# Packaged\n"
    # absent from the package: the checkout's file
    assert docpages.page_text("fleet") == repo_file("fleet").read_text()


def test_help_has_examples():
    for args in (["docs"], ["docs", "list"], ["docs", "get"]):
        result = run(*args, "-h")
        assert result.exit_code == 0
        assert "Examples:" in result.output
        assert "scitex-orochi docs" in result.output
