"""The media store (gateway_http/media.py): files and sidecars written off the event loop,
uploads over the limit leave nothing behind, and only stored names are ever found."""

from __future__ import annotations

import threading

import pytest

from gateway_http.errors import ApiError
from gateway_http.media import MediaStore
from scitex_orochi.hub import media_meta
from scitex_orochi.protocol.errors import ErrorCode


def chunks(*parts: bytes):
    queue = list(parts)

    async def read_chunk(size: int) -> bytes:
        return queue.pop(0) if queue else b""

    return read_chunk


def on_threads(monkeypatch) -> list[int]:
    """Record the thread of every file system write the store makes."""
    seen: list[int] = []
    for name in ("write_sidecar", "write_atomic"):
        real = getattr(media_meta, name)

        def spy(*args, _real=real, **kwargs):
            seen.append(threading.get_ident())
            return _real(*args, **kwargs)

        monkeypatch.setattr(media_meta, name, spy)
    real_new_path = MediaStore.new_path

    def new_path(self, ext):
        seen.append(threading.get_ident())
        return real_new_path(self, ext)

    monkeypatch.setattr(MediaStore, "new_path", new_path)
    return seen


async def test_a_streamed_upload_is_stored_with_its_sidecar_off_the_loop(tmp_path, monkeypatch):
    seen = on_threads(monkeypatch)
    store = MediaStore(tmp_path, max_size=100)
    stored = await store.save_stream(
        chunks(b"hello ", b"world"),
        ".txt",
        workspace="ws1",
        mime_type="text/plain",
        filename="a.txt",
    )
    month, name = stored.url.split("/")[2:]
    found = await store.find(month, name)
    assert found is not None and found[0].read_bytes() == b"hello world"
    assert found[1]["workspace"] == "ws1" and found[1]["size"] == stored.size == 11
    assert not list(found[0].parent.glob(".*.part"))
    assert seen and threading.get_ident() not in seen


async def test_base64_bytes_are_stored_off_the_loop(tmp_path, monkeypatch):
    seen = on_threads(monkeypatch)
    store = MediaStore(tmp_path, max_size=100)
    stored = await store.save_bytes(
        b"\x89PNG", ".png", workspace="ws2", mime_type="image/png", filename="p.png"
    )
    found = await store.find(*stored.url.split("/")[2:])
    assert found is not None and found[1]["workspace"] == "ws2"
    assert seen and threading.get_ident() not in seen


async def test_an_upload_over_the_limit_leaves_nothing_behind(tmp_path):
    store = MediaStore(tmp_path, max_size=8)
    with pytest.raises(ApiError) as exc:
        await store.save_stream(
            chunks(b"12345", b"67890"),
            ".bin",
            workspace="w",
            mime_type="application/octet-stream",
            filename="x",
        )
    assert exc.value.code is ErrorCode.TOO_LARGE and exc.value.http_status == 413
    assert exc.value.body["limit"] == 8 and exc.value.close_connection
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []


async def test_only_stored_names_are_found(tmp_path):
    store = MediaStore(tmp_path, max_size=100)
    stored = await store.save_bytes(
        b"x", ".txt", workspace="w", mime_type="text/plain", filename="x.txt"
    )
    month, name = stored.url.split("/")[2:]
    assert await store.find(month, name) is not None
    assert await store.find(month, name + media_meta.SIDECAR_SUFFIX) is None
    assert await store.find("..", name) is None
    assert await store.find(month, "0" * 32 + ".txt") is None
