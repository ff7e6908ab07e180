"""`scitex-orochi skills list|get|export|propose` through click.testing against the HTTP
gateway's app in this process (the CLI's blocking REST calls run in a thread while the
test's loop serves them), and the help of each command."""

from __future__ import annotations

import asyncio
import json
import stat

import pytest
from click.testing import CliRunner

from scitex_orochi.cli import main

DEPLOY_MD = """---
name: deploy
description: Deploy a service
arguments:
  - name: env
    description: where
    required: true
---
Deploy to {{env}}.
"""


def run(http, token: str, *args: str):
    env = {"SCITEX_OROCHI_TOKEN": "", "SCITEX_OROCHI_ADMIN_TOKEN": "", "NO_COLOR": "1"}
    base = ["--host", "127.0.0.1", "--dashboard-port", str(http.port), "--token", token]
    return CliRunner().invoke(main, [*base, *args], env=env)


async def cli(http, token: str, *args: str):
    return await asyncio.to_thread(run, http, token, *args)


@pytest.mark.parametrize("command", ["list", "get", "export", "propose"])
def test_each_command_has_help_with_examples(command):
    result = CliRunner().invoke(main, ["skills", command, "-h"])
    assert result.exit_code == 0 and "Examples:" in result.output, result.output


async def test_propose_approve_list_get_and_export(http, bed, tmp_path):
    admin, token = bed.admin_token, bed.default_token
    source = tmp_path / "deploy.md"
    source.write_text(DEPLOY_MD)
    dry = await cli(http, admin, "skills", "propose", str(source), "--dry-run", "--json")
    assert dry.exit_code == 0, dry.output
    assert json.loads(dry.output)["url"].endswith("/api/skills/deploy/propose")
    resp = await http.get("/api/skills/pending", headers={"Authorization": f"Bearer {admin}"})
    assert (await resp.json())["pending"] == []  # the dry run sent nothing
    # A workspace token that names no connected agent is refused (exit 4).
    refused = await cli(http, token, "skills", "propose", str(source), "--proposer", "nobody")
    assert refused.exit_code == 4, refused.output
    proposed = await cli(http, admin, "skills", "propose", str(source), "--json")
    assert proposed.exit_code == 0, proposed.output
    assert json.loads(proposed.output)["status"] == "pending"
    resp = await http.post(
        "/api/skills/pending/deploy/approve", headers={"Authorization": f"Bearer {admin}"}
    )
    assert resp.status == 200
    listed = await cli(http, token, "skills", "list")
    assert listed.exit_code == 0 and "deploy  env  Deploy a service" in listed.output, listed.output
    as_json = json.loads((await cli(http, token, "skills", "list", "--json")).output)
    assert [s["name"] for s in as_json["skills"]] == ["deploy"]
    got = await cli(http, token, "skills", "get", "deploy")
    assert got.exit_code == 0 and got.output == DEPLOY_MD, got.output
    missing = await cli(http, token, "skills", "get", "nope")
    assert missing.exit_code == 5, missing.output
    out = tmp_path / "out"
    dry = await cli(http, token, "skills", "export", str(out), "--dry-run")
    assert dry.exit_code == 0 and "[dry-run]" in dry.output and not out.exists(), dry.output
    exported = await cli(http, token, "skills", "export", str(out), "--json")
    assert exported.exit_code == 0, exported.output
    assert json.loads(exported.output)["written"] == [str(out / "deploy.md")]
    assert (out / "deploy.md").read_text() == DEPLOY_MD
    assert stat.S_IMODE((out / "deploy.md").stat().st_mode) == 0o600


async def test_a_bad_file_is_a_usage_error_before_any_request(http, bed, tmp_path):
    bad = tmp_path / "bad.md"
    bad.write_text("no front matter\n")
    result = await cli(http, bed.admin_token, "skills", "propose", str(bad))
    assert result.exit_code == 2 and "front matter" in result.output, result.output
