"""docs/configuration.md lists every setting of the table: its generated tables are the
table's own rendering, so the two cannot drift (regenerate with
`python -m scitex_orochi.hub.settings_load`)."""

from __future__ import annotations

from scitex_orochi.hub.settings import SETTINGS
from scitex_orochi.hub.settings_load import markdown
from scitex_orochi.protocol.env import ENV_PREFIX

from support.util import REPO

START = "<!-- generated: `python -m scitex_orochi.hub.settings_load`"
END = "<!-- end of the generated tables -->"


def generated_part() -> str:
    doc = (REPO / "docs" / "configuration.md").read_text()
    start = doc.index("\n", doc.index(START)) + 1
    return doc[start : doc.index(END)].strip("\n")


def test_the_doc_lists_every_variable_and_attribute_of_the_table():
    part = generated_part()
    for setting in SETTINGS:
        assert f"`{ENV_PREFIX}{setting.env}`" in part, setting.env
        assert f"`{setting.key}`" in part, setting.key


def test_the_doc_tables_are_the_table_rendered():
    assert generated_part() == markdown().strip("\n"), (
        "docs/configuration.md is out of date: regenerate its tables with "
        "`python -m scitex_orochi.hub.settings_load`"
    )
