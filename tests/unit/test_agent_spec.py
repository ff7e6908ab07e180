"""agents/<name>.yaml: what is accepted, and errors that name the file and the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from scitex_orochi.cli.agent_spec import MAX_ITEMS, SpecError, parse
from scitex_orochi.cli.launch_exec import agent_env

P = Path("/fleet/agents/head-lab1.yaml")


def test_a_full_definition():
    spec = parse(
        P,
        {
            "command": "python -u",
            "args": ["agent.py", "--fast"],
            "workdir": "../src",
            "channels": ["general", "#ops"],
            "machine": "lab1.example.org",
            "role": "head",
            "env": {"LOG_LEVEL": "debug"},
            "env_from": ["SCITEX_OROCHI_TOKEN"],
            "bot_token_env": "SCITEX_OROCHI_TELEGRAM_BOT_TOKEN",
        },
    )
    assert spec.argv == ("python", "-u", "agent.py", "--fast")
    assert spec.workdir == Path("/fleet/src")
    assert spec.channels == ("#general", "#ops")
    assert spec.env_from == ("SCITEX_OROCHI_TOKEN", "SCITEX_OROCHI_TELEGRAM_BOT_TOKEN")
    assert spec.runs_on("lab1") and not spec.runs_on("lab2")
    assert parse(P, {"command": ["x"]}).runs_on("anywhere")


@pytest.mark.parametrize(
    ("data", "words"),
    [
        ([1, 2], ["must be a mapping"]),
        ({"args": ["x"]}, ["`command` is required"]),
        ({"command": "x", "chanels": []}, ["unknown key `chanels`"]),
        ({"command": "x", "name": "other"}, ["`name`", "file name"]),
        ({"command": ""}, ["`command` is empty"]),
        ({"command": "x", "args": "a b"}, ["`args` must be a list"]),
        ({"command": "x", "args": [["nested"]]}, ["`args[0]` must be text"]),
        ({"command": "x", "env_from": ["BAD-NAME"]}, ["`env_from[0]`", "not an environment"]),
        ({"command": "x", "env": {"A": "1"}, "env_from": ["A"]}, ["`A` is both"]),
        ({"command": "x", "args": ["a"] * (MAX_ITEMS + 1)}, ["more than"]),
        ({"command": "x", "role": "r" * 5000}, ["`role` is longer"]),
    ],
)
def test_errors_name_the_file_and_the_key(data, words):
    with pytest.raises(SpecError) as err:
        parse(P, data)
    assert str(err.value).startswith(str(P))
    for word in words:
        assert word in str(err.value)


def test_the_agent_environment_holds_only_the_named_variables():
    spec = parse(P, {"command": "x", "env": {"MODE": "a"}, "env_from": ["TOKEN_A"], "role": "h"})
    source = {"PATH": "/bin", "TOKEN_A": "s1", "TOKEN_B": "s2", "LC_ALL": "C", "AWS_KEY": "k"}
    env = agent_env(spec, source)
    assert env == {
        "PATH": "/bin",
        "LC_ALL": "C",
        "MODE": "a",
        "TOKEN_A": "s1",
        "SCITEX_OROCHI_AGENT": "head-lab1",
        "SCITEX_OROCHI_ROLE": "h",
    }
    with pytest.raises(KeyError):
        agent_env(spec, {"PATH": "/bin"})
