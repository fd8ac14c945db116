"""The Bitrix24 chat bot: confirm → QR image in the chat, p50/p99, and the poll's share.

Set-up (all in this process, loopback): the portal emulator with its ``imbot.v2`` methods,
the bot host (channels/b24bot) polling through a REST client with the daemon's budget
(1.8 requests/s), the fiscal engine on the zero-delay simulator, and the reply-delivery
worker with the ``b24chat`` sender. Each round: the bot sends a preview with [Пробить],
the user presses it (the event is queued in the emulator), the poller fetches it and the
handler — standing in for the conversation engine's confirm step — submits the receipt with
REPLY ``{"targets": [b24chat]}``; the engine prints, the worker delivers, and the round ends
when the QR image message is in the emulated chat.

Figures: total latency press → image in the chat, and the part spent waiting for the next
``Event.get`` (press → handler called), with the fast-pace interval ``--active-poll``
(default 1 s, the shipped setting). Rounds are spaced so the bot stays in its active pace.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.b24bot_render import render
from bench.throughput import percentile, sell_task
from kassa_appliance.bitrix.auth import OAuthAuth, TokenFile
from kassa_appliance.bitrix.budget import RestBudget
from kassa_appliance.bitrix.rest import RestClient
from kassa_appliance.channels.b24bot.host import BotHost
from kassa_appliance.channels.b24bot.settings import B24BotConfig
from kassa_appliance.channels.conversation.reply_render import Render
from kassa_appliance.channels.conversation.transport import Button, Incoming
from kassa_appliance.channels.delivery.worker import DeliveryWorker
from kassa_appliance.fiscal.engine import Engine, EngineSettings
from kassa_appliance.fiscal.journal import Journal
from kassa_appliance.registers.simulator import SimulatorRegister
from kassa_appliance.testbeds.bitrix24.app import Emulator, oauth_credentials
from kassa_appliance.testbeds.bitrix24.rest_imbot_state import imbot_portal
from kassa_appliance.testbeds.bitrix24.state import CASHIER_USER_ID

DEFAULT_ROUNDS = 30
ENGINE = EngineSettings(retry_interval=0.01, max_retry_interval=0.05, journal_poll_interval=0.02)


@dataclass
class Pipeline:
    emulator: Emulator
    host: BotHost
    journal: Journal
    engine: Engine
    worker: DeliveryWorker
    pressed_at: dict[str, float] = field(default_factory=dict)
    handled_at: dict[str, float] = field(default_factory=dict)

    @property
    def bot_id(self) -> int:
        assert self.host.state.bot_id is not None
        return self.host.state.bot_id

    async def confirm(self, incoming: Incoming) -> None:
        """The stand-in confirm step: a job id derived from the pressed message."""
        if incoming.action is None or not incoming.action.startswith("confirm:"):
            return
        job_id = f"b24-{incoming.update_id.replace(':', '-')}"
        self.handled_at[job_id] = time.perf_counter()
        number = int(incoming.action.removeprefix("confirm:"))
        target = {"kind": "b24chat", "bot_id": self.bot_id, "dialog_id": incoming.chat_id}
        self.journal.submit(job_id, sell_task(number), source="bot", reply={"targets": [target]})
        self.engine.wake()

    async def preview(self, number: int) -> int:
        keyboard = ((Button("Пробить", f"confirm:{number}"), Button("Отмена", "cancel")),)
        text = f"Замена смесителя {100 + number} ₽ — пробить?"
        sent = await self.host.transport.send_text(
            str(CASHIER_USER_ID), text, keyboard=keyboard, key=f"preview-{number}"
        )
        return int(sent)


@contextlib.asynccontextmanager
async def pipeline(
    root: Path, *, active_poll: float, render: Render | None
) -> AsyncIterator[Pipeline]:
    emulator = Emulator()
    await emulator.start()
    auth = OAuthAuth(oauth_credentials(emulator.credentials()), TokenFile(root / "token.json"))
    rest = RestClient(auth, budget=RestBudget())
    journal = Journal(root / "journal.sqlite3")
    engine = Engine(journal, SimulatorRegister(root / "simulator"), ENGINE)
    engine_task = asyncio.create_task(engine.run())
    worker = DeliveryWorker(journal.path, kassa_id="bench", rest=rest)
    engine.add_listener(worker.on_engine_change)
    config = B24BotConfig.model_validate({"enabled": True, "active_poll_seconds": active_poll})
    host = BotHost(rest, root, config, render=render)
    worker.register_sender(host.sender)
    worker.start()
    run = Pipeline(emulator, host, journal, engine, worker)
    host.handle = run.confirm
    host_task = asyncio.create_task(host.run())
    try:
        await asyncio.wait_for(host.registered.wait(), 30)
        yield run
    finally:
        host_task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await host_task
        await worker.stop()
        await engine.stop()
        await engine_task
        journal.close()
        await rest.aclose()
        await emulator.stop()


def chat_images(run: Pipeline) -> int:
    portal = imbot_portal(run.emulator.state)
    sent = portal.sent_by(run.bot_id, str(CASHIER_USER_ID))
    return sum(1 for message in sent if message.params.get("FILE_ID"))


async def one_round(run: Pipeline, number: int, timeout: float = 30.0) -> tuple[float, float]:
    """(press → image in the chat, press → the poller handed the press over), in seconds."""
    portal = imbot_portal(run.emulator.state)
    message = await run.preview(number)
    await asyncio.sleep(random.uniform(0.0, run.host.config.active_poll_seconds))
    before = chat_images(run)
    pressed = time.perf_counter()
    portal.user_presses(CASHIER_USER_ID, message, "Пробить")
    job_id = f"b24-c{message}-confirm-{number}"
    while chat_images(run) == before:
        if time.perf_counter() > pressed + timeout:
            raise TimeoutError(f"round {number}: no QR image in the chat")
        await asyncio.sleep(0.005)
    return time.perf_counter() - pressed, run.handled_at[job_id] - pressed


async def measure(rounds: int, active_poll: float) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as folder:
        async with pipeline(Path(folder), active_poll=active_poll, render=render()) as run:
            totals: list[float] = []
            polls: list[float] = []
            for number in range(rounds):
                total, poll = await one_round(run, number)
                totals.append(total)
                polls.append(poll)
            return {"totals": totals, "polls": polls}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=DEFAULT_ROUNDS)
    parser.add_argument("--active-poll", type=float, default=1.0)
    args = parser.parse_args(argv)
    figures = asyncio.run(measure(args.rounds, args.active_poll))
    totals, polls = figures["totals"], figures["polls"]
    p50, p99 = percentile(totals, 0.5), percentile(totals, 0.99)
    share = sum(polls) / sum(totals)
    print(
        f"b24bot confirm → QR image in the chat ({args.rounds} rounds, poll {args.active_poll} s)"
    )
    print(f"  total      p50 {p50 * 1000:7.0f} ms   p99 {p99 * 1000:7.0f} ms")
    print(
        f"  poll wait  p50 {percentile(polls, 0.5) * 1000:7.0f} ms   "
        f"p99 {percentile(polls, 0.99) * 1000:7.0f} ms   share {share:.0%} of the total"
    )
    print("  (imbot.v2 fetch mode: the wait for the next Event.get dominates; no goal set)")
    sys.stdout.flush()


if __name__ == "__main__":
    main(sys.argv[1:])
