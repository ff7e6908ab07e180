"""Uploads (multipart and base64) and /media against a real hub."""

from __future__ import annotations

import base64
import io
import re
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import pytest

from support.http_util import Api, wait_http_ready

PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)


@pytest.fixture(scope="module")
def media_hub(shared_hub):
    wait_http_ready(shared_hub)
    return shared_hub


@pytest.fixture
async def api(media_hub):
    client = Api(media_hub.http_url, media_hub.admin_token)
    yield client
    await client.close()


def _as_admin(hub) -> dict[str, str]:
    """/media needs a token of the file's workspace; the admin's reads every one."""
    return {"Authorization": f"Bearer {hub.admin_token}"}


async def _multipart(
    api: Api, content: bytes, filename: str, content_type: str, token: str | None = "default"
):
    form = aiohttp.FormData()  # a file-like field: aiohttp streams it (raw bytes over 1 MiB warn)
    form.add_field("file", io.BytesIO(content), filename=filename, content_type=content_type)
    return await api.request("POST", "/api/upload", data=form, token=token)


async def test_multipart_upload_is_stored_by_month_and_served(api, media_hub):
    status, body = await _multipart(api, PNG, "dot.png", "image/png")
    assert status == 201, body
    month = datetime.now(UTC).strftime("%Y-%m")
    assert re.fullmatch(rf"/media/{month}/[0-9a-f]{{32}}\.png", body["url"]), body["url"]
    assert body["mime_type"] == "image/png" and body["size"] == len(PNG)
    assert body["filename"] == "dot.png" and body["file_id"] in body["url"]
    stored = Path(media_hub.cfg.http.media_root) / month / body["url"].rsplit("/", 1)[1]
    assert stored.read_bytes() == PNG
    async with api.session.get(
        media_hub.http_url + body["url"], headers=_as_admin(media_hub)
    ) as resp:
        assert resp.status == 200 and resp.headers["Content-Type"] == "image/png"
        assert resp.headers["X-Content-Type-Options"] == "nosniff"
        assert await resp.read() == PNG


async def test_base64_upload_and_content_types(api, media_hub):
    data = "data:text/plain;base64," + base64.b64encode(b"hello orochi").decode()
    status, body = await api.post(
        "/api/upload-base64", {"data": data, "filename": "note.txt", "mime_type": "text/plain"}
    )
    assert status == 201 and body["size"] == 12 and body["url"].endswith(".txt")
    async with api.session.get(
        media_hub.http_url + body["url"], headers=_as_admin(media_hub)
    ) as resp:
        assert resp.headers["Content-Type"].startswith("text/plain")
        assert await resp.read() == b"hello orochi"
    # No extension in the name: the mime type picks one, so it is served right.
    status, body = await api.post(
        "/api/upload-base64",
        {
            "data": base64.b64encode(PNG).decode(),
            "filename": "screenshot",
            "mime_type": "image/png",
        },
    )
    assert status == 201 and body["url"].endswith(".png")
    # Active content is never rendered on the dashboard's origin.
    status, body = await _multipart(api, b"<script>alert(1)</script>", "x.html", "text/html")
    async with api.session.get(
        media_hub.http_url + body["url"], headers=_as_admin(media_hub)
    ) as resp:
        assert resp.headers["Content-Disposition"].startswith("attachment")
        assert resp.headers["Content-Security-Policy"] == "sandbox"


async def test_size_limit_is_413(api, media_hub):
    limit = media_hub.cfg.http.media_max_bytes  # the default, 20 MiB
    status, body = await _multipart(api, b"x" * (limit + 1), "big.bin", "application/octet-stream")
    assert status == 413 and body["status"] == 413
    big = base64.b64encode(b"x" * (limit + 1)).decode()
    status, body = await api.post("/api/upload-base64", {"data": big, "filename": "big.bin"})
    assert status == 413
    status, body = await _multipart(api, b"x" * limit, "exact.bin", "application/octet-stream")
    assert status == 201 and body["size"] == limit


async def test_names_cannot_escape_the_media_root(api, media_hub):
    status, body = await _multipart(api, b"secret?", "../../../../tmp/evil.txt", "text/plain")
    assert status == 201 and body["filename"] == "evil.txt"
    root = Path(media_hub.cfg.http.media_root).resolve()
    assert all(root in p.resolve().parents for p in root.rglob("*") if p.is_file())
    (root.parent / "outside.txt").write_text("not media")
    for path in (
        "/media/../outside.txt",
        "/media/2024-01/..%2F..%2Foutside.txt",
        "/media/..%2F/outside.txt",
        "/media/2024-01/" + "a" * 32 + ".txt",
        "/media/%2E%2E/outside.txt",
    ):
        async with api.session.get(media_hub.http_url + path, headers=_as_admin(media_hub)) as resp:
            assert resp.status == 404, path
            assert b"not media" not in await resp.read()


def _stored_files(media_hub) -> set[Path]:
    """Stored media, without their sidecars."""
    root = Path(media_hub.cfg.http.media_root)
    if not root.exists():
        return set()
    return {p for p in root.rglob("*") if p.is_file() and not p.name.endswith(".meta.json")}


async def test_uploads_need_the_admin_token(api, media_hub):
    before = _stored_files(media_hub)
    for token in (media_hub.default_token, None):
        status, body = await _multipart(api, PNG, "dot.png", "image/png", token=token)
        assert status == 401 and body["status"] == 401, token
        status, body = await api.post(
            "/api/upload-base64",
            {"data": base64.b64encode(PNG).decode(), "filename": "dot.png"},
            token=token,
        )
        assert status == 401 and body["status"] == 401, token
    status, body = await _multipart(api, PNG, "dot.png", "image/png", token=media_hub.default_token)
    assert "admin token" in body["error"]
    status, body = await api.post(
        "/api/upload-base64",
        {"data": base64.b64encode(PNG).decode(), "filename": "dot.png"},
        token=media_hub.default_token,
    )
    assert "admin token" in body["error"]
    assert _stored_files(media_hub) == before
    status, body = await api.post(
        "/api/upload-base64", {"data": base64.b64encode(PNG).decode(), "filename": "dot.png"}
    )
    assert status == 201
    assert len(_stored_files(media_hub) - before) == 1


async def test_upload_errors(api):
    status, body = await _multipart(api, PNG, "dot.png", "image/png", token=None)
    assert status == 401
    status, body = await api.post("/api/upload-base64", {"data": "***", "filename": "x"})
    assert status == 400 and body["field"] == "data"
    status, body = await api.post("/api/upload-base64", {"data": 5})
    assert status == 400 and body["field"] == "data"
    status, body = await api.post("/api/upload", {"file": "not multipart"})
    assert status == 400 and body["field"] == "file"
    form = aiohttp.FormData()
    form.add_field("other", b"x", filename="x.bin")
    status, body = await api.request("POST", "/api/upload", data=form)
    assert status == 400 and "'file'" in body["error"]
