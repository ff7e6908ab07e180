"""A stand-in for a browser push service on 127.0.0.1 that checks what it receives.

`FakePushService` answers `POST /push/<name>` like FCM or Mozilla's autopush would,
after checking: `Authorization: vapid t=<JWT>, k=<public key>` with the JWT's ES256
signature verified against `k` (and `aud` the service's origin, `exp` in the future,
a `sub`), `Content-Encoding: aes128gcm`, a `TTL`; the body decrypted with the
subscription's private key and auth secret (`http_ece`). `subscription(name)` makes a
browser-side key pair with `cryptography` and gives the PushSubscription JSON a browser
would. `gone_once(name)` makes the next push to it answer 410.
"""

from __future__ import annotations

import base64
import json
import os
import time
from dataclasses import dataclass, field
from typing import Any

import http_ece
from aiohttp import web
from aiohttp.test_utils import TestServer
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature


def b64d(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def b64e(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


@dataclass
class Browser:
    key: ec.EllipticCurvePrivateKey
    auth: bytes
    received: list[dict[str, Any]] = field(default_factory=list)


class FakePushService:
    def __init__(self) -> None:
        self.browsers: dict[str, Browser] = {}
        self.gone: set[str] = set()
        self.refusals: list[str] = []  # what failed a check, for the test to show
        self.vapid_keys: set[str] = set()
        app = web.Application()
        app.router.add_post("/push/{name}", self.push)
        self.server = TestServer(app, host="127.0.0.1")

    async def __aenter__(self) -> FakePushService:
        await self.server.start_server()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.server.close()

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.server.port}"

    def subscription(self, name: str) -> dict[str, Any]:
        key = ec.generate_private_key(ec.SECP256R1())
        auth = os.urandom(16)
        self.browsers[name] = Browser(key, auth)
        public = key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        return {
            "endpoint": f"{self.origin}/push/{name}",
            "expirationTime": None,
            "keys": {"p256dh": b64e(public), "auth": b64e(auth)},
        }

    def gone_once(self, name: str) -> None:
        self.gone.add(name)

    def refuse(self, why: str) -> web.Response:
        self.refusals.append(why)
        return web.Response(status=400, text=why)

    def check_vapid(self, header: str) -> str | None:
        scheme, _, rest = header.partition(" ")
        if scheme.lower() != "vapid":
            return f"Authorization scheme {scheme!r}, not vapid"
        parts = dict(p.strip().split("=", 1) for p in rest.split(","))
        token, k = parts.get("t", ""), parts.get("k", "")
        try:
            public = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), b64d(k))
            head, claims, sig = token.split(".")
            raw = b64d(sig)
            der = encode_dss_signature(
                int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big")
            )
            public.verify(der, f"{head}.{claims}".encode(), ec.ECDSA(hashes.SHA256()))
        except (ValueError, InvalidSignature) as exc:
            return f"VAPID JWT signature does not verify: {exc!r}"
        if json.loads(b64d(head)).get("alg") != "ES256":
            return "JWT alg is not ES256"
        body = json.loads(b64d(claims))
        if body.get("aud") != self.origin:
            return f"JWT aud {body.get('aud')!r} is not {self.origin!r}"
        if not (time.time() < body.get("exp", 0) <= time.time() + 24 * 3600):
            return "JWT exp not within 24 h"
        if not body.get("sub"):
            return "JWT has no sub"
        self.vapid_keys.add(k)
        return None

    async def push(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        browser = self.browsers.get(name)
        if browser is None:
            return web.Response(status=404)
        why = self.check_vapid(request.headers.get("Authorization", ""))
        if why:
            return self.refuse(why)
        if request.headers.get("Content-Encoding") != "aes128gcm":
            return self.refuse(f"Content-Encoding {request.headers.get('Content-Encoding')!r}")
        if "TTL" not in request.headers:
            return self.refuse("no TTL header")
        if name in self.gone:
            self.gone.discard(name)
            return web.Response(status=410, text="subscription expired")
        try:
            plain = http_ece.decrypt(
                await request.read(),
                private_key=browser.key,
                auth_secret=browser.auth,
                version="aes128gcm",
            )
        except Exception as exc:  # noqa: BLE001 - any failure is a refusal to report
            return self.refuse(f"payload does not decrypt: {exc!r}")
        browser.received.append(json.loads(plain))
        return web.Response(status=201)
