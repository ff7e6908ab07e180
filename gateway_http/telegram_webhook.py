"""`POST /webhook/telegram`: Telegram's webhook, answered 200 only once the message is durable.

Active when `SCITEX_OROCHI_TELEGRAM_WEBHOOK_SECRET` is set (404 otherwise). The
`X-Telegram-Bot-Api-Secret-Token` header must match it. The update is
forwarded over the bus to the Telegram bridge (`rpc.telegram|`, body
`{"update"}`), which fetches its files (the bot token lives only there), posts
the message through Ingest and replies after the persister's ack. Any failure
answers 5xx, so Telegram redelivers; the bridge's deterministic ids make the
redelivery a no-op.
"""

from __future__ import annotations

import hmac

from aiohttp import web

from scitex_orochi.hub.errors import RpcTimeout
from scitex_orochi.protocol.errors import ErrorCode

from .bodies import read_json_object
from .errors import ApiError
from .keys import BUS, CONFIG

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
WEBHOOK_RPC_TIMEOUT_S = 30.0
WEBHOOK_BODY_MAX_BYTES = 1024 * 1024  # an Update is a few KiB; files come by getFile


async def telegram_webhook(request: web.Request) -> web.Response:
    secret = request.app[CONFIG].telegram.webhook_secret
    if not secret:
        raise web.HTTPNotFound()  # not enabled: answered as the unknown route it then is
    given = request.headers.get(SECRET_HEADER, "")
    if not hmac.compare_digest(given.encode(), secret.encode()):
        raise ApiError(ErrorCode.AUTH_FAILED, "bad or missing secret token")
    update = await read_json_object(request, WEBHOOK_BODY_MAX_BYTES)
    if not isinstance(update.get("update_id"), int):
        raise ApiError(ErrorCode.INVALID_FIELD, "the body must be a JSON Update with an update_id")
    try:
        reply = await request.app[BUS].request(
            "telegram", {"update": update}, WEBHOOK_RPC_TIMEOUT_S
        )
    except RpcTimeout:  # not known to be stored in time: Telegram redelivers on a 503
        raise ApiError(ErrorCode.PERSIST_TIMEOUT, "the Telegram bridge did not answer") from None
    if reply.get("error"):
        raise ApiError(ErrorCode.TELEGRAM_BRIDGE_ERROR, "the update could not be stored")
    return web.json_response({"ok": True})


def setup(app: web.Application) -> None:
    """Add the webhook route (it asks the bridge through the HTTP gateway's bus peer)."""
    app.router.add_post("/webhook/telegram", telegram_webhook)
