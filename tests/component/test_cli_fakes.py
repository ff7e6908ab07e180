"""The CLI through click.testing against servers in this process: network commands against
FakeHub (in a thread of its own) and REST commands against a small stdlib server on port 0;
exit codes for a refused token and an unreachable hub (help, --dry-run and output
formatting are tests/unit/test_cli_unit.py)."""

from __future__ import annotations

import asyncio
import json
import threading
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from click.testing import CliRunner

from scitex_orochi.cli import main

from support.fakehub import FakeHub


def run(*args, env=None, input=None):
    base = {"SCITEX_OROCHI_TOKEN": "", "SCITEX_OROCHI_ADMIN_TOKEN": "", "NO_COLOR": "1"}
    return CliRunner().invoke(main, list(args), env={**base, **(env or {})}, input=input)


@pytest.fixture
def fake_hub():
    ready, box = threading.Event(), {}

    def serve():
        async def main_():
            async with FakeHub(token="tok") as hub:
                box.update(
                    hub=hub,
                    loop=asyncio.get_running_loop(),
                    stop=asyncio.get_running_loop().create_future(),
                )
                ready.set()
                await box["stop"]

        asyncio.run(main_())

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    assert ready.wait(10)
    yield box["hub"]
    box["loop"].call_soon_threadsafe(box["stop"].set_result, None)
    thread.join(10)


def test_send_prints_the_seq(fake_hub):
    args = ["--port", str(fake_hub.port), "--token", "tok", "send"]
    result = run(*args, "#g", "hello", "--name", "cli", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["seq"] == 1
    result = run(*args, "g", "-", "--name", "cli", input="from stdin")
    assert result.exit_code == 0 and "sent to #g (seq 2" in result.output
    assert [r["content"] for r in fake_hub.rows["#g"]] == ["hello", "from stdin"]


def test_bad_token_exits_4(fake_hub):
    result = run("--port", str(fake_hub.port), "--token", "nope", "send", "#g", "x")
    assert result.exit_code == 4 and "refused the token" in result.output


def test_cannot_connect_exits_3_naming_the_url():
    result = run("--port", "1", "send", "#g", "x")
    assert result.exit_code == 3
    assert "ws://127.0.0.1:1/" in result.output and "scitex-orochi serve" in result.output


def test_join_subscribes(fake_hub):
    result = run(
        "--port", str(fake_hub.port), "--token", "tok", "join", "alerts", "--name", "j", "--json"
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["channel"] == "#alerts"


class Api(BaseHTTPRequestHandler):
    routes: dict = {}
    seen: list = []

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length)) if length else None
        Api.seen.append((self.command, self.path, self.headers.get("Authorization"), body))
        if self.headers.get("Authorization") != "Bearer admin":
            status, data = 401, {"error": "unauthorized"}
        else:
            status, data = Api.routes.get(
                (self.command, self.path.split("?")[0]), (404, {"error": "not found"})
            )
        raw = json.dumps(data).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    do_GET = do_POST = do_DELETE = _answer

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def api():
    now = datetime.now(UTC)
    Api.seen = []
    Api.routes = {
        ("GET", "/api/agents"): (
            200,
            [
                {
                    "name": "alpha",
                    "status": "busy",
                    "machine": "m1",
                    "channels": ["#general"],
                    "current_task": "tests",
                    "last_seen": (now - timedelta(seconds=30)).timestamp(),
                }
            ],
        ),
        ("GET", "/api/channels"): (200, {"#general": ["alpha", "beta"], "#empty": []}),
        ("GET", "/api/channels/summary"): (
            200,
            {
                "workspace": "default",
                "channels": [
                    {"name": "#general", "members": ["alpha", "beta"], "last_seq": 3},
                    {"name": "#quiet", "members": [], "last_seq": 5},
                ],
            },
        ),
        ("GET", "/api/stats"): (
            200,
            {
                "agents_online": 2,
                "channels_active": 1,
                "observers_connected": 0,
                "agents": ["alpha", "beta"],
                "channels": ["#general"],
            },
        ),
        ("GET", "/api/history/general"): (
            200,
            [
                {
                    "msg_id": "2",
                    "seq": 2,
                    "ts": now.isoformat(),
                    "channel": "#general",
                    "sender": "beta",
                    "content": "second",
                },
                {
                    "msg_id": "1",
                    "seq": 1,
                    "ts": now.isoformat(),
                    "channel": "#general",
                    "sender": "alpha",
                    "content": "first",
                },
            ],
        ),
        ("GET", "/api/workspaces"): (
            200,
            [
                {
                    "id": "ws_1",
                    "name": "lab",
                    "channels": ["#general"],
                    "created_at": now.isoformat(),
                }
            ],
        ),
        ("POST", "/api/workspaces"): (
            201,
            {"workspace": {"id": "ws_2", "name": "new"}, "token": "wks_abc"},
        ),
        ("DELETE", "/api/workspaces/ws_1"): (200, {"status": "ok"}),
        ("POST", "/api/workspaces/ws_1/invites"): (201, {"token": "inv_1", "max_uses": 3}),
        ("GET", "/api/workspaces/ws_1/invites"): (
            200,
            [
                {
                    "token": "inv_1",
                    "max_uses": 3,
                    "uses": 1,
                    "expires_at": None,
                    "created_at": now.isoformat(),
                }
            ],
        ),
    }
    server = ThreadingHTTPServer(("127.0.0.1", 0), Api)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield ["--dashboard-port", str(server.server_address[1])]
    server.shutdown()
    server.server_close()


def test_list_agents_table_and_json(api):
    result = run(*api, "--token", "admin", "list-agents")
    assert result.exit_code == 0, result.output
    header, row = result.output.splitlines()[:2]
    assert header.split()[:3] == ["NAME", "STATUS", "MACHINE"]
    assert row.split()[:3] == ["alpha", "busy", "m1"] and "30s ago" in row
    data = json.loads(run(*api, "--token", "admin", "list-agents", "--json").output)
    assert data[0]["name"] == "alpha"


def test_channels_members_status_history(api):
    out = run(*api, "--token", "admin", "list-channels").output
    assert "#general" in out and "alpha,beta" in out
    members = run(*api, "--token", "admin", "list-members", "--channel", "general", "--json")
    assert json.loads(members.output) == {"channel": "#general", "members": ["alpha", "beta"]}
    missing = run(*api, "--token", "admin", "list-members", "--channel", "#nope")
    assert missing.exit_code == 5 and "no channel #nope" in missing.output
    quiet = run(*api, "--token", "admin", "list-members", "--channel", "quiet")
    assert quiet.exit_code == 0 and quiet.output.strip() == "#quiet: no members online"
    status = run(*api, "--token", "admin", "show-status").output.splitlines()
    assert status[0].split() == ["ITEM", "VALUE"]
    # aligned: every value starts in the same column, however long the label
    starts = {
        line.index(value)
        for line, value in zip(
            status[1:], ["http://", "2", "1", "0", "alpha, beta", "#general"], strict=True
        )
    }
    assert len(starts) == 1, status
    history = run(*api, "--token", "admin", "show-history", "#general", "--json")
    assert [r["content"] for r in json.loads(history.output)] == ["first", "second"]
    lines = run(*api, "--token", "admin", "show-history", "general").output.splitlines()
    assert "alpha: first" in lines[0] and "beta: second" in lines[1]


def test_workspace_admin_commands_use_the_admin_token(api):
    env = {"SCITEX_OROCHI_TOKEN": "wks_agent", "SCITEX_OROCHI_ADMIN_TOKEN": "admin"}
    created = run(*api, "create-workspace", "new", "--channels", "a,#b", env=env)
    assert created.exit_code == 0, created.output
    assert "ws_2" in created.output and "wks_abc" in created.output
    assert Api.seen[-1][3] == {"name": "new", "channels": ["#a", "#b"]}
    listed = run(*api, "list-workspaces", env=env)
    assert "lab" in listed.output and "just now" in listed.output
    assert run(*api, "delete-workspace", "ws_1", "--yes", env=env).exit_code == 0
    assert run(*api, "delete-workspace", "ws_1", env=env, input="n\n").exit_code == 1
    invite = run(*api, "create-invite", "ws_1", "--max-uses", "3", "--json", env=env)
    assert json.loads(invite.output)["token"] == "inv_1"
    assert Api.seen[-1][3] == {"max_uses": 3}
    invites = run(*api, "list-invites", "ws_1", env=env).output
    assert "inv_1" in invites and "1/3" in invites and "never" in invites
    unknown = run(*api, "list-invites", "ws_9", env=env)
    assert unknown.exit_code == 5


def test_rest_auth_failure_exits_4(api):
    result = run(*api, "--token", "wrong", "list-workspaces")
    assert result.exit_code == 4 and "refused the token" in result.output


def test_rest_unreachable_exits_3():
    result = run("--dashboard-port", "1", "list-agents")
    assert result.exit_code == 3 and "http://127.0.0.1:1" in result.output
