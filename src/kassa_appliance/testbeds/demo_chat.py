"""A person in the Bitrix24 messenger, talking to the appliance's chat bot on the emulator.

:class:`BotChat` types messages and presses buttons in one user's private dialog with the
bot (through the emulator's in-process ``imbot.v2`` controls, exactly the events a real
portal queues for ``Event.get``) and waits for what the bot answers; every line, the
person's and the bot's, can be shown as a chat transcript (:func:`transcript_lines`).
Used by ``make demo`` (:mod:`kassa_appliance.testbeds.demo_chat_run`), the end-to-end chat
tests and ``bench/chat_bots.py``.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from kassa_appliance.testbeds.bitrix24.app import Emulator
from kassa_appliance.testbeds.bitrix24.rest_imbot_state import (
    Bot,
    ImbotPortal,
    Message,
    imbot_portal,
)

POLL_SECONDS = 0.02
SETTLE_SECONDS = 0.1
"""After the first answer, how long the bot may stay quiet before its answer counts as
complete (one update may bring two messages, e.g. "Передаю чек…" and the outcome)."""
BOT_CODE = "kassa_bot"


class ChatTimeout(AssertionError):
    """The bot did not answer as expected in time (an AssertionError, so tests read it)."""


@dataclass(frozen=True)
class ChatLine:
    """One message of the dialog, as the person sees it."""

    author: str
    """``user`` or ``bot``."""
    text: str
    buttons: tuple[str, ...] = ()
    file_id: int | None = None
    message_id: int = 0


def _buttons(message: Message) -> tuple[str, ...]:
    keyboard = message.params.get("KEYBOARD") or {}
    buttons = keyboard.get("BUTTONS") if isinstance(keyboard, dict) else None
    return tuple(str(b.get("TEXT")) for b in buttons or [] if b.get("TEXT") and b.get("COMMAND"))


def line_of(message: Message, author: str) -> ChatLine:
    files = message.params.get("FILE_ID") or []
    return ChatLine(
        author,
        message.text,
        _buttons(message),
        int(files[0]) if files else None,
        message.id,
    )


@dataclass
class BotChat:
    """One person's private dialog with the bot ``code`` on ``emulator``'s portal."""

    emulator: Emulator
    user_id: int
    code: str = BOT_CODE
    on_line: Callable[[ChatLine], None] | None = None
    """Called with each line as it happens (the demo prints the transcript live)."""
    lines: list[ChatLine] = field(default_factory=list)
    _seen: set[int] = field(default_factory=set)

    @property
    def portal(self) -> ImbotPortal:
        return imbot_portal(self.emulator.state)

    @property
    def bot(self) -> Bot:
        bot = self.portal.bot_by_code(self.code)
        if bot is None:
            raise ChatTimeout(f"no bot {self.code!r} is registered on the portal")
        return bot

    async def wait_for_bot(self, timeout: float = 30.0) -> Bot:
        await wait_for(lambda: self.portal.bot_by_code(self.code) is not None, timeout, "the bot")
        self.catch_up()
        return self.bot

    def bot_messages(self) -> list[Message]:
        """Everything the bot wrote in this dialog, oldest first."""
        return self.portal.sent_by(self.bot.id, str(self.user_id))

    def images(self) -> list[ChatLine]:
        return [line_of(m, "bot") for m in self.bot_messages() if m.params.get("FILE_ID")]

    def file_bytes(self, file_id: int) -> bytes:
        return self.portal.file_bytes(file_id)

    def catch_up(self) -> list[ChatLine]:
        """The bot's messages not seen yet, recorded as lines."""
        new = [m for m in self.bot_messages() if m.id not in self._seen]
        lines = []
        for message in new:
            self._seen.add(message.id)
            lines.append(self._record(line_of(message, "bot")))
        return lines

    def _record(self, line: ChatLine) -> ChatLine:
        self.lines.append(line)
        if self.on_line is not None:
            self.on_line(line)
        return line

    # -- the person ------------------------------------------------------------------------

    async def write(self, text: str, *, until: str | None = None, timeout: float = 30.0) -> str:
        """Type ``text``; the bot's answer (its new messages joined), waiting until one of
        them contains ``until`` (or, without it, for any answer)."""
        self.catch_up()
        message_id = self.portal.user_writes(self.bot.id, self.user_id, text)
        self._record(ChatLine("user", text, message_id=message_id))
        return await self.answer(until, timeout, f"the answer to {text!r}")

    def button_message(self, caption: str) -> tuple[Message, str]:
        """The newest bot message with a button whose caption starts with ``caption``."""
        for message in reversed(self.bot_messages()):
            for text in _buttons(message):
                if text.startswith(caption):
                    return message, text
        raise ChatTimeout(f"no button {caption!r} in the dialog")

    async def press(self, caption: str, *, until: str | None = None, timeout: float = 30.0) -> str:
        """Press the newest button whose caption starts with ``caption``; the answer."""
        self.catch_up()
        message, text = self.button_message(caption)
        self.portal.user_presses(self.user_id, message.id, text)
        self._record(ChatLine("user", f"[{text}]", message_id=message.id))
        return await self.answer(until, timeout, f"the answer to [{text}]")

    def press_again(self, message_id: int, caption: str) -> None:
        """Press a button of an older message (a repeated tap); answers are not awaited."""
        self.portal.user_presses(self.user_id, message_id, caption)
        self._record(ChatLine("user", f"[{caption}] (again)", message_id=message_id))

    async def answer(self, until: str | None, timeout: float, what: str) -> str:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        got: list[ChatLine] = []
        quiet_since: float | None = None
        while True:
            new = self.catch_up()
            got.extend(new)
            now = loop.time()
            if new:
                quiet_since = now
            done = any(until in line.text for line in got) if until else bool(got)
            if done and quiet_since is not None and now - quiet_since >= SETTLE_SECONDS:
                return "\n".join(line.text for line in got)
            if now >= deadline:
                said = " | ".join(line.text[:80] for line in got) or "nothing"
                wanted = f" containing {until!r}" if until else ""
                raise ChatTimeout(f"{what}{wanted} never came within {timeout:g} s; got {said}")
            await asyncio.sleep(POLL_SECONDS)


async def wait_for(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() >= deadline:
            raise ChatTimeout(f"{what} never came within {timeout:g} s")
        await asyncio.sleep(POLL_SECONDS)


def transcript_lines(line: ChatLine, *, user: str = "Техник", bot: str = "Бот") -> list[str]:
    """A line of the dialog as a terminal transcript: the speaker, the text, the buttons."""
    who = user if line.author == "user" else bot
    text_lines = line.text.splitlines() or [""]
    if line.file_id is not None:
        text_lines = ["[QR-код, картинка]", *text_lines]
    if line.buttons:
        text_lines.append("   ".join(f"[{b}]" for b in line.buttons))
    head = f"{who}:".ljust(8)
    return [head + text_lines[0], *(" " * 8 + rest for rest in text_lines[1:])]


def zbar_decode(png: bytes) -> str | None:
    """The text of the QR code in ``png`` read by ``zbarimg`` (zbar-tools), or None when
    zbarimg is not installed."""
    if shutil.which("zbarimg") is None:
        return None
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "qr.png"
        path.write_bytes(png)
        out = subprocess.run(
            ["zbarimg", "--quiet", "--raw", str(path)],
            capture_output=True,
            text=True,
            check=False,
            timeout=30,
        )
    return out.stdout.strip() if out.returncode == 0 else ""
