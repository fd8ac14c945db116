"""The push server emulator seen by a bare WebSocket/HTTP client on loopback."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from kassa_appliance.bitrix.pull_frames import parse_text_frame
from kassa_appliance.testbeds.bitrix24.push import PushServer, PushSettings

GUARD = 10.0


@asynccontextmanager
async def push_server(settings: PushSettings | None = None) -> AsyncIterator[PushServer]:
    push = PushServer(settings or PushSettings(buffer_delay=(0.05, 0.05), ping_interval=None))
    await push.start("127.0.0.1", 0)
    try:
        yield push
    finally:
        await push.stop()


def run(scenario: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(asyncio.wait_for(scenario(), 60))


def channel_url(push: PushServer, config: dict[str, Any], **extra: str) -> str:
    ids = [config["channels"]["private"]["id"], config["channels"]["shared"]["id"]]
    return f"{push.websocket_url}?{urlencode({'CHANNEL_ID': '/'.join(ids), **extra})}"


async def until_registered(push: PushServer) -> None:
    """Wait until the server has registered a client's connection (publishing before that
    would reach nobody)."""
    while push.connection_count == 0:
        await asyncio.sleep(0.01)


async def expect_http_status(url: str) -> int:
    with pytest.raises(InvalidStatus) as refused:
        async with connect(url, open_timeout=GUARD):
            pass
    return refused.value.response.status_code


def test_bad_unsigned_or_missing_channel_ids_get_http_400() -> None:
    async def scenario() -> None:
        async with push_server() as push:
            config = push.channel_config(1)
            shared = config["channels"]["shared"]["id"]
            forged = shared[:-1] + ("0" if shared[-1] != "0" else "1")
            base = push.websocket_url
            assert await expect_http_status(f"{base}?CHANNEL_ID={forged}") == 400
            assert await expect_http_status(f"{base}?CHANNEL_ID={shared.split('.')[0]}") == 400
            assert await expect_http_status(base) == 400
            assert await expect_http_status(f"{base}?CHANNEL_ID=xyz") == 400
            wrong_path = push.websocket_url.replace("/bitrix/subws/", "/other/")
            assert await expect_http_status(f"{wrong_path}?CHANNEL_ID={shared}") == 404
            assert push.stats.rejected_400 == 4

    run(scenario)


def test_records_published_within_the_delay_share_one_frame() -> None:
    async def scenario() -> None:
        async with push_server() as push:
            config = push.channel_config(1)
            async with connect(channel_url(push, config)) as ws:
                await until_registered(push)
                mids = [
                    await push.publish_app_event("kassa.job", {"job": str(n)}) for n in range(3)
                ]
                frame = await asyncio.wait_for(ws.recv(), GUARD)
            assert isinstance(frame, str)
            assert frame.count("#!NGINXNMS!#") == 3
            records = parse_text_frame(frame)
            assert [r.mid for r in records] == mids
            assert all(len(mid) == 26 and mid.isdigit() for mid in mids)
            assert mids == sorted(mids)
            raw = json.loads(frame[12 : frame.index("#!NGINXNME!#")])
            assert set(raw) == {"id", "mid", "channel", "tag", "time", "text"}
            assert raw["id"] == int(mids[0][10:])

    run(scenario)


def test_mid_replay_returns_stored_messages_after_the_mid_only() -> None:
    async def scenario() -> None:
        async with push_server() as push:
            config = push.channel_config(1)
            shared = config["channels"]["shared"]["id"]
            first = await push.publish([shared], {"module_id": "a", "command": "one"})
            await push.publish([shared], {"module_id": "a", "command": "two"})
            await push.publish([shared], {"module_id": "a", "command": "gone"}, expiry=0)
            await push.publish_app_event("kassa.job", {}, user_ids=[2])  # someone else's
            async with connect(channel_url(push, config, mid=first)) as ws:
                frame = await asyncio.wait_for(ws.recv(), GUARD)
            assert isinstance(frame, str)
            commands = [r.message.command for r in parse_text_frame(frame) if r.message]
            assert commands == ["two"]

    run(scenario)


def test_http_publish_endpoint_stats_and_limits() -> None:
    settings = PushSettings(buffer_delay=(0.0, 0.0), ping_interval=None, max_payload=1000)

    async def scenario() -> None:
        async with push_server(settings) as push:
            config = push.channel_config(1)
            bare = config["channels"]["shared"]["id"].split(".")[0]
            async with connect(channel_url(push, config)) as ws, httpx.AsyncClient() as http:
                await until_registered(push)
                body = '{"module_id":"application","command":"kassa.job","params":{"job":"H"}}'
                answer = await http.post(
                    push.publish_url,
                    params={"CHANNEL_ID": bare},
                    content=body,
                    headers={"Message-Expiry": "120"},
                )
                assert (answer.status_code, answer.text) == (200, "")
                (delivered,) = parse_text_frame(str(await asyncio.wait_for(ws.recv(), GUARD)))
                assert delivered.message is not None and delivered.message.params == {"job": "H"}
                stats = await http.get(push.publish_url, params={"CHANNEL_ID": bare})
                assert stats.json() == {"infos": [{"channel": bare, "subscribers": 1}]}
                assert (await http.post(push.publish_url, content=body)).status_code == 400
                too_big = await http.post(
                    push.publish_url, params={"CHANNEL_ID": bare}, content="x" * 1001
                )
                assert too_big.status_code == 413

    run(scenario)


def test_restart_refuses_connections_while_down_then_accepts_on_the_same_port() -> None:
    async def scenario() -> None:
        async with push_server() as push:
            config = push.channel_config(1)
            url = channel_url(push, config)
            async with connect(url) as ws:
                restart = asyncio.create_task(push.restart(down_for=0.5))
                with pytest.raises(ConnectionClosed) as closed:
                    await asyncio.wait_for(ws.recv(), GUARD)
                assert closed.value.rcvd is not None and closed.value.rcvd.code == 1001
            with pytest.raises(OSError):
                async with connect(url, open_timeout=GUARD):
                    pass
            await restart
            async with connect(url) as ws:
                assert ws.protocol.state.name == "OPEN"

    run(scenario)


def test_protobuf_frames_on_binary_mode() -> None:
    async def scenario() -> None:
        async with push_server() as push:
            config = push.channel_config(1)
            async with connect(channel_url(push, config, binaryMode="true")) as ws:
                await until_registered(push)
                mid = await push.publish_app_event("kassa.job", {"job": "P"})
                frame = await asyncio.wait_for(ws.recv(), GUARD)
            assert isinstance(frame, bytes)
            assert bytes.fromhex(mid) in frame  # OutgoingMessage.id: the mid, hex-decoded
            assert b'"command": "kassa.job"' in frame

    run(scenario)


def test_expired_channel_is_renewed_and_the_old_one_told_channel_expire() -> None:
    async def scenario() -> None:
        async with push_server() as push:
            config = push.channel_config(1)
            async with connect(channel_url(push, config)) as ws:
                await until_registered(push)
                push.renew_channels()
                frame = await asyncio.wait_for(ws.recv(), GUARD)
            records = [r.message for r in parse_text_frame(str(frame)) if r.message]
            by_type = {m.params["channel"]["type"]: m.params for m in records}
            assert {m.module_id for m in records} == {"pull"}
            assert by_type["shared"]["action"] == "reconnect"
            assert by_type["shared"]["new_channel"]["type"] == "shared"
            assert by_type["private"]["action"] == "get_config"
            renewed = push.channel_config(1)
            assert renewed["channels"]["shared"]["id"] == by_type["shared"]["new_channel"]["id"]
            async with connect(channel_url(push, config)) as stale:
                with pytest.raises(ConnectionClosed) as closed:
                    await asyncio.wait_for(stale.recv(), GUARD)
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 4010

    run(scenario)
