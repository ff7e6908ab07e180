"""The README's two lines: the hub line works from a fresh virtual environment, and CI
(.ci/run) runs exactly the README's test line."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

import pytest

from scitex_orochi.hub.testing import free_port

from support.docs import bash_block_after
from support.procs import serving
from support.util import REPO


def test_ci_runs_the_readme_test_line():
    readme = (REPO / "README.md").read_text()
    expected = bash_block_after(readme, "Run the tests")
    assert "pytest" in expected
    ci = (REPO / ".ci" / "run").read_text()
    extract = re.search(r"^test_line=\$\((.*)\)$", ci, re.M).group(1)
    got = subprocess.run(
        ["bash", "-c", extract], cwd=REPO, capture_output=True, text=True, timeout=30
    )
    assert got.stdout.strip() == expected
    assert re.search(r'^eval "\$test_line"$', ci, re.M)


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_the_readme_hub_line_runs_the_hub_from_a_fresh_venv():
    """What a newcomer types on a Debian machine, in a copy of the repository."""
    line = bash_block_after((REPO / "README.md").read_text(), "Run the hub")
    work = Path(tempfile.mkdtemp(prefix="ororeadme"))
    copy = work / "orochi"
    shutil.copytree(
        REPO,
        copy,
        ignore=shutil.ignore_patterns(
            ".git", ".venv", "test-artifacts", "__pycache__", "*.egg-info", ".pytest_cache"
        ),
    )
    home = work / "home"
    port, dport = free_port(), free_port()
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("PYTHONPATH", "VIRTUAL_ENV") and not k.startswith("SCITEX_OROCHI_")
    }
    env.update(
        HOME=str(home),
        XDG_DATA_HOME=str(home / ".local/share"),
        SCITEX_OROCHI_PORT=str(port),
        SCITEX_OROCHI_DASHBOARD_PORT=str(dport),
    )
    try:
        with serving(
            ["bash", "-c", line],
            cwd=copy,
            env=env,
            timeout_s=400,
            what="the hub's banner after the install",
        ) as (proc, text):
            assert "Orochi hub ready" in text, text[-4000:]
            assert (copy / ".venv" / "bin" / "scitex-orochi").exists()
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(30)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def test_the_docs_say_reads_need_a_token_and_the_hub_agrees(shared_hub):
    import urllib.error
    import urllib.request

    from support.http_util import wait_http_ready

    readme = (REPO / "README.md").read_text()
    section = readme[readme.index("## REST API: every route needs a token") :]
    section = section[: section.index("\n## ", 1)]
    routes = re.findall(r"`(?:GET )?(/api/[a-z/]+)(?:/\{channel\})?`", section)
    assert {"/api/agents", "/api/channels", "/api/history", "/api/stats"} <= set(routes)
    assert "Reads need a token too" in (REPO / "docs" / "http-gateway.md").read_text()
    wait_http_ready(shared_hub)
    for route in routes:
        path = route + ("/general" if route == "/api/history" else "")
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(shared_hub.http_url + path, timeout=10)
        assert refused.value.code == 401, path
