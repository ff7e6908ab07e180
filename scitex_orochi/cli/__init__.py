"""Command line: `scitex-orochi`. Each command lives in its own module and registers on `main`."""

from __future__ import annotations

import importlib

from scitex_orochi.cli.group import main

# Modules that add commands to `main`; a missing optional one is skipped.
_COMMAND_MODULES = (
    "serve",
    "config_cmds",
    "tail",
    "agent_cmds",
    "conv_cmds",
    "admin_cmds",
    "doctor",
    "bench",
    "bus_keys_cmds",
    "policy_cmds",
    "docs_cmds",
    "deploy_cmds",
    "launch_cmds",
    "skills_cmds",
    "ops_cmds",
    "push_cmds",
)

for _name in _COMMAND_MODULES:
    try:
        importlib.import_module(f"{__name__}.{_name}")
    except ModuleNotFoundError as exc:  # only the module itself may be absent
        if exc.name != f"{__name__}.{_name}":
            raise

__all__ = ["main"]
