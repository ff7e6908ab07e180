"""The conversation rules (protocol/conversations.py) with literal inputs."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from scitex_orochi.protocol import conversations as conv
from scitex_orochi.protocol.conversations import ConversationError, MessageRef


# ---- DM channels ----------------------------------------------------------------------
def test_one_pair_has_one_dm_channel_whatever_the_order():
    assert conv.dm_channel("agent:b", "agent:a") == "dm:agent:a|agent:b"
    assert conv.dm_channel("agent:a", "agent:b") == "dm:agent:a|agent:b"
    assert conv.dm_channel("human:ywatanabe", "agent:head") == "dm:agent:head|human:ywatanabe"
    assert conv.dm_participants("dm:agent:a|agent:b") == ("agent:a", "agent:b")
    assert conv.may_use_dm("dm:agent:a|agent:b", "agent:a")
    assert not conv.may_use_dm("dm:agent:a|agent:b", "agent:c")
    assert conv.is_dm("dm:agent:a|agent:b") and not conv.is_dm("#general")


@pytest.mark.parametrize(
    ("channel", "says"),
    [
        ("#general", "is not a DM channel"),
        ("dm:agent:a", "exactly two participants"),
        ("dm:agent:a|agent:b|agent:c", "exactly two participants"),
        ("dm:agent:a|agent:a", "must differ"),
        ("dm:agent:b|agent:a", "the channel is dm:agent:a|agent:b"),
        ("dm:bot:a|agent:b", "agent:<name> or human:<name>"),
        ("dm:agent:|agent:b", "1..128 characters"),
        ("dm:agent: a|agent:b", "edge spaces"),
        ("dm:agent:a\x00|agent:b", "control characters"),
    ],
)
def test_a_bad_dm_channel_is_refused_naming_the_rule(channel, says):
    with pytest.raises(ConversationError, match=says) as err:
        conv.dm_participants(channel)
    assert err.value.field == "payload.channel"


def test_a_dm_needs_two_different_valid_participants():
    with pytest.raises(ConversationError, match="two different"):
        conv.dm_channel("agent:a", "agent:a")
    with pytest.raises(ConversationError, match="agent:<name> or human:<name>"):
        conv.dm_channel("a", "agent:b")
    assert conv.participant("agent", "head") == "agent:head"


@given(
    st.sampled_from(["agent", "human"]),
    st.text(alphabet="abcxyz-_0129", min_size=1, max_size=20),
    st.sampled_from(["agent", "human"]),
    st.text(alphabet="abcxyz-_0129", min_size=1, max_size=20),
)
def test_dm_channel_and_participants_round_trip(kind_a, a, kind_b, b):
    first, second = f"{kind_a}:{a}", f"{kind_b}:{b}"
    if first == second:
        return
    channel = conv.dm_channel(first, second)
    assert set(conv.dm_participants(channel)) == {first, second}
    assert conv.dm_channel(second, first) == channel


# ---- references and emoji -------------------------------------------------------------
def test_a_message_is_named_by_id_or_number():
    assert conv.message_ref("msg-1") == MessageRef(id="msg-1")
    assert conv.message_ref(42) == MessageRef(num=42)
    assert str(conv.message_ref(42)) == "#42"
    for bad in (True, 0, -1, 2**63, "", "x" * 256, 1.5, None, ["a"]):
        with pytest.raises(ConversationError) as err:
            conv.message_ref(bad)
        assert err.value.field == "payload.message"


@pytest.mark.parametrize("emoji", ["👀", "✅", "👍🏽", "🏳️‍🌈", ":eyes:", "+1"])
def test_emoji_are_accepted(emoji):
    assert conv.check_emoji(emoji) == emoji


@pytest.mark.parametrize(
    ("emoji", "says"),
    [
        ("", "non-empty"),
        (None, "non-empty"),
        ("x" * 33, "longer than 32"),
        ("a b", "spaces"),
        ("\u202e👀", "format"),
        ("\x07", "control"),
    ],
)
def test_bad_emoji_are_refused(emoji, says):
    with pytest.raises(ConversationError, match=says):
        conv.check_emoji(emoji)


def test_reaction_actions():
    assert conv.check_action(None) == "add"
    assert conv.check_action("remove") == "remove"
    with pytest.raises(ConversationError, match="'add' or 'remove'"):
        conv.check_action("toggle")


def test_only_the_sender_or_the_admin_changes_a_message():
    assert conv.may_change("alice", "alice", is_admin=False)
    assert not conv.may_change("alice", "mallory", is_admin=False)
    assert conv.may_change("alice", "orochi-admin", is_admin=True)


# ---- folding --------------------------------------------------------------------------
def _react(seq, emoji, reactor, action="add"):
    return {
        "type": "reaction_update",
        **conv.reaction_update(
            channel="#c", seq=seq, message="m1", num=7, emoji=emoji, reactor=reactor, action=action
        ),
    }


def _edit(seq, content):
    return {
        "type": "message_edit",
        **conv.message_edit(
            channel="#c",
            seq=seq,
            message="m1",
            num=7,
            content=content,
            editor="alice",
            edited_at=f"t{seq}",
        ),
    }


def _delete(seq):
    return {
        "type": "message_delete",
        **conv.message_delete(channel="#c", seq=seq, message="m1", num=7, deleted_by="alice"),
    }


MESSAGE = {"id": "m1", "num": 7, "content": "first", "seq": 1}


def test_reactions_fold_to_emoji_and_reactors_once_each():
    events = [
        _react(2, "👀", "healer"),
        _react(3, "👀", "healer"),
        _react(4, "✅", "healer"),
        _react(5, "👀", "head"),
        _react(6, "✅", "healer", "remove"),
    ]
    state = conv.fold(MESSAGE, events)
    assert state["reactions"] == {"👀": ["healer", "head"]}
    assert state["content"] == "first" and "edited_at" not in state
    assert MESSAGE == {"id": "m1", "num": 7, "content": "first", "seq": 1}  # not modified


def test_events_fold_in_seq_order_whatever_order_they_come_in():
    forward = [_edit(2, "second"), _edit(3, "third"), _react(4, "👀", "a")]
    assert conv.fold(MESSAGE, list(reversed(forward))) == conv.fold(MESSAGE, forward)
    state = conv.fold(MESSAGE, forward)
    assert (state["content"], state["edited_at"]) == ("third", "t3")


def test_a_delete_leaves_a_tombstone_that_a_later_edit_does_not_revive():
    state = conv.fold(MESSAGE, [_edit(2, "second"), _delete(3), _edit(4, "back?")])
    assert state["deleted"] is True and state["content"] == ""
    assert state["deleted_by"] == "alice"


def test_removing_a_reaction_nobody_made_changes_nothing():
    state = conv.fold(MESSAGE, [_react(2, "👀", "a", "remove")])
    assert state["reactions"] == {}


def test_fold_refuses_what_is_not_a_change_event():
    with pytest.raises(ValueError, match="not a change event"):
        conv.fold(MESSAGE, [{"type": "message", "seq": 2}])


def test_the_event_payloads_have_the_protocol_keys():
    assert set(_react(2, "👀", "a")) - {"type"} == {
        "channel",
        "seq",
        "message",
        "num",
        "emoji",
        "reactor",
        "action",
    }
    assert set(_edit(2, "x")) - {"type"} == {
        "channel",
        "seq",
        "message",
        "num",
        "content",
        "editor",
        "edited_at",
    }
    assert set(_delete(2)) - {"type"} == {"channel", "seq", "message", "num", "deleted_by"}
    assert conv.EVENT_TYPES == ("reaction_update", "message_edit", "message_delete")
