"""Shared parts of the end-to-end chat tests (tests/test_chat_e2e_*.py): the whole appliance
on loopback — the Bitrix24 emulator with push in this process, the real daemon as a
subprocess on the simulator with the chat bots on — and read-outs of what happened: the
KASSAJOB items a chat created, the receipts the simulator printed, the journal's record of
each reply delivery.

The daemon always runs with the delivery worker's test hook armed
(``KASSA_DEBUG_HOOKS=1``, ``KASSA_DEBUG_PAUSE_AFTER_DELIVERY_SEND=<marker>``): it pauses
only while the marker file exists, which only the SIGKILL test creates.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kassa_appliance.appliance.daemon import journal_path
from kassa_appliance.bitrix.jobs import JOB_ENTITY
from kassa_appliance.registers.factory import simulator_state_dir
from kassa_appliance.registers.simulator_state import load_state
from kassa_appliance.testbeds.bitrix24.state import Item
from kassa_appliance.testbeds.demo_stack import ApplianceStack, StackSettings
from kassa_appliance.testbeds.maxapi.server import MaxApiEmulator
from kassa_appliance.testbeds.maxapi.user import EmulatedMaxUser

WAIT = 45.0
KASSA = "office-1"
PAUSE_ENV = "KASSA_DEBUG_PAUSE_AFTER_DELIVERY_SEND"


@dataclass
class ChatStack:
    stack: ApplianceStack
    marker: Path
    """While this file exists the delivery worker pauses after a send (before recording)."""

    @property
    def data_dir(self) -> Path:
        return self.stack.data_dir

    def jobs(self, predicate: Callable[[dict[str, Any]], bool] = lambda _: True) -> list[Item]:
        """KASSAJOB items whose REPLY target matches ``predicate``, oldest first."""
        assert self.stack.emulator is not None
        entity = self.stack.emulator.state.entities.get(JOB_ENTITY)
        found = []
        for item in [] if entity is None else entity.items.values():
            reply = json.loads(item.properties.get("REPLY") or "null") or {}
            targets = reply.get("targets") or []
            if any(predicate(target) for target in targets):
                found.append(item)
        return found

    def sells(self) -> int:
        """Sell receipts the simulator has fiscalised (its FN counter)."""
        state = load_state(simulator_state_dir(self.data_dir))
        return 0 if state is None else int(state.document_counts.get("sell", 0))

    def deliveries(self, job_id: str) -> list[tuple[str, str]]:
        """(kind, state) of each reply delivery of ``job_id`` in the daemon's journal."""
        path = journal_path(self.data_dir)
        if not path.exists():
            return []
        with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
            db.execute("PRAGMA busy_timeout = 5000")
            try:
                rows = db.execute(
                    "SELECT kind, state FROM deliveries WHERE job_id = ? ORDER BY id", (job_id,)
                ).fetchall()
            except sqlite3.OperationalError:  # not migrated yet
                return []
        return [(str(kind), str(state)) for kind, state in rows]

    def log(self) -> str:
        return self.stack.log_path.read_text(encoding="utf-8", errors="replace")


def item_result(item: Item) -> dict[str, Any]:
    value = json.loads(item.properties.get("RESULT") or "null")
    return value if isinstance(value, dict) else {}


def item_task(item: Item) -> dict[str, Any]:
    value = json.loads(item.properties.get("TASK") or "null")
    return value if isinstance(value, dict) else {}


@contextlib.asynccontextmanager
async def chat_stack(root: Path, sections: dict[str, Any]) -> AsyncIterator[ChatStack]:
    """The appliance (kassa ``office-1``) with ``sections`` (the bots) in its config."""
    marker = root / "pause-after-delivery-send"
    settings = StackSettings(
        root=root,
        push_buffer_delay=0.0,
        kassa_id=KASSA,
        sections=sections,
        env={"KASSA_DEBUG_HOOKS": "1", PAUSE_ENV: str(marker)},
    )
    async with ApplianceStack(settings) as stack:
        yield ChatStack(stack, marker)


async def wait_until(predicate: Callable[[], bool], what: str, timeout: float = WAIT) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        assert loop.time() < deadline, f"{what} never happened"
        await asyncio.sleep(0.05)


# -- MAX -----------------------------------------------------------------------------------

MAX_TOKEN = "e2e-max-token-0123456789abcdef"


@contextlib.asynccontextmanager
async def max_api() -> AsyncIterator[MaxApiEmulator]:
    """The MAX Bot API emulator on loopback (its own thread), accepting :data:`MAX_TOKEN`."""
    emulator = MaxApiEmulator(MAX_TOKEN).start()
    try:
        yield emulator
    finally:
        emulator.stop()


@dataclass
class MaxChat:
    """A technician in MAX (the emulator's user controls): types, taps by caption, and
    waits for the bot's answer the way :class:`~kassa_appliance.testbeds.demo_chat.BotChat`
    does in Bitrix24."""

    user: EmulatedMaxUser
    last_marker: int = 0
    """The marker of the update the last write or press made (for a re-delivery)."""

    async def texts(self) -> list[str]:
        return [str(m["body"].get("text") or "") for m in await self.user.bot_messages()]

    async def write(self, text: str, *, until: str, timeout: float = WAIT) -> str:
        before = len(await self.user.bot_messages())
        written = await self.user.say(text)
        self.last_marker = int(written["marker"])
        return await self.answer(before, until, timeout)

    async def press(self, caption: str, *, until: str, timeout: float = WAIT) -> str:
        buttons = await self.user.buttons()
        payload = next((p for text, p in buttons.items() if text.startswith(caption)), None)
        assert payload is not None, f"no button {caption!r} in the chat (have {list(buttons)})"
        before = len(await self.user.bot_messages())
        response = await self.user.http.post(
            f"/_emulator/users/{self.user.user_id}/press", json={"payload": payload}
        )
        response.raise_for_status()
        self.last_marker = int(response.json()["marker"])
        return await self.answer(before, until, timeout)

    async def answer(self, before: int, until: str, timeout: float = WAIT) -> str:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            new = (await self.texts())[before:]
            if any(until in text for text in new):
                return "\n".join(new)
            assert loop.time() < deadline, f"no answer containing {until!r}; got {new}"
            await asyncio.sleep(0.05)

    async def images(self) -> list[tuple[str, bytes]]:
        """(text, PNG) of each bot message carrying an image."""
        return [
            (str(m["body"].get("text") or ""), await self.user.image_of(m))
            for m in await self.user.receipts()
        ]
