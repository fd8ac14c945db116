"""Shared parts of the conversation tests: a recording ChatTransport, a recorder of the
delivery worker's expect(), and a chat driver that types and taps like a person.

The Bitrix24 side is the real emulator (REST over loopback) with the real KASSAJOB/KASSADEV
storage; nothing of the conversation engine is replaced.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bitrix_support import oauth_client
from kassa_appliance.bitrix.heartbeat import DeviceHeartbeat
from kassa_appliance.bitrix.protocol import JOB_ENTITY
from kassa_appliance.bitrix.rest import RestClient
from kassa_appliance.bitrix.storage import ensure_storage
from kassa_appliance.channels.conversation.service import ConversationService
from kassa_appliance.channels.conversation.settings import ConversationSettings
from kassa_appliance.channels.conversation.store import ConversationStore
from kassa_appliance.channels.conversation.transport import Incoming, Keyboard
from kassa_appliance.testbeds.bitrix24.app import Emulator
from kassa_appliance.testbeds.bitrix24.state import Item

CASHIERS = "17=Мастер Иванов И.И.:500100732259,d5=Мастер Петров П.П."
CHAT = "chat-100"
USER = "17"


@dataclass
class Sent:
    chat_id: str
    text: str
    keyboard: Keyboard
    key: str
    message_id: str


@dataclass
class RecordingTransport:
    """A ChatTransport that records what it is asked to send and answers a repeated key
    with the first message's id, as a real transport should."""

    messenger: str = "max"
    sent: list[Sent] = field(default_factory=list)
    images: list[tuple[str, bytes, str, str]] = field(default_factory=list)
    answers: list[tuple[str, str | None]] = field(default_factory=list)
    fail_sends: int = 0

    async def send_text(self, chat_id: str, text: str, *, keyboard: Keyboard = (), key: str) -> str:
        for earlier in self.sent:
            if earlier.key == key:
                return earlier.message_id
        if self.fail_sends:
            self.fail_sends -= 1
            raise ConnectionError("messenger unreachable (test)")
        message_id = f"m{len(self.sent) + 1}"
        self.sent.append(Sent(chat_id, text, keyboard, key, message_id))
        return message_id

    async def send_image(self, chat_id: str, png: bytes, *, caption: str, key: str) -> str:
        self.images.append((chat_id, png, caption, key))
        return f"i{len(self.images)}"

    async def answer_action(self, incoming: Incoming, notice: str | None = None) -> None:
        self.answers.append((incoming.update_id, notice))

    def reply_target(self, chat_id: str) -> dict[str, Any]:
        if self.messenger == "b24":
            return {"kind": "b24chat", "bot_id": 7, "dialog_id": chat_id}
        return {"kind": "maxchat", "chat_id": chat_id}


@dataclass
class ExpectRecorder:
    calls: list[tuple[str, list[dict[str, Any]], str | None]] = field(default_factory=list)

    def expect(self, job_id: str, targets: list[dict[str, Any]], *, kassa: str | None) -> None:
        self.calls.append((job_id, targets, kassa))


class Chat:
    """One person in one chat: types text and taps buttons of the last messages."""

    def __init__(self, world: ConversationWorld, *, user_id: str = USER, chat_id: str = CHAT):
        self.world = world
        self.user_id = user_id
        self.chat_id = chat_id
        self.departments: tuple[int, ...] = ()

    def _next_update(self) -> str:
        self.world.update_counter += 1
        return f"u{self.world.update_counter}"

    def incoming(self, text: str = "", action: str | None = None) -> Incoming:
        return Incoming(
            messenger=self.world.transport.messenger,
            chat_id=self.chat_id,
            user_id=self.user_id,
            update_id=self._next_update(),
            text=text,
            action=action,
            callback_id="cb" if action else None,
            department_ids=self.departments,
        )

    async def say(self, text: str) -> str:
        before = len(self.world.transport.sent)
        await self.world.service.handle(self.incoming(text=text))
        return self.world.replies_since(before)

    def button(self, caption: str) -> str:
        """The action of the newest button whose caption starts with ``caption``."""
        for message in reversed(self.world.transport.sent):
            for row in message.keyboard:
                for button in row:
                    if button.text.startswith(caption):
                        return button.action
        raise AssertionError(f"no button {caption!r} in the chat")

    async def tap(self, caption: str) -> str:
        return await self.press(self.button(caption))

    async def press(self, action: str) -> str:
        before = len(self.world.transport.sent)
        await self.world.service.handle(self.incoming(action=action))
        return self.world.replies_since(before)


@dataclass
class ConversationWorld:
    root: Path
    emulator: Emulator
    rest: RestClient
    transport: RecordingTransport
    delivery: ExpectRecorder
    settings: ConversationSettings
    store: ConversationStore
    service: ConversationService
    update_counter: int = 0

    def replies_since(self, index: int) -> str:
        return "\n---\n".join(m.text for m in self.transport.sent[index:])

    def restart(self) -> None:
        """A new service over a new connection to the same store file (a daemon restart)."""
        self.store.close()
        self.store = ConversationStore.open(self.root)
        self.service = ConversationService(
            transport=self.transport,
            store=self.store,
            rest=self.rest,
            delivery=self.delivery,
            settings=self.settings,
        )

    def jobs(self) -> list[Item]:
        entity = self.emulator.state.entities.get(JOB_ENTITY)
        return [] if entity is None else list(entity.items.values())

    def task_of(self, item: Item) -> dict[str, Any]:
        return dict(json.loads(item.properties["TASK"] or ""))


async def beat(rest: RestClient, kassa: str, **status: Any) -> None:
    """A kassa's KASSADEV heartbeat, written by the real heartbeat code."""
    values = {"register": "simulator", "register_online": True, "queue_depth": 0, **status}
    heartbeat = DeviceHeartbeat(
        rest, kassa_id=kassa, device_status=lambda: dict(values), interval=300, min_gap=0
    )
    await heartbeat.beat(force=True)


@contextlib.asynccontextmanager
async def conversation_world(
    root: Path,
    *,
    kassas: tuple[str, ...] = ("office-1", "office-2"),
    messenger: str = "max",
    **settings: Any,
) -> AsyncIterator[ConversationWorld]:
    async with Emulator() as emulator:
        rest = oauth_client(emulator, root / "tokens.json")
        try:
            await ensure_storage(rest)
            for kassa in kassas:
                await beat(rest, kassa, shift_state="opened", paper=True)
            options: dict[str, Any] = {"cashiers": CASHIERS, **settings}
            config = ConversationSettings.model_validate(options)
            store = ConversationStore.open(root)
            transport = RecordingTransport(messenger=messenger)
            delivery = ExpectRecorder()
            service = ConversationService(
                transport=transport, store=store, rest=rest, delivery=delivery, settings=config
            )
            world = ConversationWorld(
                root, emulator, rest, transport, delivery, config, store, service
            )
            try:
                yield world
            finally:
                world.store.close()
        finally:
            await rest.aclose()
