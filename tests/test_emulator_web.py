"""The emulators' HTTP fronts on aiohttp (issue 16): what the hand-written server did and the
tests rely on — a body over the limit is read to its end and answered 413 (the client sees
the answer, not a reset), a ``drop`` fault closes the connection unanswered, keep-alive and
``Connection: close``, the peer address for the rate limit, gzip for the app's files — and
that garbage on the socket gets an answer while the server stays up."""

from __future__ import annotations

import asyncio
import gzip
import json
import random
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from kassa_appliance.testbeds.bitrix24.app import Emulator
from kassa_appliance.testbeds.bitrix24.limits import PRODUCER_ADDRESS
from kassa_appliance.testbeds.bitrix24.push import PushServer, PushSettings
from kassa_appliance.testbeds.webrequests.server import WebRequestsEmulator


@pytest.fixture
async def portal(tmp_path: Path) -> AsyncIterator[Emulator]:
    dist = tmp_path / "dist"
    dist.mkdir()
    (dist / "index.html").write_text("<!doctype html><title>app</title>" + "x" * 4000)
    async with Emulator(limits="test", app_dist=dist) as emulator:
        yield emulator


async def raw_exchange(port: int, data: bytes, *, read_timeout: float = 5.0) -> bytes:
    """Send ``data`` on one fresh connection; everything the server answers until it closes
    (or goes quiet for ``read_timeout``)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(data)
    await writer.drain()
    chunks: list[bytes] = []
    try:
        while chunk := await asyncio.wait_for(reader.read(65536), read_timeout):
            chunks.append(chunk)
    except (TimeoutError, ConnectionError):
        pass
    writer.close()
    return b"".join(chunks)


async def test_a_body_over_the_limit_is_drained_then_answered_413(portal: Emulator) -> None:
    portal.max_body_bytes = 64 * 1024
    body = b"x" * (3 * 1024 * 1024)  # far past the limit and past any socket buffer
    async with httpx.AsyncClient(timeout=10) as http:
        answer = await http.post(f"{portal.url}/rest/profile", content=body)
        assert answer.status_code == 413
        assert b"413 Request Entity Too Large" in answer.content
        assert answer.headers["connection"].lower() == "close"
        # under the limit the same route is served again
        small = await http.post(f"{portal.url}/rest/profile", json={})
        assert small.status_code == 401


async def test_a_chunked_body_over_the_limit_is_refused_too(portal: Emulator) -> None:
    portal.max_body_bytes = 1000

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(10):
            yield b"y" * 500

    async with httpx.AsyncClient(timeout=10) as http:
        answer = await http.post(f"{portal.url}/rest/profile", content=chunks())
    assert answer.status_code == 413


async def test_a_drop_fault_closes_the_connection_without_an_answer(portal: Emulator) -> None:
    portal.faults.add("drop", count=1, methods=["profile"])
    async with httpx.AsyncClient(timeout=10) as http:
        with pytest.raises(httpx.TransportError):
            await http.post(f"{portal.url}/rest/profile", json={})
        after = await http.post(f"{portal.url}/rest/profile", json={})
    assert after.status_code == 401  # the next request is answered normally
    assert portal.faults.fired["drop"] == 1


async def test_keep_alive_serves_several_requests_on_one_connection(portal: Emulator) -> None:
    one = b"GET /_portal/state HTTP/1.1\r\nHost: x\r\n\r\n"
    last = b"GET /_portal/state HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    answer = await raw_exchange(portal.port, one + one + last)
    assert answer.count(b"HTTP/1.1 200 OK") == 3  # all three on one connection, then closed


async def test_the_rate_limit_is_keyed_by_the_peer_address(portal: Emulator) -> None:
    hook = portal.webhook_url()
    transport = httpx.AsyncHTTPTransport(local_address=PRODUCER_ADDRESS)
    async with httpx.AsyncClient(timeout=10, transport=transport) as http:
        assert (await http.post(hook + "profile", json={})).status_code == 200
    async with httpx.AsyncClient(timeout=10) as http:
        assert (await http.post(hook + "profile", json={})).status_code == 200
    levels = portal.limits.snapshot()["levels"]
    assert set(levels) == {PRODUCER_ADDRESS, "127.0.0.1"}


async def test_app_files_are_gzipped_for_a_browser_that_takes_it(portal: Emulator) -> None:
    url = f"{portal.url}/_app/index.html"
    async with httpx.AsyncClient(timeout=10) as http:
        packed = await http.get(url, headers={"Accept-Encoding": "gzip"})
        plain = await http.get(url, headers={"Accept-Encoding": "identity"})
    assert packed.headers["content-encoding"] == "gzip"
    assert int(packed.headers["content-length"]) < len(plain.content)
    assert packed.content == plain.content  # httpx unpacked it
    raw = await raw_exchange(
        portal.port,
        b"GET /_app/index.html HTTP/1.1\r\nHost: x\r\nAccept-Encoding: gzip\r\n"
        b"Connection: close\r\n\r\n",
    )
    assert gzip.decompress(raw.split(b"\r\n\r\n", 1)[1]) == plain.content


async def test_garbage_on_the_socket_gets_an_answer_and_the_server_stays_up(
    portal: Emulator,
) -> None:
    rng = random.Random(16)
    shapes = [
        b"\x00\xff garbage\r\n\r\n",
        b"GET\r\n\r\n",
        b"POST /rest/profile HTTP/1.1\r\nContent-Length: nope\r\n\r\n",
        b"GET /" + b"a" * 100_000 + b" HTTP/1.1\r\n\r\n",
        b"POST /rest/batch HTTP/1.1\r\nContent-Type: application/json\r\n"
        b"Content-Length: 5\r\nConnection: close\r\n\r\n{[}{]",
    ]
    shapes += [bytes(rng.randrange(256) for _ in range(rng.randrange(1, 300))) for _ in range(40)]
    for data in shapes:
        answer = await raw_exchange(portal.port, data, read_timeout=2.0)
        assert answer == b"" or answer.startswith((b"HTTP/1.1 ", b"HTTP/1.0 ")), answer[:80]
    async with httpx.AsyncClient(timeout=10) as http:
        assert (await http.get(f"{portal.url}/_portal/state")).status_code == 200


async def test_the_push_publish_endpoint_is_served_by_aiohttp() -> None:
    push = PushServer(PushSettings(max_payload=100))
    await push.start("127.0.0.1", 0)
    try:
        async with httpx.AsyncClient(timeout=10) as http:
            stats = await http.get(push.publish_url, params={"CHANNEL_ID": "0" * 32})
            assert stats.status_code == 200
            assert json.loads(stats.content) == {"infos": [{"channel": "0" * 32, "subscribers": 0}]}
            too_big = await http.post(
                push.publish_url, params={"CHANNEL_ID": "0" * 32}, content="x" * 101
            )
            assert too_big.status_code == 413
            elsewhere = await http.get(push.publish_url + "nope", params={"CHANNEL_ID": "0" * 32})
            assert elsewhere.status_code == 404
    finally:
        await push.stop()


def test_web_requests_emulator_drops_after_the_post_and_keeps_serving(tmp_path: Path) -> None:
    with WebRequestsEmulator(tmp_path / "wr") as emulator:
        emulator.faults.set("drop_after_post", 1)
        with httpx.Client(base_url=emulator.url, timeout=10) as http:
            task = {"uuid": "w-1", "request": {"type": "getDeviceStatus"}}
            with pytest.raises(httpx.TransportError):
                http.post("/api/v2/requests", json=task)
            again = http.post("/api/v2/requests", json=task)  # it was stored before the drop
            assert again.status_code == 409
            assert http.get("/api/v2/requests/w-1").status_code == 200
            info = http.get("/api/v2/serverInfo")
            assert info.status_code == 200 and "serverVersion" in info.json()
