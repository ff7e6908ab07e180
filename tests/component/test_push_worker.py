"""Web push from the push worker (bridges/push) to a local push service that verifies
the VAPID JWT (ES256) and decrypts the aes128gcm payload with the browser's key: a
mention and a DM notify their people (never the sender), and a subscription the
service calls gone (410) is removed (through the persister, the one writer)."""

from __future__ import annotations

import json
import stat

import pytest

from bridges.push.service import PushWorker, recipients
from scitex_orochi.hub import store_push, webpush
from scitex_orochi.hub.store import Store

from support.fake_push import FakePushService
from support.util import eventually


def delivery(channel: str, sender: str, content: str, num: int, mentions=()) -> dict:
    frame = {
        "type": "message",
        "sender": sender,
        "id": f"m{num}",
        "ts": "t",
        "payload": {"channel": channel, "content": content},
    }
    return {
        "ws": "default",
        "channel": channel,
        "seq": num,
        "id": f"m{num}",
        "sender": sender,
        "mentions": list(mentions),
        "frame": json.dumps(frame),
        "num": num,
    }


def subscribe(store: Store, person: str, sub: dict) -> None:
    store_push.add(
        store.engine,
        store_push.PushSubscription(
            endpoint=sub["endpoint"],
            workspace_id="default",
            person=person,
            p256dh=sub["keys"]["p256dh"],
            auth=sub["keys"]["auth"],
        ),
    )


@pytest.fixture
def store(bed):
    s = Store(bed.cfg.db.url)
    yield s
    s.close()


def test_recipients_are_mentions_and_dm_humans_but_not_the_sender():
    assert recipients(delivery("#general", "bot", "hi @alice", 1, ["alice", "bot"])) == ["alice"]
    assert recipients(delivery("dm:agent:bot|human:alice", "bot", "psst", 2)) == ["alice"]
    assert recipients(delivery("dm:human:alice|human:bob", "alice", "hey", 3)) == ["bob"]
    assert recipients(delivery("#general", "bot", "no one", 4)) == []


async def test_mentions_and_dms_are_pushed_and_gone_subscriptions_removed(bed, store, persister):
    async with FakePushService() as service:
        worker = PushWorker(bed.cfg, store)
        await worker.peer.start()
        key_file = bed.cfg.data_dir / webpush.VAPID_FILE
        assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
        alice, alice_phone, bob = (service.subscription(n) for n in ("a1", "a2", "b1"))
        subscribe(store, "alice", alice)
        subscribe(store, "alice", alice_phone)
        subscribe(store, "bob", bob)

        long_text = "@alice " + "x" * 500
        assert await worker.notify(delivery("#general", "bob", long_text, 41, ["alice"])) == 2
        assert service.refusals == []
        got = service.browsers["a1"].received
        assert got == service.browsers["a2"].received and len(got) == 1
        assert got[0]["channel"] == "#general" and got[0]["sender"] == "bob"
        assert got[0]["url"] == "/m/41" and got[0]["text"].startswith("@alice xxx")
        assert len(got[0]["text"]) == webpush.TEXT_MAX_CHARS
        assert service.vapid_keys == {webpush.public_key_b64(worker.key)}
        assert service.browsers["b1"].received == []  # the sender is not notified

        assert await worker.notify(delivery("dm:agent:ci|human:bob", "ci", "build red", 42)) == 1
        assert service.browsers["b1"].received[0]["url"] == "/m/42"

        # Gone (410): removed, and not pushed again.
        service.gone_once("a2")
        assert await worker.notify(delivery("#general", "bob", "@alice again", 43, ["alice"])) == 1

        def only_alice_left() -> bool:
            left = store_push.of_people(store.engine, "default", ["alice"])
            return [s["endpoint"] for s in left] == [alice["endpoint"]]

        try:
            await eventually(only_alice_left, 10, "the gone subscription removed")
            # Counted once the persister's ack comes back, just after its commit is visible.
            await eventually(lambda: worker.removed == 1, 10, "the removal acked")
        finally:
            await worker.peer.stop()


def test_subscriptions_are_bounded_per_person(store):
    def sub(i: int, person: str = "carol") -> store_push.PushSubscription:
        return store_push.PushSubscription(
            endpoint=f"https://push.example/{i}",
            workspace_id="default",
            person=person,
            p256dh="k",
            auth="a",
        )

    for i in range(store_push.MAX_PER_PERSON):
        assert store_push.add(store.engine, sub(i)) == "added"
    with pytest.raises(store_push.TooManySubscriptions, match="remove one"):
        store_push.add(store.engine, sub(99))
    assert store_push.add(store.engine, sub(0)) == "updated"  # a known endpoint: no new row
    assert store_push.add(store.engine, sub(0, "dave")) == "moved"  # now dave's
    assert store_push.add(store.engine, sub(99)) == "added"  # carol had room again
    kept = store_push.of_people(store.engine, "default", ["carol"])
    assert len(kept) == store_push.MAX_PER_PERSON
