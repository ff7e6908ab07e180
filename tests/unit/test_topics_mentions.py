"""Topic grammar and mention extraction."""

from __future__ import annotations

from scitex_orochi.protocol import topics
from scitex_orochi.protocol.mentions import extract_mentions


def test_topics_are_terminated_so_prefixes_do_not_collide():
    gen, general = topics.deliver("ws", "#gen"), topics.deliver("ws", "#general")
    assert not general.startswith(gen)
    assert gen == b"dlv.ws.#gen|"


def test_families():
    assert topics.family(topics.deliver("w", "#c")) == topics.DELIVER
    assert topics.family(topics.ack("gw-1")) == topics.ACK
    assert topics.family(topics.inbound("w")) == topics.INBOUND
    assert topics.family(topics.SNAPSHOT) == topics.SNAPSHOT
    assert topics.family(topics.SYNC_REQUEST) == topics.CONTROL


def test_mentions_in_order_once_each():
    assert extract_mentions("@bob hi @alice and @bob again") == ["bob", "alice"]


def test_mentions_with_dashes_and_underscores():
    assert extract_mentions("ping @head-nas_2, ok") == ["head-nas_2"]


def test_email_addresses_are_not_mentions():
    assert extract_mentions("mail me at a@b.com or x.y@z") == []


def test_mentions_after_punctuation():
    assert extract_mentions('(@a) [@b] "@c" @d: @e.') == ["a", "b", "c", "d", "e"]


def test_non_string_content_has_no_mentions():
    assert extract_mentions(None) == [] and extract_mentions(42) == []
