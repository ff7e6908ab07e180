"""Web push through a real supervised hub with SCITEX_OROCHI_PUSH_ENABLED: the push worker
runs under supervisord; a subscription POSTed over REST for a person (written by the
persister) receives, from the worker, a VAPID-signed aes128gcm push that a local push
service verifies and decrypts, for a message that mentions the person and for a DM;
a subscription the push service calls gone is removed."""

from __future__ import annotations

from scitex_orochi.hub import webpush

from support.agent import RawAgent
from support.fake_push import FakePushService
from support.http_util import Api, wait_http_ready
from support.util import eventually

PUSH_ON = {"SCITEX_OROCHI_PUSH_ENABLED": "true"}


async def test_a_mention_and_a_dm_reach_the_subscribed_person(hub_factory):
    hub = hub_factory(extra_env=PUSH_ON)
    assert hub.status()["push"][0] == "RUNNING"
    wait_http_ready(hub)
    admin = Api(hub.http_url, hub.admin_token)
    try:
        async with FakePushService() as service:
            status, body = await admin.get("/api/push/vapid-public-key")
            assert status == 200, body
            key = webpush.load_or_create(hub.cfg.data_dir)  # the key prepare() made at start
            assert body["public_key"] == webpush.public_key_b64(key)

            sub = service.subscription("alice-phone")
            status, body = await admin.post("/api/push/subscriptions", {**sub, "person": "alice"})
            assert status == 201 and body["outcome"] == "added", body

            status, posted = await admin.post(
                "/api/messages",
                {"sender": "bob", "payload": {"channel": "#ops", "content": "@alice deploy?"}},
            )
            assert status == 201, posted
            received = service.browsers["alice-phone"].received
            await eventually(lambda: received, 20, "the push of the mention")
            assert service.refusals == []
            assert received[0] == {
                "channel": "#ops",
                "sender": "bob",
                "text": "@alice deploy?",
                "url": f"/m/{posted['num']}",
            }
            assert service.vapid_keys == {webpush.public_key_b64(key)}

            channel = "dm:agent:ci-bot|human:alice"  # an agent DMs the person
            agent = await RawAgent.connect(hub.agent_url(), "ci-bot", [])
            try:
                ack = await agent.post(channel, "build red")
                assert ack["type"] == "ack" and ack["payload"].get("seq"), ack
            finally:
                await agent.close()
            await eventually(lambda: len(received) == 2, 20, "the push of the DM")
            assert received[1]["channel"] == channel and received[1]["sender"] == "ci-bot"
            assert received[1]["text"] == "build red"

            service.gone_once("alice-phone")
            status, posted = await admin.post(
                "/api/messages",
                {"sender": "bob", "payload": {"channel": "#ops", "content": "@alice again"}},
            )
            assert status == 201, posted

            async def removed() -> bool:
                _s, listed = await admin.get("/api/push/subscriptions", params={"person": "alice"})
                return listed["subscriptions"] == []

            await eventually(removed, 20, "the gone subscription removed")
            assert len(received) == 2
    finally:
        await admin.close()
