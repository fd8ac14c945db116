"""The emulated Chatbots 2.0 platform's data (bots, chats, messages, files, the per-bot event
queues) and the test controls: a user writes to a bot or presses one of its buttons, a test
reads what the bot sent and the bytes of the files it uploaded.

The REST side (``imbot.v2.*``) is :mod:`kassa_appliance.testbeds.bitrix24.rest_imbot`; both
share one :class:`ImbotPortal` per :class:`~kassa_appliance.testbeds.bitrix24.state.PortalState`
(:func:`imbot_portal`), so a test reaches it as ``imbot_portal(emulator.state)``.

Modelled on the b24restdocs pages under ``api-reference/chat-bots/chat-bots-v2/`` (entities.md
for the object shapes, events/events.md for the event data, events/event-get.md for the
queue): events stay queued until a later ``Event.get`` passes an ``offset`` above them.
"""

from __future__ import annotations

import time
import weakref
from dataclasses import dataclass, field
from typing import Any

from kassa_appliance.testbeds.bitrix24.state import PortalState, iso

BOT_USER_IDS_FROM = 1000
"""Bot users get ids from here, away from the portal's people."""
FIRST_EVENT_ID = 1001


@dataclass
class Bot:
    id: int
    code: str
    owner: str
    """``app`` (registered with the application's OAuth token) or ``webhook``."""
    token: str
    type: str
    properties: dict[str, Any]
    event_mode: str = "fetch"
    is_hidden: bool = False
    commands: dict[str, int] = field(default_factory=dict)
    """Registered command (without ``/``) → its id."""
    events: list[dict[str, Any]] = field(default_factory=list)
    """The queue ``Event.get`` reads: not yet confirmed events, oldest first."""
    count_message: int = 0

    def describe(self) -> dict[str, Any]:
        """The extended Bot object (owner's view, entities.md#bot)."""
        return {
            "id": self.id,
            "code": self.code,
            "type": self.type,
            "isHidden": self.is_hidden,
            "isSupportOpenline": False,
            "isReactionsEnabled": True,
            "backgroundId": None,
            "language": "ru",
            "moduleId": "rest",
            "eventMode": self.event_mode,
            "countMessage": self.count_message,
            "countCommand": len(self.commands),
            "countChat": 0,
            "countUser": 0,
        }

    def user(self) -> dict[str, Any]:
        name = str(self.properties.get("name") or self.code)
        return {"id": self.id, "active": True, "name": name, "bot": True, "type": "bot"}


@dataclass
class Chat:
    id: int
    type: str
    """``private`` (a person and a bot) or ``chat`` (a group chat)."""
    members: set[int]
    name: str = ""

    def dialog_for(self, viewer: int) -> str:
        """The dialogId as ``viewer`` sees it: the counterpart's id in a private chat."""
        if self.type == "private":
            return str(next((m for m in self.members if m != viewer), viewer))
        return f"chat{self.id}"

    def describe(self, viewer: int) -> dict[str, Any]:
        return {
            "id": self.id,
            "dialogId": self.dialog_for(viewer),
            "type": self.type,
            "name": self.name,
            "entityType": "",
            "owner": min(self.members) if self.members else 0,
            "avatar": "",
            "color": "#ab7761",
        }


@dataclass
class Message:
    id: int
    chat_id: int
    author_id: int
    text: str
    date: float
    uuid: str = ""
    system: bool = False
    params: dict[str, Any] = field(default_factory=dict)
    """``ATTACH``, ``KEYBOARD``, ``FILE_ID`` as the bot sent them."""
    deleted: bool = False

    def describe(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "chatId": self.chat_id,
            "authorId": 0 if self.system else self.author_id,
            "date": iso(self.date),
            "text": self.text,
            "isSystem": self.system,
            "uuid": self.uuid,
            "forward": None,
            "params": self.params,
            "viewedByOthers": False,
        }


@dataclass
class StoredFile:
    id: int
    chat_id: int
    name: str
    content: bytes
    author_id: int

    @property
    def extension(self) -> str:
        return self.name.rsplit(".", 1)[-1].lower() if "." in self.name else ""


class ImbotPortal:
    """Bots, chats, messages and files of one emulated portal, plus the test controls."""

    def __init__(self, state: PortalState) -> None:
        self._state = weakref.ref(state)
        self.bots: dict[int, Bot] = {}
        self.chats: dict[int, Chat] = {}
        self.messages: dict[int, Message] = {}
        self.files: dict[int, StoredFile] = {}
        self.departments: dict[int, list[int]] = {}
        """User id → the departments events report for them (a test sets these)."""
        self.denied: set[tuple[int, int]] = set()
        """(bot id, chat id) pairs where the bot may not write (user blocked it, chat left)."""
        self.clock = time.time
        self._next_bot = BOT_USER_IDS_FROM
        self._next_chat = 1
        self._next_message = 1
        self._next_file = 1
        self._next_event = FIRST_EVENT_ID
        self._next_command = 1

    @property
    def state(self) -> PortalState:
        state = self._state()
        assert state is not None, "the portal state is gone"
        return state

    # -- ids --------------------------------------------------------------------------------

    def new_bot_id(self) -> int:
        self._next_bot += 1
        return self._next_bot - 1

    def new_command_id(self) -> int:
        self._next_command += 1
        return self._next_command - 1

    def new_file_id(self) -> int:
        self._next_file += 1
        return self._next_file - 1

    # -- chats and messages -----------------------------------------------------------------

    def private_chat(self, bot_id: int, user_id: int) -> Chat:
        """The one-to-one dialog of a person and a bot, created on first use (index.md:
        "A dialogue with the bot is created automatically")."""
        for chat in self.chats.values():
            if chat.type == "private" and chat.members == {bot_id, user_id}:
                return chat
        chat = Chat(self._next_chat, "private", {bot_id, user_id})
        self._next_chat += 1
        self.chats[chat.id] = chat
        return chat

    def group_chat(self, members: set[int], name: str = "Группа") -> Chat:
        chat = Chat(self._next_chat, "chat", set(members), name)
        self._next_chat += 1
        self.chats[chat.id] = chat
        return chat

    def chat_of_dialog(self, bot_id: int, dialog_id: str) -> Chat | None:
        """The chat a bot's ``dialogId`` names (``chat5`` or a person's id), or None."""
        if dialog_id.startswith("chat"):
            number = dialog_id.removeprefix("chat")
            return self.chats.get(int(number)) if number.isdigit() else None
        if dialog_id.isdigit() and int(dialog_id) in self.state.users:
            return self.private_chat(bot_id, int(dialog_id))
        return None

    def add_message(self, chat: Chat, author_id: int, text: str, **extra: Any) -> Message:
        message = Message(self._next_message, chat.id, author_id, text, self.clock(), **extra)
        self._next_message += 1
        self.messages[message.id] = message
        return message

    def chat_messages(self, chat_id: int) -> list[Message]:
        return [m for m in self.messages.values() if m.chat_id == chat_id and not m.deleted]

    # -- events -----------------------------------------------------------------------------

    def person(self, user_id: int) -> dict[str, Any]:
        """The User object events carry (entities.md#user)."""
        user = self.state.users.get(user_id)
        name = user.name if user is not None else f"User {user_id}"
        first, _, last = name.partition(" ")
        return {
            "id": user_id,
            "active": True,
            "name": name,
            "firstName": first,
            "lastName": last,
            "workPosition": "",
            "color": "#df532d",
            "avatar": "",
            "gender": "M",
            "birthday": "",
            "extranet": False,
            "bot": False,
            "connector": False,
            "externalAuthId": "default",
            "status": "online",
            "idle": False,
            "lastActivityDate": iso(self.clock()),
            "absent": False,
            "departments": list(self.departments.get(user_id, [1])),
            "phones": False,
            "type": "employee",
        }

    def queue_event(self, bot: Bot, kind: str, data: dict[str, Any]) -> int:
        event_id = self._next_event
        self._next_event += 1
        full = {"bot": bot.describe(), **data, "language": "ru"}
        bot.events.append(
            {"eventId": event_id, "type": kind, "date": iso(self.clock()), "data": full}
        )
        return event_id

    def sees(self, bot: Bot, chat: Chat, message: Message) -> bool:
        """Whom an event is addressed to (event-get.md "Event Types"): a private chat, a
        mention, or every message for ``personal``/``supervisor`` bots."""
        if chat.type == "private" or bot.type in {"personal", "supervisor"}:
            return True
        return f"[user={bot.id}]" in message.text.lower()

    # -- test controls ----------------------------------------------------------------------

    def bot_by_code(self, code: str) -> Bot | None:
        return next((b for b in self.bots.values() if b.code == code), None)

    def user_writes(
        self, bot_id: int, user_id: int, text: str, *, chat_id: int | None = None
    ) -> int:
        """A person writes ``text`` to the bot (privately, or in group chat ``chat_id``):
        the ``ONIMBOTV2MESSAGEADD`` event is queued for every bot that sees it. Returns the
        message id."""
        self.state.ensure_user(user_id)
        chat = self.private_chat(bot_id, user_id) if chat_id is None else self.chats[chat_id]
        message = self.add_message(chat, user_id, text)
        for bot in self.bots.values():
            if bot.id in chat.members and self.sees(bot, chat, message):
                data = self._payload(bot, chat, message, user_id)
                self.queue_event(bot, "ONIMBOTV2MESSAGEADD", data)
        return message.id

    def user_presses(self, user_id: int, message_id: int, text: str) -> int:
        """A person presses the button captioned ``text`` (or whose ``COMMAND_PARAMS`` is
        ``text``) under a bot's message: ``ONIMBOTV2COMMANDADD`` with ``context: keyboard``
        (message-keyboards.md "Command Processing"). Returns the event id."""
        message = self.messages[message_id]
        bot = self.bots[message.author_id]
        buttons = (message.params.get("KEYBOARD") or {}).get("BUTTONS") or []
        button = next(
            (
                b
                for b in buttons
                if b.get("COMMAND") and text in (b.get("TEXT"), b.get("COMMAND_PARAMS"))
            ),
            None,
        )
        if button is None:
            raise KeyError(f"no command button {text!r} under message {message_id}")
        command = str(button["COMMAND"]).lstrip("/")
        if command not in bot.commands:
            raise KeyError(f"command {command!r} is not registered for bot {bot.id}")
        chat = self.chats[message.chat_id]
        params = str(button.get("COMMAND_PARAMS") or "")
        data = self._payload(bot, chat, message, user_id)
        data["command"] = {
            "id": bot.commands[command],
            "command": f"/{command}",
            "params": params,
            "context": "keyboard",
        }
        return self.queue_event(bot, "ONIMBOTV2COMMANDADD", data)

    def sent_by(self, bot_id: int, dialog_id: str | None = None) -> list[Message]:
        """What the bot has written (in the dialog it calls ``dialog_id``), oldest first."""
        found = []
        for message in self.messages.values():
            chat = self.chats[message.chat_id]
            if message.author_id != bot_id or message.deleted:
                continue
            if dialog_id is None or chat.dialog_for(bot_id) == dialog_id:
                found.append(message)
        return found

    def file_bytes(self, file_id: int) -> bytes:
        return self.files[file_id].content

    def _payload(self, bot: Bot, chat: Chat, message: Message, user_id: int) -> dict[str, Any]:
        return {
            "message": message.describe(),
            "chat": chat.describe(bot.id),
            "user": self.person(user_id),
        }


_PORTALS: weakref.WeakKeyDictionary[PortalState, ImbotPortal] = weakref.WeakKeyDictionary()


def imbot_portal(state: PortalState) -> ImbotPortal:
    """The chat bot platform of ``state``'s portal (one per portal, made on first use)."""
    portal = _PORTALS.get(state)
    if portal is None:
        portal = _PORTALS[state] = ImbotPortal(state)
    return portal
