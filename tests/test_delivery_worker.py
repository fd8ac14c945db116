"""The delivery worker against a real loopback recipient (aiohttp) and a real journal file:
exactly once, back-off, permanent failures in status, a crash between send and record,
independence of targets, senders that raise, kinds with no sender."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest

from delivery_support import (
    KIND,
    QR,
    Fault,
    HookSender,
    Recipient,
    finish_job,
    make_worker,
    wait_until,
)
from kassa_appliance.channels.delivery.backoff import Backoff
from kassa_appliance.channels.delivery.debug_hooks import (
    DEBUG_PAUSE_AFTER_DELIVERY_SEND_ENV,
    debug_pause_after_send,
)
from kassa_appliance.channels.delivery.protocol import Delivery
from kassa_appliance.fiscal.engine import Engine, EngineSettings
from kassa_appliance.fiscal.journal import Journal
from kassa_appliance.fiscal.journal_deliveries import SENDING, SENT, delivery_key
from kassa_appliance.registers.simulator import SimulatorRegister
from sample_tasks import sell


@dataclass
class Setup:
    root: Path
    recipient: Recipient
    session: aiohttp.ClientSession
    journal: Journal

    @property
    def path(self) -> Path:
        return self.root / "journal.sqlite3"

    def sender(self) -> HookSender:
        return HookSender(self.recipient, self.session)


@pytest.fixture
async def setup(tmp_path: Path) -> AsyncIterator[Setup]:
    recipient = Recipient()
    await recipient.start()
    journal = Journal(tmp_path / "journal.sqlite3")
    async with aiohttp.ClientSession() as session:
        try:
            yield Setup(tmp_path, recipient, session, journal)
        finally:
            journal.close()
            await recipient.stop()


def chat(name: str) -> dict[str, str]:
    return {"kind": KIND, "chat": name}


async def test_a_printed_job_reaches_its_target_once_with_its_qr(setup: Setup) -> None:
    """The real engine on the simulator prints the job; the worker, woken by the engine's
    status changes, delivers the outcome once, and looking again sends nothing more."""
    settings = EngineSettings(retry_interval=0.01, journal_poll_interval=0.02, call_timeout=5.0)
    engine = Engine(setup.journal, SimulatorRegister(setup.root / "simulator"), settings)
    running = asyncio.create_task(engine.run())
    worker = make_worker(setup.path)
    engine.add_listener(worker.on_engine_change)
    worker.register_sender(setup.sender())
    try:
        async with worker:
            setup.journal.submit("job-1", sell(), source="test", reply={"targets": [chat("a")]})
            engine.wake()
            await wait_until(lambda: len(setup.recipient.messages) == 1, "the delivery")
            (message,) = setup.recipient.messages
            job = setup.journal.get("job-1")
            assert job is not None and job.qr is not None
            assert message.chat == "a" and job.qr in message.text
            assert message.key == delivery_key("job-1", chat("a"))
            for _ in range(5):  # more looks (engine changes, wakes) send nothing more
                worker.wake()
                await asyncio.sleep(0.05)
            (row,) = worker.ledger.for_job("job-1")
            assert (row.state, row.sent_ref, row.attempts) == (SENT, "1", 1)
            assert len(setup.recipient.posts) == 1 and setup.recipient.lookups == []
            assert worker.status()["sent"] == 1
    finally:
        await engine.stop()
        await asyncio.wait_for(running, 30)


async def test_503s_are_retried_with_back_off_until_the_service_accepts(setup: Setup) -> None:
    setup.recipient.faults["b"] = [Fault(503), Fault(503)]
    finish_job(setup.journal, "job-2", [chat("b")])
    worker = make_worker(setup.path, backoff=Backoff(base=0.2, cap=1.0))
    worker.register_sender(setup.sender())
    async with worker:
        await wait_until(lambda: len(setup.recipient.messages) == 1, "the delivery")
        (row,) = worker.ledger.for_job("job-2")
        assert (row.state, row.attempts) == (SENT, 3)
    times = [at for at, _chat, _status in setup.recipient.posts]
    assert [status for _at, _chat, status in setup.recipient.posts] == [503, 503, 200]
    assert times[1] - times[0] >= 0.1 and times[2] - times[1] >= 0.2  # jitter in [c/2, c]
    assert len(setup.recipient.lookups) == 2  # looked before each retry: nothing there
    assert len(setup.recipient.for_chat("b")) == 1


async def test_a_retry_after_from_the_service_is_honoured(setup: Setup) -> None:
    setup.recipient.faults["c"] = [Fault(429, "too many requests", retry_after=0.6)]
    finish_job(setup.journal, "job-3", [chat("c")])
    worker = make_worker(setup.path)
    worker.register_sender(setup.sender())
    async with worker:
        await wait_until(lambda: len(setup.recipient.messages) == 1, "the delivery")
    first, second = setup.recipient.posts
    assert second[0] - first[0] >= 0.55


async def test_a_permanent_4xx_is_failed_with_its_reason_and_shown_in_status(
    setup: Setup,
) -> None:
    setup.recipient.faults["gone"] = [Fault(403, "bot was blocked by the user")]
    finish_job(setup.journal, "job-4", [chat("gone"), chat("ok")])
    changes: list[int] = []
    worker = make_worker(setup.path, on_change=lambda: changes.append(1))
    worker.register_sender(setup.sender())
    async with worker:
        await wait_until(lambda: worker.status()["failed"] == 1, "the failure")
        await wait_until(lambda: worker.status()["sent"] == 1, "the other target")
        status = worker.status()
        (failure,) = status["failures"]
        assert failure["job"] == "job-4" and failure["kind"] == KIND
        assert "403" in failure["reason"] and "bot was blocked by the user" in failure["reason"]
        assert status["pending"] == 0 and changes
        await asyncio.sleep(0.3)
    assert [status for _at, c, status in setup.recipient.posts if c == "gone"] == [403]


async def test_a_crash_between_send_and_record_is_settled_by_looking_not_resending(
    setup: Setup,
) -> None:
    """The debug hook holds the worker after the send returned; the worker is then torn
    down (as by SIGKILL: the row stays ``sending``). A fresh worker over the same file finds
    the message by its key and records it; nothing is posted again."""
    marker = setup.root / "pause-marker"
    marker.write_text("hold\n")
    pause = debug_pause_after_send(
        {"KASSA_DEBUG_HOOKS": "1", DEBUG_PAUSE_AFTER_DELIVERY_SEND_ENV: str(marker)}
    )
    assert pause is not None
    assert debug_pause_after_send({DEBUG_PAUSE_AFTER_DELIVERY_SEND_ENV: str(marker)}) is None
    finish_job(setup.journal, "job-5", [chat("d")])
    first = make_worker(setup.path, pause_after_send=pause)
    first.register_sender(setup.sender())
    async with first:
        await wait_until(lambda: len(setup.recipient.messages) == 1, "the send")
        await asyncio.sleep(0.2)
        assert first.ledger.for_job("job-5")[0].state == SENDING  # paused before recording
    marker.unlink()
    sender = setup.sender()
    second = make_worker(setup.path)
    second.register_sender(sender)
    async with second:
        await wait_until(lambda: second.ledger.for_job("job-5")[0].state == SENT, "the record")
        (row,) = second.ledger.for_job("job-5")
    assert row.sent_ref == "1" and row.attempts == 1
    assert sender.sent == [] and len(sender.looked) == 1
    assert len(setup.recipient.messages) == 1 and len(setup.recipient.posts) == 1


async def test_a_row_left_sending_that_never_arrived_is_sent_after_looking(setup: Setup) -> None:
    finish_job(setup.journal, "job-6", [chat("e")])
    marker_worker = make_worker(setup.path)  # creates the row, no sender: nothing is sent
    async with marker_worker:
        await wait_until(lambda: bool(marker_worker.ledger.for_job("job-6")), "the row")
        marker_worker.ledger.mark_sending(delivery_key("job-6", chat("e")))  # died sending
    sender = setup.sender()
    worker = make_worker(setup.path)
    worker.register_sender(sender)
    async with worker:
        await wait_until(lambda: len(setup.recipient.messages) == 1, "the delivery")
        await wait_until(lambda: worker.ledger.for_job("job-6")[0].state == SENT, "the record")
        assert worker.ledger.for_job("job-6")[0].attempts == 2
    assert len(sender.looked) == 1 and len(sender.sent) == 1


async def test_a_slow_target_and_a_failing_one_do_not_hold_up_another(setup: Setup) -> None:
    setup.recipient.delays["slow"] = 6.0
    setup.recipient.faults["broken"] = [Fault(503)] * 1000
    finish_job(setup.journal, "job-slow", [chat("slow")])
    finish_job(setup.journal, "job-broken", [chat("broken")])
    finish_job(setup.journal, "job-fast", [chat("fast")])
    worker = make_worker(setup.path, max_in_flight_per_kind=2, backoff=Backoff(0.01, 0.02))
    worker.register_sender(setup.sender())
    async with worker:
        loop = asyncio.get_running_loop()
        started = loop.time()
        await wait_until(lambda: len(setup.recipient.for_chat("fast")) == 1, "the fast one")
        assert loop.time() - started < 4.0
        assert setup.recipient.for_chat("slow") == []  # still on its way
        await wait_until(
            lambda: sum(1 for _at, c, _s in setup.recipient.posts if c == "broken") >= 3,
            "the broken one's retries",
        )
        assert setup.recipient.for_chat("slow") == []  # retries went on beside it
        await wait_until(lambda: len(setup.recipient.for_chat("slow")) == 1, "the slow one")


async def test_a_sender_that_raises_is_retried_and_the_loop_goes_on(
    setup: Setup, caplog: pytest.LogCaptureFixture
) -> None:
    class Flaky(HookSender):
        calls = 0

        async def send(self, delivery: Delivery) -> str:
            Flaky.calls += 1
            if Flaky.calls == 1:
                raise KeyError("a bug in the sender")
            return await super().send(delivery)

    finish_job(setup.journal, "job-7", [chat("f")])
    worker = make_worker(setup.path)
    worker.register_sender(Flaky(setup.recipient, setup.session))
    with caplog.at_level(logging.ERROR, "kassa_appliance.channels.delivery"):
        async with worker:
            await wait_until(lambda: len(setup.recipient.messages) == 1, "the delivery")
            finish_job(setup.journal, "job-8", [chat("g")])
            worker.wake()
            await wait_until(lambda: len(setup.recipient.messages) == 2, "the next job")
    assert any(
        "unexpected error" in r.getMessage() and r.exc_info is not None for r in caplog.records
    )
    assert [m.chat for m in setup.recipient.messages] == ["f", "g"]


async def test_a_kind_without_a_sender_waits_and_is_sent_once_one_registers(
    setup: Setup,
) -> None:
    finish_job(setup.journal, "job-9", [chat("h"), {"kind": "maxchat", "chat_id": "1"}])
    worker = make_worker(setup.path)
    async with worker:
        await wait_until(lambda: worker.status()["pending"] == 2, "the rows")
        status = worker.status()
        assert status["waiting"] == ["no sender for hook (1)", "no sender for maxchat (1)"]
        worker.register_sender(setup.sender())
        await wait_until(lambda: len(setup.recipient.messages) == 1, "the delivery")
        await wait_until(lambda: worker.status()["pending"] == 1, "the record")
        assert worker.status()["waiting"] == ["no sender for maxchat (1)"]
        with pytest.raises(ValueError, match="already registered"):
            worker.register_sender(setup.sender())


async def test_a_failed_job_is_delivered_with_its_reason(setup: Setup) -> None:
    finish_job(setup.journal, "job-10", [chat("i")], fail="no paper: load a paper roll")
    worker = make_worker(setup.path)
    worker.register_sender(setup.sender())
    async with worker:
        await wait_until(lambda: len(setup.recipient.messages) == 1, "the delivery")
    (message,) = setup.recipient.messages
    assert "failed" in message.text and "no paper" in message.text and QR not in message.text


async def test_an_outbox_job_is_left_to_the_appliance_that_expected_it(setup: Setup) -> None:
    """A job taken from the Bitrix24 outbox was created elsewhere (a bot host that called
    expect()); delivering its REPLY here too would reach the chat twice."""
    finish_job(setup.journal, "job-outbox", [chat("o")], source="bitrix")
    finish_job(setup.journal, "job-lan", [chat("o")])
    worker = make_worker(setup.path)
    worker.register_sender(setup.sender())
    async with worker:
        await wait_until(lambda: len(setup.recipient.messages) == 1, "the LAN job's delivery")
        await asyncio.sleep(0.2)
        assert worker.ledger.for_job("job-outbox") == []
        worker.expect("job-outbox", [chat("o")], kassa="kassa-d")  # this appliance expected it
        await wait_until(lambda: len(setup.recipient.messages) == 2, "the expected delivery")


async def test_a_backlog_of_one_kind_does_not_hold_up_another_kind(setup: Setup) -> None:
    class OtherKind(HookSender):
        kind = "other"

    for number in range(40):
        setup.recipient.delays[f"busy-{number}"] = 5.0
        finish_job(setup.journal, f"busy-{number}", [chat(f"busy-{number}")])
    finish_job(setup.journal, "other-job", [{"kind": "other", "chat": "elsewhere"}])
    worker = make_worker(setup.path, max_in_flight=6, max_in_flight_per_kind=4)
    worker.register_sender(setup.sender())
    worker.register_sender(OtherKind(setup.recipient, setup.session))
    async with worker:
        loop = asyncio.get_running_loop()
        started = loop.time()
        await wait_until(lambda: len(setup.recipient.for_chat("elsewhere")) == 1, "the other")
        assert loop.time() - started < 4.0
        assert len(setup.recipient.messages) == 1  # the busy ones are still on their way
