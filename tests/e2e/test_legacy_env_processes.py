"""The published 0.1.0 variable names in processes: the CLI as a subprocess reaches a hub
through them and warns once per name; a hub process started on its own logs the notice once
(the Config side is tests/unit/test_legacy_env.py)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from support.cli import CLI, WAIT_S
from support.procs import read_lines
from support.util import wait_for


def clean_env(**extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("SCITEX_OROCHI_", "OROCHI_", "GITEA_"))
    }
    env.update(extra)
    return env


def test_the_cli_reaches_a_hub_through_the_0_1_0_names_and_warns_once(hub):
    env = clean_env(
        OROCHI_PORT=str(hub.port),
        OROCHI_DASHBOARD_PORT=str(hub.dashboard_port),
        OROCHI_TOKEN=hub.default_token,
        NO_COLOR="1",
    )
    sent = subprocess.run(
        [*CLI, "send", "#legacy", "old names", "--name", "legacy-cli", "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=WAIT_S,
    )
    assert sent.returncode == 0, sent.stderr
    assert json.loads(sent.stdout)["seq"] == 1
    for old in ("OROCHI_PORT", "OROCHI_TOKEN"):
        assert sent.stderr.count(f"{old} is deprecated") == 1, sent.stderr
    assert "OROCHI_DASHBOARD_PORT is deprecated" in sent.stderr
    history = subprocess.run(
        [*CLI, "show-history", "#legacy", "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=WAIT_S,
    )
    assert history.returncode == 0, history.stderr
    assert [r["content"] for r in json.loads(history.stdout)] == ["old names"]
    # An option on the command line overrides the environment: nothing to warn about.
    quiet = subprocess.run(
        [
            *CLI,
            "--port",
            str(hub.port),
            "--dashboard-port",
            str(hub.dashboard_port),
            "--token",
            hub.default_token,
            "show-status",
            "--json",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=WAIT_S,
    )
    assert quiet.returncode == 0 and "deprecated" not in quiet.stderr, quiet.stderr


def test_a_process_logs_the_notice_once(tmp_path):
    """A hub process started on its own (not by serve) reports the old names it read."""
    run_dir = Path(tempfile_short())
    env = clean_env(
        SCITEX_OROCHI_RUN_DIR=str(run_dir),
        SCITEX_OROCHI_DATA_DIR=str(tmp_path),
        OROCHI_PORT="9601",
        OROCHI_DASHBOARD_PORT="8602",
        PYTHONPATH=os.environ.get("PYTHONPATH", ""),
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "broker"], env=env, stderr=subprocess.PIPE, text=True
    )
    lines: list[str] = []
    read_lines(proc.stderr, lines.append)
    try:
        wait_for(lambda: sum("is deprecated" in x for x in lines) >= 2, 20, "two notices")
        proc.send_signal(signal.SIGTERM)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    text = "".join(lines)
    assert text.count("OROCHI_PORT is deprecated") == 1, text
    assert text.count("OROCHI_DASHBOARD_PORT is deprecated") == 1, text
    assert "broker WARNING orochi.broker" in text  # through the process's own log format


def tempfile_short() -> str:
    import tempfile

    return tempfile.mkdtemp(prefix="orl", dir="/tmp")
