"""The persister's `push` in-items (persister/rows.parse_push, push_ack): only with the
admin flag, add with person and keys, remove with an endpoint; the ack carries the
outcome or the refusal."""

from __future__ import annotations

import pytest

from persister.rows import InvalidInbound, parse_push, push_ack
from scitex_orochi.hub import store_push


def body(frame: dict, admin: object = True) -> dict:
    return {"origin": "gw1", "tk": 7, "ws": "default", "frame": frame, "admin": admin}


def test_add_and_remove_parse_and_ack():
    add = parse_push(body(store_push.envelope(store_push.ADD, "https://p/1", "alice", "k", "a")))
    assert (add.action, add.person, add.p256dh, add.auth) == ("add", "alice", "k", "a")
    add.outcome = "added"
    assert push_ack(add) == {"tk": 7, "id": add.ref, "ws": "default", "outcome": "added"}
    remove = parse_push(body(store_push.envelope(store_push.REMOVE, "https://p/1")))
    assert remove.action == "remove" and remove.endpoint == "https://p/1"
    remove.error = ("LIMIT_EXCEEDED", "too many")
    assert push_ack(remove)["error"]["code"] == "LIMIT_EXCEEDED"


@pytest.mark.parametrize(
    "frame, admin",
    [
        (store_push.envelope(store_push.ADD, "https://p/1", "alice", "k", "a"), False),
        (store_push.envelope(store_push.ADD, "https://p/1", "alice", "k", "a"), "true"),
        (store_push.envelope(store_push.ADD, "https://p/1", "alice", "", "a"), True),
        (store_push.envelope("purge", "https://p/1"), True),
        (store_push.envelope(store_push.REMOVE, "https://p/" + "x" * 3000), True),
        ({"type": "push", "id": "x", "payload": "nope"}, True),
    ],
)
def test_refused_without_the_admin_flag_or_with_bad_fields(frame, admin):
    with pytest.raises(InvalidInbound):
        parse_push(body(frame, admin))
