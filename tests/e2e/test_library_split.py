"""The library's shape: what agent code imports loads none of the hub's dependencies."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

HEAVY = ("zmq", "sqlalchemy", "aiohttp", "supervisor", "msgpack")


@pytest.mark.parametrize(
    "statement",
    [
        "from scitex_orochi import OrochiClient, SyncOrochiClient, Message",
        "import scitex_orochi.client",
        "import scitex_orochi.client.rest",
        "import scitex_orochi.protocol.codec, scitex_orochi.protocol.topics, "
        "scitex_orochi.protocol.errors, scitex_orochi.protocol.env",
    ],
)
def test_client_and_protocol_load_no_hub_dependency(statement):
    code = f"{statement}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    loaded = {name.split(".")[0] for name in json.loads(out)}
    assert not loaded & set(HEAVY), sorted(loaded & set(HEAVY))
    assert not any(name.startswith("scitex_orochi.hub") for name in json.loads(out))


def test_protocol_imports_only_the_standard_library():
    code = (
        "import sys, json; before = set(sys.modules)\n"
        "import scitex_orochi.protocol.codec, scitex_orochi.protocol.errors\n"
        "print(json.dumps(sorted(set(sys.modules) - before)))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    third_party = {n.split(".")[0] for n in json.loads(out)} - set(sys.stdlib_module_names)
    # Importing a submodule imports its package, and the package its client.
    assert third_party <= {"scitex_orochi", "websockets"}, third_party
