"""PullClient against the push server emulator on real loopback sockets."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from kassa_appliance.bitrix.pull import (
    BackoffPolicy,
    PullClient,
    PullMessage,
    PullTiming,
    doorbell,
)
from kassa_appliance.testbeds.bitrix24.push import PushServer, PushSettings

USER_ID = 7
FAST_BACKOFF = BackoffPolicy(steps=((1000, 0.02),), ceiling=0.02, jitter=0.0)
FAST_TIMING = PullTiming(
    config_check_interval=0.1,
    stable_after=0.3,
    open_timeout=3.0,
    ping_interval=None,
    wrong_channel_delay=(0.0, 0.0),
    server_restart_delay=(0.0, 0.0),
)
GUARD = 10.0  # seconds a wait may take before the test fails (a hang guard, not a timing check)


@dataclass
class Harness:
    push: PushServer
    client: PullClient
    received: asyncio.Queue[PullMessage]
    connects: asyncio.Queue[int]
    configs: list[dict[str, Any]] = field(default_factory=list)

    async def message(self) -> PullMessage:
        return await asyncio.wait_for(self.received.get(), GUARD)

    async def connected(self) -> int:
        """Wait for the next (re)connect; returns the client's connection count."""
        return await asyncio.wait_for(self.connects.get(), GUARD)

    def no_more_messages(self) -> list[PullMessage]:
        extra: list[PullMessage] = []
        while not self.received.empty():
            extra.append(self.received.get_nowait())
        return extra


@asynccontextmanager
async def running_client(
    settings: PushSettings | None = None,
    *,
    fetch: Callable[[PushServer, list[dict[str, Any]]], Any] | None = None,
    timing: PullTiming = FAST_TIMING,
) -> AsyncIterator[Harness]:
    push = PushServer(settings or PushSettings(buffer_delay=(0.01, 0.02), ping_interval=None))
    await push.start("127.0.0.1", 0)
    received: asyncio.Queue[PullMessage] = asyncio.Queue()
    connects: asyncio.Queue[int] = asyncio.Queue()
    configs: list[dict[str, Any]] = []

    def default_fetch() -> dict[str, Any]:
        answer = push.channel_config(USER_ID)
        configs.append(answer)
        return answer

    async def on_message(message: PullMessage) -> None:
        await received.put(message)

    client: PullClient

    async def on_connect() -> None:
        await connects.put(client.status.connections)

    fetcher: Callable[[], Any] = (lambda: fetch(push, configs)) if fetch else default_fetch
    client = PullClient(
        fetcher,
        on_message,
        on_connect=on_connect,
        backoff=FAST_BACKOFF,
        timing=timing,
    )
    task = asyncio.create_task(client.run())
    try:
        yield Harness(push, client, received, connects, configs)
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await push.stop()


def run(scenario: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(asyncio.wait_for(scenario(), 60))


def test_first_connect_then_doorbell_arrives_as_application_event() -> None:
    async def scenario() -> None:
        async with running_client() as h:
            assert await h.connected() == 1
            assert h.client.status.connected
            mid = await h.push.publish_app_event("kassa.job", {"job": "J-1", "kassa": "kassa-1"})
            message = await h.message()
            assert message.module_id == "application"
            assert message.command == "kassa.job"
            assert doorbell(message) == ("J-1", "kassa-1")
            assert message.mid == mid and len(mid) == 26
            assert message.extra["revision_web"] == 19
            assert h.client.status.last_mid == mid

    run(scenario)


def test_rest_backend_protocol_delivers_to_the_users_private_channel() -> None:
    async def scenario() -> None:
        async with running_client() as h:
            await h.connected()
            await h.push.publish_application_event(
                "app", [USER_ID], {"module_id": "Application", "command": "kassa.job",
                                   "params": {"job": "J-2", "kassa": "k"}}
            )  # fmt: skip
            await h.push.publish_application_event(
                "app", [USER_ID + 1], {"command": "kassa.job", "params": {"job": "other"}}
            )
            await h.push.publish_application_event(
                "app", None, {"command": "kassa.job", "params": {"job": "J-3", "kassa": "k"}}
            )
            assert doorbell(await h.message()) == ("J-2", "k")
            assert doorbell(await h.message()) == ("J-3", "k")  # not the other user's

    run(scenario)


def test_several_records_in_one_frame_are_all_delivered_in_order() -> None:
    settings = PushSettings(buffer_delay=(0.2, 0.2), ping_interval=None)

    async def scenario() -> None:
        async with running_client(settings) as h:
            await h.connected()
            frames_before = h.push.stats.frames_sent
            for n in range(4):
                await h.push.publish_app_event("kassa.job", {"job": f"J-{n}", "kassa": "k"})
            jobs = [doorbell(await h.message()) for _ in range(4)]
            assert jobs == [(f"J-{n}", "k") for n in range(4)]
            assert h.push.stats.frames_sent == frames_before + 1
            assert h.push.stats.records_sent == 4

    run(scenario)


def test_channel_ttl_expiry_makes_the_client_fetch_a_fresh_config() -> None:
    settings = PushSettings(channel_ttl=1.0, buffer_delay=(0.0, 0.0), ping_interval=None)

    async def scenario() -> None:
        async with running_client(settings) as h:
            await h.connected()
            first = h.configs[0]["channels"]["shared"]["id"]
            assert await h.connected() == 2  # reconnected after the periodic check saw `end`
            assert h.client.status.config_fetches >= 2
            renewed = h.configs[-1]["channels"]["shared"]["id"]
            assert renewed != first
            await h.push.publish_app_event("kassa.job", {"job": "after-expiry", "kassa": "k"})
            assert doorbell(await h.message()) == ("after-expiry", "k")

    run(scenario)


def test_channel_expire_command_reconnects_with_the_new_channel() -> None:
    async def scenario() -> None:
        async with running_client() as h:
            await h.connected()
            h.push.renew_channels()  # channel_expire: shared with new_channel, private get_config
            await h.connected()
            assert h.client.status.config_fetches == 2
            await h.push.publish_app_event("kassa.job", {"job": "J-new", "kassa": "k"})
            message = await h.message()
            assert doorbell(message) == ("J-new", "k")  # system commands never reach on_message

    run(scenario)


def test_close_4010_makes_the_client_fetch_the_config_again() -> None:
    async def scenario() -> None:
        async with running_client() as h:
            await h.connected()
            await h.push.close_connections(4010, "Wrong Channel Id.")
            await h.connected()
            assert h.client.status.config_fetches == 2
            assert "4010" in (h.client.status.last_error or "")

    run(scenario)


def test_revoked_channel_is_closed_4010_and_the_client_recovers() -> None:
    stale: dict[str, Any] = {}

    def fetch(push: PushServer, configs: list[dict[str, Any]]) -> dict[str, Any]:
        if not stale:  # first answer: a config whose channels the portal then replaces
            stale.update(push.channel_config(USER_ID))
            push.renew_channels()
            configs.append(stale)
            return stale
        configs.append(push.channel_config(USER_ID))
        return configs[-1]

    async def scenario() -> None:
        async with running_client(fetch=fetch) as h:
            await h.connected()  # accepted, then closed with 4010
            assert await h.connected() == 2
            assert h.push.stats.closed_4010 == 1
            assert len(h.configs) == 2
            await h.push.publish_app_event("kassa.job", {"job": "J-1", "kassa": "k"})
            assert doorbell(await h.message()) == ("J-1", "k")

    run(scenario)


def test_http_400_on_a_bad_signature_leads_to_a_config_refetch() -> None:
    def fetch(push: PushServer, configs: list[dict[str, Any]]) -> dict[str, Any]:
        answer = push.channel_config(USER_ID)
        if not configs:  # the first answer carries a forged signature
            shared = answer["channels"]["shared"]
            shared["id"] = shared["id"][:-4] + "0000"
        configs.append(answer)
        return answer

    async def scenario() -> None:
        async with running_client(fetch=fetch) as h:
            await h.connected()
            assert h.push.stats.rejected_400 == 1
            assert h.client.status.config_fetches == 2
            assert h.client.status.connections == 1

    run(scenario)


def test_async_config_fetcher_and_a_failing_one_are_handled() -> None:
    calls = {"n": 0}

    async def fetch_async(push: PushServer) -> dict[str, Any]:
        calls["n"] += 1
        if calls["n"] == 1:
            raise ConnectionError("portal unreachable")
        return push.channel_config(USER_ID)

    async def scenario() -> None:
        async with running_client(fetch=lambda push, _: fetch_async(push)) as h:
            await h.connected()
            assert calls["n"] == 2

    run(scenario)


def test_server_restart_resumes_by_mid_without_duplicates() -> None:
    async def scenario() -> None:
        async with running_client() as h:
            await h.connected()
            first = await h.push.publish_app_event("kassa.job", {"job": "J-1", "kassa": "k"})
            assert (await h.message()).mid == first
            restart = asyncio.create_task(h.push.restart(down_for=0.5))
            await asyncio.sleep(0.1)  # the listener is down: publish while the client is away
            await h.push.publish_app_event("kassa.job", {"job": "J-2", "kassa": "k"})
            await h.push.publish_app_event("kassa.job", {"job": "J-3", "kassa": "k"})
            await restart
            await h.connected()
            replayed = [doorbell(await h.message()), doorbell(await h.message())]
            assert replayed == [("J-2", "k"), ("J-3", "k")]
            # The same records again (a server replaying too much) must not be delivered.
            last = h.client.status.last_mid
            assert last is not None
            record = {"id": 1, "mid": last, "channel": "-", "text": {
                "module_id": "application", "command": "kassa.job",
                "params": {"job": "J-3", "kassa": "k"}}}  # fmt: skip
            again = f"#!NGINXNMS!#{json.dumps(record)}#!NGINXNME!#"
            await h.push.send_raw_frame(again)
            await h.push.publish_app_event("kassa.job", {"job": "J-4", "kassa": "k"})
            assert doorbell(await h.message()) == ("J-4", "k")
            assert h.no_more_messages() == []

    run(scenario)


def test_dropped_tcp_connection_reconnects_and_replays() -> None:
    async def scenario() -> None:
        async with running_client() as h:
            await h.connected()
            await h.push.drop_connections()
            await h.connected()
            await h.push.publish_app_event("kassa.job", {"job": "J-1", "kassa": "k"})
            assert doorbell(await h.message()) == ("J-1", "k")
            assert "1006" in (h.client.status.last_error or "")

    run(scenario)


def test_config_expire_and_server_restart_commands_refetch_the_config() -> None:
    async def scenario() -> None:
        async with running_client() as h:
            await h.connected()
            await h.push.send_config_expire()
            await h.connected()
            assert h.client.status.config_fetches == 2
            await h.push.send_server_restart()
            await h.connected()
            assert h.client.status.config_fetches == 3
            assert h.no_more_messages() == []

    run(scenario)


def test_malformed_payloads_are_logged_and_the_connection_kept(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def scenario() -> None:
        async with running_client() as h:
            await h.connected()
            shared = h.configs[0]["channels"]["shared"]["id"]
            async with httpx.AsyncClient() as http:
                answer = await http.post(
                    h.push.publish_url,
                    params={"CHANNEL_ID": shared.split(".")[0]},
                    content=b'{"module_id": "application", "command": broken',
                    headers={"Message-Expiry": "60"},
                )
                assert answer.status_code == 200
            await h.push.publish([shared], {"module_id": "application"})  # no command
            await h.push.publish([shared], {"module_id": "x", "command": "y", "params": 5})
            await h.push.publish([shared], "[1, 2]")
            await h.push.send_raw_frame("no records in this frame")
            await h.push.send_raw_frame(b"\x00\x01binary")
            await h.push.publish_app_event("kassa.job", {"job": "J-ok", "kassa": "k"})
            assert doorbell(await h.message()) == ("J-ok", "k")
            assert h.no_more_messages() == []
            assert h.client.status.connections == 1
            assert h.client.status.connected

    with caplog.at_level(logging.WARNING, logger="kassa_appliance.bitrix.pull"):
        run(scenario)
    problems = [r.getMessage() for r in caplog.records if "malformed" in r.getMessage()]
    assert len(problems) == 5, problems
    assert any("no command" in p for p in problems)
    assert any("no NGINX records" in p for p in problems)


def test_a_failing_message_handler_does_not_break_the_connection() -> None:
    async def scenario() -> None:
        push = PushServer(PushSettings(buffer_delay=(0.0, 0.0), ping_interval=None))
        await push.start()
        seen: list[str] = []
        got_second = asyncio.Event()

        async def on_message(message: PullMessage) -> None:
            seen.append(message.params["job"])
            if message.params["job"] == "boom":
                raise RuntimeError("handler bug")
            got_second.set()

        client = PullClient(
            lambda: push.channel_config(USER_ID), on_message, backoff=FAST_BACKOFF,
            timing=FAST_TIMING,
        )  # fmt: skip
        task = asyncio.create_task(client.run())
        while not client.status.connected:
            await asyncio.sleep(0.01)
        await push.publish_app_event("kassa.job", {"job": "boom"})
        await push.publish_app_event("kassa.job", {"job": "fine"})
        await asyncio.wait_for(got_second.wait(), GUARD)
        assert seen == ["boom", "fine"]
        assert client.status.connections == 1
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await push.stop()

    run(scenario)


def test_revision_mismatch_is_logged_not_fatal(caplog: pytest.LogCaptureFixture) -> None:
    async def scenario() -> None:
        async with running_client() as h:
            await h.connected()
            shared = h.configs[0]["channels"]["shared"]["id"]
            body = {
                "module_id": "application",
                "command": "kassa.job",
                "params": {"job": "J-r", "kassa": "k"},
                "extra": {"revision_web": 20},
            }
            await h.push.publish([shared], body)
            assert doorbell(await h.message()) == ("J-r", "k")
            assert h.client.status.connected

    with caplog.at_level(logging.WARNING, logger="kassa_appliance.bitrix.pull"):
        run(scenario)
    assert any("revision 20" in r.getMessage() for r in caplog.records)


def test_json_rpc_server_v5_pings_acks_and_delivery() -> None:
    settings = PushSettings(
        version=5, buffer_delay=(0.0, 0.0), ping_interval=None, jsonrpc_ping_interval=0.05
    )

    async def scenario() -> None:
        async with running_client(settings) as h:
            await h.connected()
            assert "jwt" in h.configs[0] and "private" not in h.configs[0]["channels"]
            await asyncio.sleep(0.3)  # several server pings must be answered with pong
            mid = await h.push.publish_app_event("kassa.job", {"job": "J-5", "kassa": "k"})
            assert doorbell(await h.message()) == ("J-5", "k")
            for _ in range(100):
                if mid in h.push.stats.acks:
                    break
                await asyncio.sleep(0.02)
            assert h.push.stats.acks == [mid]
            assert h.client.status.connections == 1

    run(scenario)


def test_json_rpc_client_reconnects_when_pings_stop() -> None:
    settings = PushSettings(
        version=5, buffer_delay=(0.0, 0.0), ping_interval=None, jsonrpc_ping_interval=3600
    )
    timing = dataclasses.replace(FAST_TIMING, jsonrpc_ping_timeout=0.2)

    async def scenario() -> None:
        async with running_client(settings, timing=timing) as h:
            await h.connected()
            await h.connected()  # the first ping came, then silence: 3005 and a new connection
            assert "no ping" in (h.client.status.last_error or "")

    run(scenario)


def test_published_doorbell_body_is_what_event_add_documents() -> None:
    async def scenario() -> None:
        push = PushServer(PushSettings(buffer_delay=(0.0, 0.0)))
        await push.start()
        try:
            config = push.channel_config(USER_ID)
            assert set(config) >= {"server", "api", "channels", "exp", "publicChannels"}
            assert set(config["server"]) == {
                "version", "server_enabled", "mode", "hostname", "long_polling",
                "long_pooling_secure", "websocket_enabled", "websocket", "websocket_secure",
                "publish_enabled", "publish", "publish_secure", "config_timestamp",
            }  # fmt: skip
            assert config["api"] == {"revision_web": 19, "revision_mobile": 3}
            private = config["channels"]["private"]
            assert private["type"] == "private" and ":" in private["id"].split(".")[0]
            json.dumps(config)  # plain JSON, ready for the REST envelope
        finally:
            await push.stop()

    run(scenario)


def test_back_off_position_grows_with_failures_and_resets_after_a_stable_connection() -> None:
    failures_at_connect: list[int] = []
    calls = {"n": 0}

    def fetch(push: PushServer, configs: list[dict[str, Any]]) -> dict[str, Any]:
        calls["n"] += 1
        if calls["n"] <= 3:
            raise ConnectionError("portal unreachable")
        return push.channel_config(USER_ID)

    async def scenario() -> None:
        async with running_client(fetch=fetch) as h:
            await h.connected()
            failures_at_connect.append(h.client.failures)
            await asyncio.sleep(FAST_TIMING.stable_after + 0.1)  # stay up: a stable connection
            await h.push.drop_connections()
            await h.connected()
            failures_at_connect.append(h.client.failures)

    run(scenario)
    assert failures_at_connect == [3, 1]  # three failed fetches; then reset, plus the drop
