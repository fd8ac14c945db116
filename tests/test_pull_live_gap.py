"""No gap in live delivery: the Push&Pull client against the push server emulator on real
loopback sockets.

* ``config_expire`` / ``server_restart``: the jitter the REST docs require is kept, but the
  old connection stays in use until the new one is up, and ``on_connect`` (the link's
  reconciliation) runs right after the new one opens;
* a slow message handler never holds up reading the next frame;
* a v5 config against a server that speaks v4 text frames falls back, with one warning.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging

import pytest

from kassa_appliance.bitrix.pull import PullClient, PullMessage
from kassa_appliance.testbeds.bitrix24.push import PushServer, PushSettings
from test_pull_client import FAST_BACKOFF, FAST_TIMING, USER_ID, run, running_client

JITTER = (0.6, 0.8)
"""Seconds the client waits after config_expire before the new connection (docs: 10–120)."""


def test_config_expire_keeps_the_old_connection_until_the_new_one_is_up() -> None:
    async def scenario() -> None:
        timing = dataclasses.replace(FAST_TIMING, server_restart_delay=JITTER)
        async with running_client(timing=timing) as h:
            assert await h.connected() == 1
            loop = asyncio.get_running_loop()
            await h.push.send_config_expire()
            expired_at = loop.time()
            await asyncio.sleep(0.2)  # inside the jitter: the old connection still delivers
            assert h.client.status.connected and h.push.connection_count == 1
            await h.push.publish_app_event("kassa.job", {"job": "during", "kassa": "k"})
            message = await h.message()
            assert message.params["job"] == "during"
            assert loop.time() - expired_at < JITTER[0]  # live, not after the reconnect
            assert await h.connected() == 2  # on_connect: the link reconciles now
            assert loop.time() - expired_at >= JITTER[0]  # the jitter was kept
            assert h.client.status.config_fetches == 2
            await h.push.publish_app_event("kassa.job", {"job": "after", "kassa": "k"})
            assert (await h.message()).params["job"] == "after"
            await asyncio.sleep(0.1)
            assert h.push.connection_count == 1  # the old one was closed after the switch
            assert h.no_more_messages() == []  # nothing delivered twice

    run(scenario)


def test_server_restart_command_hands_over_too_and_a_drop_meanwhile_keeps_the_jitter() -> None:
    async def scenario() -> None:
        timing = dataclasses.replace(FAST_TIMING, server_restart_delay=JITTER)
        async with running_client(timing=timing) as h:
            assert await h.connected() == 1
            loop = asyncio.get_running_loop()
            await h.push.send_server_restart()
            told_at = loop.time()
            await asyncio.sleep(0.1)
            assert h.client.status.connected  # still on the old connection
            await h.push.drop_connections()  # the server goes away before the jitter ran out
            assert await h.connected() == 2
            assert loop.time() - told_at >= JITTER[0]  # no reconnect storm: jitter kept

    run(scenario)


def test_a_slow_handler_does_not_hold_up_reading_the_next_frame() -> None:
    async def scenario() -> None:
        push = PushServer(PushSettings(buffer_delay=(0.0, 0.0), ping_interval=None))
        await push.start("127.0.0.1", 0)
        release = asyncio.Event()
        handled: list[str] = []
        connects: asyncio.Queue[int] = asyncio.Queue()

        async def on_message(message: PullMessage) -> None:
            await release.wait()  # e.g. a REST call waiting for the rate limit
            handled.append(str(message.params["job"]))

        async def on_connect() -> None:
            await connects.put(1)

        timing = dataclasses.replace(FAST_TIMING, server_restart_delay=(0.0, 0.0))
        client = PullClient(
            lambda: push.channel_config(USER_ID),
            on_message,
            on_connect=on_connect,
            backoff=FAST_BACKOFF,
            timing=timing,
        )
        task = asyncio.create_task(client.run())
        try:
            await asyncio.wait_for(connects.get(), 10)
            for number in range(5):
                await push.publish_app_event("kassa.job", {"job": f"J{number}", "kassa": "k"})
            # While the handler is stuck, the receive loop still reads: a config_expire
            # behind the doorbells is acted on (a new connection opens).
            await push.send_config_expire()
            await asyncio.wait_for(connects.get(), 10)
            assert client.status.last_mid is not None
            release.set()
            for _ in range(200):
                if len(handled) == 5:
                    break
                await asyncio.sleep(0.01)
            assert handled == [f"J{n}" for n in range(5)]  # in order, each once
        finally:
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            await push.stop()

    run(scenario)


def test_a_v5_config_against_a_v4_server_falls_back_to_text_frames_with_one_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def scenario() -> None:
        settings = PushSettings(
            version=5, wire_version=4, buffer_delay=(0.0, 0.0), ping_interval=None
        )
        timing = dataclasses.replace(FAST_TIMING, jsonrpc_ping_timeout=0.3)
        async with running_client(settings, timing=timing) as h:
            assert await h.connected() == 1
            await asyncio.sleep(0.6)  # longer than the v5 ping timeout: no STUCK reconnect
            await h.push.publish_app_event("kassa.job", {"job": "J-5", "kassa": "k"})
            message = await h.message()
            assert message.params["job"] == "J-5"
            await h.push.publish_app_event("kassa.job", {"job": "J-6", "kassa": "k"})
            assert (await h.message()).params["job"] == "J-6"
            assert h.client.status.connections == 1
            assert h.push.stats.acks == []  # no JSON-RPC acks to a v4 server

    with caplog.at_level(logging.WARNING, logger="kassa_appliance.bitrix.pull"):
        run(scenario)
    warnings = [r for r in caplog.records if "falling back to v4" in r.getMessage()]
    assert len(warnings) == 1
