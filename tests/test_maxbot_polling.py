"""The MAX bot's long polling against the MAX Bot API emulator on loopback: the marker
persisted across a restart, faults (429, 503, a dropped poll, an invalid token), the token
never in a log line, and every request and answer valid against the official schema."""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path

import pytest

from kassa_appliance.channels.conversation.transport import Incoming
from kassa_appliance.channels.maxbot.client import MaxClient
from kassa_appliance.channels.maxbot.errors import MaxApiError
from kassa_appliance.channels.maxbot.poller import UpdatePoller
from maxbot_support import TOKEN, USER_ID, Emulator, max_emulator

__all__ = ["max_emulator"]

POLL_TIMEOUT = 2


class Collected:
    def __init__(self) -> None:
        self.items: list[Incoming] = []
        self.changed = asyncio.Event()

    async def __call__(self, incoming: Incoming) -> None:
        self.items.append(incoming)
        self.changed.set()

    async def wait_for(self, count: int, timeout: float = 20.0) -> None:
        async with asyncio.timeout(timeout):
            while len(self.items) < count:
                self.changed.clear()
                await self.changed.wait()


async def _poll_until(poller: UpdatePoller, collected: Collected, count: int) -> None:
    task = asyncio.create_task(poller.run())
    try:
        await collected.wait_for(count)
        # the marker is saved once the batch is handled
        async with asyncio.timeout(10):
            while poller.store.load() != poller.marker or poller.marker is None:
                await asyncio.sleep(0.02)
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


async def test_marker_survives_a_restart_and_nothing_is_handled_twice(
    max_emulator: Emulator, tmp_path: Path
) -> None:
    max_emulator.write("Замена смесителя 1500")
    max_emulator.start()
    client = max_emulator.client()
    first = Collected()
    poller = UpdatePoller(client, tmp_path, first, poll_timeout=POLL_TIMEOUT)
    assert poller.marker is None
    await _poll_until(poller, first, 2)
    assert [i.text for i in first.items] == ["Замена смесителя 1500", "/start"]
    assert first.items[0].user_id == str(USER_ID) and first.items[0].user_name == "Иван"
    saved = poller.store.load()
    assert saved == max_emulator.state()["next_marker"]
    await client.aclose()

    max_emulator.write("Кран 2 х 350")
    restarted = Collected()
    client = max_emulator.client()
    again = UpdatePoller(client, tmp_path, restarted, poll_timeout=POLL_TIMEOUT)
    assert again.marker == saved
    await _poll_until(again, restarted, 1)
    await asyncio.sleep(0.3)
    assert [i.text for i in restarted.items] == ["Кран 2 х 350"]
    await client.aclose()
    polls = [e for e in max_emulator.traffic() if e["path"] == "/updates"]
    markers = [dict(e["query"]).get("marker") for e in polls]
    assert markers[0] is None and str(saved) in markers
    assert max_emulator.assert_traffic_valid() >= 2


async def test_updates_arrive_while_a_long_poll_is_held(
    max_emulator: Emulator, tmp_path: Path
) -> None:
    client = max_emulator.client()
    collected = Collected()
    poller = UpdatePoller(client, tmp_path, collected, poll_timeout=30)
    task = asyncio.create_task(poller.run())
    await asyncio.sleep(0.5)  # the poll is being held by the emulator now
    started = time.monotonic()
    await asyncio.to_thread(max_emulator.write, "доставка 300 р")
    await collected.wait_for(1, timeout=5)
    assert time.monotonic() - started < 2.0
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await client.aclose()
    max_emulator.assert_traffic_valid()


@pytest.mark.parametrize("fault", [{"rate_limited": 2}, {"unavailable": 2}, {"dropped_polls": 2}])
async def test_poll_faults_back_off_and_recover(
    max_emulator: Emulator, tmp_path: Path, fault: dict[str, int]
) -> None:
    max_emulator.faults(**fault)
    max_emulator.write("2 шт по 99,90")
    client = max_emulator.client()
    collected = Collected()
    poller = UpdatePoller(client, tmp_path, collected, poll_timeout=POLL_TIMEOUT)
    await _poll_until(poller, collected, 1)
    assert [i.text for i in collected.items] == ["2 шт по 99,90"]
    assert poller.polls >= 3
    statuses = [e["status"] for e in max_emulator.traffic() if e["path"] == "/updates"]
    if "dropped_polls" not in fault:
        assert statuses[:2] == [429, 429] if "rate_limited" in fault else [503, 503]
    await client.aclose()
    max_emulator.assert_traffic_valid()


async def test_invalid_token_is_reported_once_and_never_logged(
    max_emulator: Emulator, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    wrong = "wrong-token-that-is-long-enough-42"
    client = MaxClient(wrong, max_emulator.url)
    with pytest.raises(MaxApiError) as raised:
        await client.get_me()
    assert raised.value.status == 401 and raised.value.code == "verify.token"
    assert raised.value.token_rejected and not raised.value.retryable

    poller = UpdatePoller(client, tmp_path, Collected(), poll_timeout=POLL_TIMEOUT)
    wait = await poller.poll_once()
    assert wait >= 60 and poller.token_rejected
    assert poller.status()["last_error"] is not None
    await poller.poll_once()
    rejected = [r for r in caplog.records if "rejected the bot token" in r.getMessage()]
    assert len(rejected) == 1
    await client.aclose()

    good = max_emulator.client()
    max_emulator.write("Кран 2 х 350")
    await good.get_updates(None, 0)
    await good.aclose()
    logged = "\n".join(r.getMessage() for r in caplog.records) + caplog.text
    assert "HTTP Request" in logged  # httpx's own lines were captured too
    assert wrong not in logged and TOKEN not in logged
    max_emulator.assert_traffic_valid()


async def test_token_changed_at_max_then_fixed(max_emulator: Emulator, tmp_path: Path) -> None:
    client = max_emulator.client()
    poller = UpdatePoller(client, tmp_path, Collected(), poll_timeout=POLL_TIMEOUT)
    max_emulator.set_token("a-new-token-issued-at-business-max")
    assert await poller.poll_once() >= 60
    assert poller.status()["token_rejected"] is True
    max_emulator.set_token(TOKEN)
    assert await poller.poll_once() == 0.0
    assert poller.status()["token_rejected"] is False
    await client.aclose()


async def test_a_handler_failure_does_not_stop_polling(
    max_emulator: Emulator, tmp_path: Path
) -> None:
    seen: list[str] = []

    async def flaky(incoming: Incoming) -> None:
        seen.append(incoming.text)
        if incoming.text == "boom":
            raise RuntimeError("the engine failed")

    max_emulator.write("boom")
    max_emulator.write("after")
    client = max_emulator.client()
    poller = UpdatePoller(client, tmp_path, flaky, poll_timeout=POLL_TIMEOUT)
    await poller.poll_once()
    assert seen == ["boom", "after"]
    assert poller.status()["handler_errors"] == 1
    await client.aclose()


async def test_global_rate_limit_is_respected(max_emulator: Emulator) -> None:
    """45 calls at once: our limiter keeps them under MAX's 30 per second, so the emulator
    (which refuses the 31st call in a second) answers every one."""
    client = max_emulator.client()
    started = time.monotonic()
    await asyncio.gather(*(client.get_me() for _ in range(45)))
    assert time.monotonic() - started >= 1.0
    assert all(e["status"] == 200 for e in max_emulator.traffic())
    await client.aclose()


async def test_an_unforeseen_error_does_not_stop_polling(
    max_emulator: Emulator, tmp_path: Path
) -> None:
    """The marker cannot be written (its directory is a file): logged, polling goes on."""
    blocked = tmp_path / "not-a-directory"
    blocked.write_text("")
    client = max_emulator.client()
    collected = Collected()
    poller = UpdatePoller(client, blocked, collected, poll_timeout=POLL_TIMEOUT)
    max_emulator.write("Кран 2 х 350")
    task = asyncio.create_task(poller.run())
    await collected.wait_for(1)
    async with asyncio.timeout(20):
        while poller.polls < 3:
            await asyncio.sleep(0.05)
    assert poller.status()["last_error"] is not None
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await client.aclose()
