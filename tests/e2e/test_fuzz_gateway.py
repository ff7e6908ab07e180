"""Bad input at scale: random and malformed frames at a real gateway (hypothesis).

The gateway stays up (same pids), answers errors, stores nothing invalid, and an
agent on another channel is unaffected.
"""

from __future__ import annotations

import json
import uuid

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

pytestmark = pytest.mark.slow

TYPES = [
    "register",
    "message",
    "subscribe",
    "unsubscribe",
    "query",
    "presence",
    "heartbeat",
    "status_update",
    "gitea",
    "react",
    "edit",
    "delete",
    "ack",
    "",
    "MESSAGE",
    "x" * 300,
]
VALID_CLOSE = {1000, 1001, 1007, 1009, 4000}

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=50),
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=10), children, max_size=5)
    ),
    max_leaves=30,
)
frames = st.one_of(
    st.builds(
        lambda t, s, p, i: {"type": t, "sender": s, "payload": p, "id": i},
        st.sampled_from(TYPES),
        st.one_of(st.none(), st.text(max_size=20), st.integers()),
        st.one_of(
            json_values,
            st.dictionaries(
                st.sampled_from(
                    [
                        "channel",
                        "content",
                        "metadata",
                        "attachments",
                        "limit",
                        "after_seq",
                        "since",
                        "channels",
                        "status",
                        "message",
                        "emoji",
                        "action",
                        "search",
                        "mention_only",
                        "capabilities",
                    ]
                ),
                json_values,
                max_size=6,
            ),
        ),
        st.one_of(st.none(), st.text(max_size=200), st.integers()),
    ),
    json_values,
)
raw_inputs = st.one_of(
    frames.map(json.dumps),
    st.text(max_size=300),
    st.binary(max_size=300),
    st.just("[" * 50_000 + "]" * 50_000),
    st.just(
        json.dumps({"type": "message", "payload": {"channel": "#fz", "content": "z" * 500_000}})
    ),
)


@pytest.fixture(scope="module")
def fuzz_hub():
    from scitex_orochi.hub.testing import Hub

    hub = Hub(extra_env={"SCITEX_OROCHI_PUSH_ENABLED": "true"}).start()  # its routes too
    yield hub
    hub.stop()
    hub.cleanup()


def gateway_pids(hub) -> dict[str, int]:
    return {name: pid for name, (_, pid) in hub.status().items()}


def open_agent(hub, name: str, channel: str):
    ws = connect(hub.agent_url(), max_size=None, open_timeout=10).__enter__()
    ws.send(json.dumps({"type": "register", "sender": name, "payload": {"channels": [channel]}}))
    assert json.loads(ws.recv(timeout=10))["type"] == "ack"
    return ws


class Fuzzer:
    def __init__(self, hub) -> None:
        self.hub = hub
        self.name = f"fz-{uuid.uuid4().hex[:6]}"
        self.ws = open_agent(hub, self.name, "#fz")
        self.closes: list[int] = []
        self.errors = 0

    def send(self, data: str | bytes, as_text_bytes: bool = False) -> None:
        try:
            if as_text_bytes:
                self.ws.send(data, text=True)  # invalid UTF-8 in a text frame
            else:
                self.ws.send(data)
            # Whatever was sent, a presence request still gets its reply and ack.
            ref = str(uuid.uuid4())
            self.ws.send(json.dumps({"type": "presence", "id": ref}))
            while True:
                f = json.loads(self.ws.recv(timeout=10))
                if f["type"] == "error":
                    self.errors += 1
                if f["type"] == "ack" and f["payload"].get("ref") == ref:
                    return
        except ConnectionClosed as exc:
            code = exc.rcvd.code if exc.rcvd else 1006
            self.closes.append(code)
            assert code in VALID_CLOSE, f"unexpected close {code} after {data[:80]!r}"
            self.ws = open_agent(self.hub, self.name, "#fz")


def test_random_frames_never_break_the_gateway(fuzz_hub):
    before = gateway_pids(fuzz_hub)
    control = open_agent(fuzz_hub, f"ctl-{uuid.uuid4().hex[:6]}", "#control")
    fuzzer = Fuzzer(fuzz_hub)

    @settings(
        max_examples=300,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(raw_inputs)
    def fuzz(data):
        fuzzer.send(data)

    fuzz()
    fuzzer.send(b"\xff\xfe not utf-8 \xc3\x28", as_text_bytes=True)
    assert 1007 in fuzzer.closes
    assert fuzzer.errors > 50

    # Flood: thousands of frames at once on one socket, then the control agent still works.
    flood = open_agent(fuzz_hub, f"flood-{uuid.uuid4().hex[:6]}", "#flood")
    for i in range(3000):
        flood.send(json.dumps({"type": "presence" if i % 2 else "bogus", "id": f"f{i}"}))
    ref = str(uuid.uuid4())
    control.send(
        json.dumps(
            {
                "type": "message",
                "id": ref,
                "payload": {"channel": "#control", "content": "still fine"},
            }
        )
    )
    while True:
        f = json.loads(control.recv(timeout=15))
        if f["type"] == "ack" and f["payload"]["ref"] == ref:
            assert f["payload"]["status"] == "ok"
            break
    # Nothing but the control message reached the control channel's agent.
    assert gateway_pids(fuzz_hub) == before, "a hub process restarted"

    # Everything stored in the fuzz channels is a valid message.
    store = fuzz_hub.store()
    for channel in store.channels("default"):
        for row in store.history("default", channel, after_seq=0, limit=1000):
            assert isinstance(row["content"], str) and isinstance(row["metadata"], dict)
            assert isinstance(row["attachments"], list) and row["sender"]
    for ws in (control, flood, fuzzer.ws):
        ws.close()


# ---- values the hub cannot carry, in every frame type and every REST body --------------
BAD_VALUES = [
    float("nan"),
    float("inf"),
    float("-inf"),
    2**70,
    -(2**70),
    "x\ud800",
    "\udfff",
    {"k\ud800": 1},
    [1, 2**64],
]
FRAME_FIELDS = {
    "register": [
        "machine",
        "role",
        "model",
        "project",
        "agent_id",
        "orochi_current_task",
        "capabilities",
        "extra",
    ],
    "message": ["content", "metadata", "extra", "attachments"],
    "subscribe": ["channel", "mention_only", "extra"],
    "unsubscribe": ["channel", "extra"],
    "query": ["since", "limit", "search", "extra"],
    "react": ["message", "emoji", "action", "extra"],
    "edit": ["message", "content", "extra"],
    "delete": ["message", "extra"],
    "presence": ["extra"],
    "heartbeat": ["cpu_model", "load_avg_1m", "mem_used_percent", "orochi_current_task"],
    "status_update": ["status", "current_task", "machine"],
    "gitea": ["action", "params"],
}
REST_BODIES = [  # (method, path, a valid body to spoil)
    ("POST", "/api/messages", {"sender": "ops", "payload": {"channel": "#fzr", "content": "x"}}),
    ("POST", "/api/workspaces", {"name": "fz-ws", "channels": ["#a"]}),
    ("POST", "/api/workspaces/default/tokens", {"label": "fz"}),
    ("POST", "/api/workspaces/default/invites", {"max_uses": 1}),
    ("POST", "/api/invites/redeem", {"invite": "inv_x"}),
    ("PATCH", "/api/workspaces/default", {"require_pinned": False}),
    ("PUT", "/api/workspaces/default/gitea", {"owners": ["lab"]}),
    ("POST", "/api/upload-base64", {"data": "aGk=", "filename": "a.txt"}),
    ("POST", "/api/reactions/", {"message_id": 1, "emoji": "👍", "reactor": "ops"}),
    ("DELETE", "/api/reactions", {"message_id": 1, "emoji": "👍", "reactor": "ops"}),
    ("POST", "/api/threads/", {"parent_id": 1, "text": "x", "sender": "ops"}),
    ("PATCH", "/api/messages/1/", {"text": "x", "sender": "ops"}),
    ("POST", "/api/workspace/default/dms/", {"recipient": "agent:x", "sender": "ops"}),
    # The fleet's routes (docs/fleet.md §5, gateway_http/api_fleet.py).
    ("POST", "/api/agents/register/", {"token": "x", "name": "fz-b", "orochi_subagent_count": 1}),
    ("POST", "/api/agents/health/", {"agent": "fz-b", "status": "ok", "reason": "r"}),
    ("POST", "/api/agents/health", {"updates": [{"agent": "fz-b", "status": "ok"}]}),
    ("POST", "/api/messages/", {"channel": "#fzr", "text": "x", "sender": "ops"}),
    ("POST", "/api/agents/ops/subscribe/", {"channel": "#fzr", "mention_only": False}),
    ("POST", "/api/agents/ops/unsubscribe", {"channel": "#fzr"}),
    ("POST", "/api/upload-base64/", {"data": "aGk=", "filename": "a.txt", "sender": "ops"}),
    # Web push (gateway_http/api_push.py; the fuzz hub runs with push enabled).
    (
        "POST",
        "/api/push/subscriptions",
        {
            "endpoint": "https://push.example/fz",
            "keys": {"p256dh": "BA", "auth": "AA"},
            "person": "ops",
        },
    ),
    ("DELETE", "/api/push/subscriptions/", {"endpoint": "https://push.example/fz"}),
]


def _strict(text: str):
    """JSON as a browser reads it: NaN and Infinity are errors."""

    def refuse(name: str):
        raise ValueError(f"{name} is not JSON")

    return json.loads(text, parse_constant=refuse)


def _spoil(body: dict, path: list[str], value) -> dict:
    spoiled = json.loads(json.dumps(body))
    target = spoiled
    for key in path[:-1]:
        target = target.setdefault(key, {})
    target[path[-1]] = value
    return spoiled


def test_unencodable_values_anywhere_are_refused_and_nothing_breaks(fuzz_hub):
    """Every frame type and every REST body with a lone surrogate, NaN/Infinity or an
    integer past 64 bits is refused naming the field; afterwards presence, history and the
    dashboard's reads work and serve strict JSON."""
    import urllib.error
    import urllib.request

    from support.util import wait_for

    witness_name, agent_name = f"wit-{uuid.uuid4().hex[:6]}", f"val-{uuid.uuid4().hex[:6]}"
    witness = open_agent(fuzz_hub, witness_name, "#fzw")
    agent = open_agent(fuzz_hub, agent_name, "#fzv")
    refused_frames = 0

    @settings(
        max_examples=150,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    )
    @given(st.sampled_from(sorted(FRAME_FIELDS)), st.data(), st.sampled_from(BAD_VALUES))
    def frames_with_bad_values(ftype, data, bad):
        nonlocal refused_frames
        field = data.draw(st.sampled_from(FRAME_FIELDS[ftype]))
        payload = {"channel": "#fzv"} if ftype in ("message", "subscribe", "query") else {}
        payload[field] = bad
        ref = str(uuid.uuid4())
        frame = {"type": ftype, "id": ref, "payload": payload}
        if ftype == "register":
            frame["sender"] = agent_name
        agent.send(json.dumps(frame))  # json.dumps writes NaN, Infinity and \ud800 escapes
        while True:
            f = json.loads(agent.recv(timeout=10))
            if f["type"] == "error" and f["payload"].get("ref") == ref:
                assert f["payload"]["code"] == "INVALID_FIELD", f
                assert f["payload"]["detail"].startswith("payload"), f
            if f["type"] == "ack" and f["payload"].get("ref") == ref:
                assert f["payload"]["status"] == "error", (ftype, field, bad)
                refused_frames += 1
                return

    frames_with_bad_values()
    assert refused_frames >= 100

    base = fuzz_hub.http_url
    headers = {
        "Authorization": f"Bearer {fuzz_hub.admin_token}",
        "Content-Type": "application/json",
    }

    def call(method: str, path: str, body=None) -> tuple[int, str]:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(base + path, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                return resp.status, resp.read().decode()
        except urllib.error.HTTPError as err:
            return err.code, err.read().decode()

    @settings(
        max_examples=120,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    )
    @given(st.sampled_from(REST_BODIES), st.sampled_from(BAD_VALUES), st.data())
    def rest_bodies_with_bad_values(route, bad, data):
        method, path, body = route
        keys = (
            [[k] for k in body]
            + [[k, sub] for k, v in body.items() if isinstance(v, dict) for sub in v]
            + [["extra"]]
        )
        status, text = call(method, path, _spoil(body, data.draw(st.sampled_from(keys)), bad))
        assert status == 400, (path, status, text)
        assert "field" in _strict(text)

    rest_bodies_with_bad_values()

    # Presence (several snapshot expiries later), history and the dashboard's reads.
    wait_for(lambda: call("GET", "/api/agents")[0] == 200, 10, "agents route")
    names = {a["name"] for a in _strict(call("GET", "/api/agents")[1])}
    assert {witness_name, agent_name} <= names
    ref = str(uuid.uuid4())
    witness.send(
        json.dumps(
            {
                "type": "message",
                "id": ref,
                "payload": {"channel": "#fzw", "content": "after the storm"},
            }
        )
    )
    while True:
        f = json.loads(witness.recv(timeout=10))
        if f["type"] == "ack" and f["payload"]["ref"] == ref:
            assert f["payload"]["status"] == "ok"
            break
    for path in (
        "/api/channels/summary",
        "/api/history/fzw",
        "/api/history/fzv",
        "/api/history/fzr",
        "/api/messages?limit=500",
        "/api/stats",
        "/api/reactions/?message_ids=1,2",
        "/api/workspace/default/dms/",
        "/",
    ):
        status, text = call("GET", path)
        assert status == 200, (path, status)
        if path != "/":
            _strict(text)
    assert "after the storm" in call("GET", "/api/history/fzw")[1]
    for ws in (witness, agent):
        ws.close()
