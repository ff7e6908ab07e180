"""What `pip install` gives a 0.1.0 user: `from orochi.client import OrochiClient`,
`orochi.models`, `python -m orochi.server` and the `scitex-orochi-server` script, from a
wheel and from an editable install, imported from outside the repository."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from scitex_orochi.hub.testing import free_port

from support.procs import serving
from support.util import REPO, TIME_SCALE

PIP_TIMEOUT_S = 300 * TIME_SCALE
IMPORTS = """
import orochi, orochi.client, orochi.models, orochi.server, scitex_orochi
from orochi.client import OrochiClient
from orochi.models import Message
assert OrochiClient is scitex_orochi.OrochiClient, OrochiClient
assert Message is scitex_orochi.Message
assert callable(orochi.server.server_main)
print("orochi", orochi.__file__)
print("scitex_orochi", scitex_orochi.__file__)
"""
# `scitex-orochi docs get protocol` in this interpreter.
DOCS_GET = """
from scitex_orochi.cli import main
main(["docs", "get", "protocol"])
"""


def pip(*args: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "pip", "--disable-pip-version-check", *args],
        capture_output=True,
        text=True,
        timeout=PIP_TIMEOUT_S,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]


def outside_env(**extra: str) -> dict[str, str]:
    """No PYTHONPATH pointing at the repository, no hub settings."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k != "PYTHONPATH" and not k.startswith(("SCITEX_OROCHI_", "OROCHI_"))
    }
    env.update(extra)
    return env


def locations(output: str) -> dict[str, Path]:
    return {m.group(1): Path(m.group(2)) for m in re.finditer(r"^(\S+) (\S+)$", output, re.M)}


pytestmark = pytest.mark.timeout(600)  # builds and installs with pip


@pytest.fixture(scope="module")
def wheel_target():
    work = Path(tempfile.mkdtemp(prefix="orowheel"))
    pip("wheel", "--no-deps", "-q", "-w", str(work / "dist"), str(REPO))
    (wheel,) = (work / "dist").glob("scitex_orochi-*.whl")
    pip("install", "--no-deps", "-q", "--target", str(work / "site"), str(wheel))
    return work / "site"


def test_the_wheel_ships_the_0_1_0_import_names(wheel_target):
    result = subprocess.run(
        [sys.executable, "-c", IMPORTS],
        cwd="/",
        capture_output=True,
        text=True,
        timeout=60,
        env=outside_env(PYTHONPATH=str(wheel_target)),
    )
    assert result.returncode == 0, result.stderr
    where = locations(result.stdout)
    assert where["orochi"].is_relative_to(wheel_target)
    assert where["scitex_orochi"].is_relative_to(wheel_target)
    (entry_points,) = wheel_target.glob("scitex_orochi-*.dist-info/entry_points.txt")
    assert "scitex-orochi-server = scitex_orochi.cli.serve:server_main" in entry_points.read_text()


def test_an_editable_install_ships_them_too(tmp_path):
    site_dir = tmp_path / "site"
    pip("install", "--no-deps", "-q", "--target", str(site_dir), "-e", str(REPO))
    # `site_dir` as the first site directory: its .pth (the editable link) comes first
    code = (
        f"import site, sys; before = list(sys.path); site.addsitedir({str(site_dir)!r}); "
        "sys.path[:] = [p for p in sys.path if p not in before] + before\n" + IMPORTS
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd="/",
        capture_output=True,
        text=True,
        timeout=60,
        env=outside_env(),
    )
    assert result.returncode == 0, result.stderr
    where = locations(result.stdout)
    assert where["orochi"].is_relative_to(site_dir)
    assert where["scitex_orochi"].is_relative_to(REPO)  # the editable source, not a copy
    docs = subprocess.run(
        [sys.executable, "-c", code.split("\n")[0] + "\n" + DOCS_GET],
        cwd="/",
        capture_output=True,
        text=True,
        timeout=60,
        env=outside_env(),
    )
    assert docs.returncode == 0, docs.stderr
    assert docs.stdout == (REPO / "docs" / "protocol.md").read_text()


def test_scitex_orochi_server_starts_the_hub(wheel_target):
    script = wheel_target / "bin" / "scitex-orochi-server"
    assert script.exists()
    home = tempfile.mkdtemp(prefix="orohome", dir="/tmp")
    port, dport = free_port(), free_port()
    env = outside_env(
        PYTHONPATH=str(wheel_target),
        HOME=home,
        XDG_DATA_HOME=f"{home}/.local/share",
        SCITEX_OROCHI_PORT=str(port),
        SCITEX_OROCHI_DASHBOARD_PORT=str(dport),
    )
    with serving(
        [sys.executable, str(script)], cwd="/", env=env, timeout_s=60, what="the hub's banner"
    ) as (proc, text):
        assert "Orochi hub ready" in text, text[-3000:]
        assert f"ws://127.0.0.1:{port}/" in text
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0


def test_python_m_orochi_server_is_serve(wheel_target):
    result = subprocess.run(
        [sys.executable, "-m", "orochi.server", "-h"],
        cwd="/",
        capture_output=True,
        text=True,
        timeout=60,
        env=outside_env(PYTHONPATH=str(wheel_target)),
    )
    assert result.returncode == 0, result.stderr
    assert "Run the hub in the foreground" in result.stdout


def test_the_wheel_ships_the_docs_pages(wheel_target):
    packaged = wheel_target / "scitex_orochi" / "_docs"
    assert (packaged / "README.md").read_text() == (REPO / "README.md").read_text()
    for page in ("protocol", "fleet", "operations", "security", "configuration", "internals"):
        assert (packaged / f"{page}.md").read_text() == (REPO / "docs" / f"{page}.md").read_text()
    script = wheel_target / "bin" / "scitex-orochi"
    env = outside_env(PYTHONPATH=str(wheel_target))
    got = subprocess.run(
        [sys.executable, str(script), "docs", "get", "protocol"],
        cwd="/",
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert got.returncode == 0, got.stderr
    assert got.stdout == (REPO / "docs" / "protocol.md").read_text()
    listed = subprocess.run(
        [sys.executable, str(script), "docs", "list", "--json"],
        cwd="/",
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert listed.returncode == 0, listed.stderr
    assert "readme" in {page["name"] for page in json.loads(listed.stdout)}
