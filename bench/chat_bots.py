"""The daemon's memory with both chat bots on (`python -m bench.chat_bots`).

The real daemon (``kassa-appliance run``, a process) on the zero-delay simulator, paired
with the Bitrix24 emulator and its push server, hosting the Bitrix24 chat bot (imbot.v2
fetch mode) **and** the MAX bot (long polling the MAX Bot API emulator). A few whole
conversations on each messenger — positions, [Пробить], payment, the electronic-copy
question, the place, the preview, [Пробить], until the QR image is in the chat — then the
daemon's ``VmRSS`` (and its peak, ``VmHWM``) from ``/proc/<pid>/status``. The same
appliance with both bots off gives the baseline. Goal: ≤ 60 MB with both bots on.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from kassa_appliance.testbeds.demo_chat import BotChat
from kassa_appliance.testbeds.demo_chat_run import converse
from kassa_appliance.testbeds.demo_stack import ApplianceStack, StackSettings
from kassa_appliance.testbeds.maxapi.server import MaxApiEmulator
from kassa_appliance.testbeds.maxapi.user import EmulatedMaxUser

TARGET_RSS_MB = 60.0
DEFAULT_CONVERSATIONS = 3
TOKEN = "bench-chat-bots-token-0123456789"
B24_USER = 17
MAX_USER = 4123456
CASHIER = "Мастер Иванов И.И.:500100732259"
SETTLE_SECONDS = 1.0
"""Idle time before a reading, so what a conversation allocated has been settled."""


def status_kib(pid: int, field: str) -> int | None:
    """A ``/proc/<pid>/status`` figure in KiB (``VmRSS``, ``VmHWM``), or None."""
    try:
        text = Path(f"/proc/{pid}/status").read_text(encoding="ascii")
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    return None


def bots(max_url: str) -> dict[str, Any]:
    return {
        "b24bot": {
            "enabled": True,
            "active_poll_seconds": 1,
            "idle_poll_seconds": 1,
            "cashiers": f"{B24_USER}={CASHIER}",
        },
        "maxbot": {
            "enabled": True,
            "token": TOKEN,
            "api_url": max_url,
            "poll_timeout": 5,
            "cashiers": f"{MAX_USER}={CASHIER}",
        },
    }


async def max_conversation(user: EmulatedMaxUser, number: int) -> None:
    """Positions, [Пробить], cash, no electronic copy, the place, the preview, [Пробить]."""
    before = len(await user.bot_messages())
    await user.say(f"Замена смесителя {1500 + number}\nКран 2 х 350")
    await user.wait_for_messages(before + 1)
    await user.tap("Пробить")
    await user.tap("Наличными")
    await user.tap("Без электронного чека")
    before = len(await user.bot_messages())
    await user.say("г. Москва, ул. Ленина, д. 5")
    await user.wait_for_messages(before + 1)
    await user.tap("Пробить")
    await user.wait_for_receipts(number + 1)


async def reading(stack: ApplianceStack) -> tuple[float, float]:
    """(VmRSS, VmHWM) of the daemon in MB after a moment of rest."""
    assert stack.daemon is not None
    await asyncio.sleep(SETTLE_SECONDS)
    pid = stack.daemon.pid
    return (status_kib(pid, "VmRSS") or 0) / 1024, (status_kib(pid, "VmHWM") or 0) / 1024


async def measure(conversations: int, with_max: bool) -> dict[str, float]:
    figures: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="bench-chat-bots-") as folder:
        root = Path(folder)
        async with ApplianceStack(StackSettings(root=root / "off", kassa_id="office-1")) as off:
            figures["off"], _ = await reading(off)
        emulator = MaxApiEmulator(TOKEN).start()
        try:
            sections: Mapping[str, Any] = bots(emulator.url)
            if not with_max:
                sections = {"b24bot": sections["b24bot"]}
            settings = StackSettings(root=root / "on", kassa_id="office-1", sections=sections)
            async with ApplianceStack(settings) as stack:
                assert stack.emulator is not None
                figures["start"], _ = await reading(stack)
                chat = BotChat(stack.emulator, B24_USER)
                await chat.wait_for_bot()
                user = EmulatedMaxUser(emulator.url, MAX_USER)
                try:
                    for number in range(conversations):
                        await converse(chat)
                        if with_max:
                            await max_conversation(user, number)
                finally:
                    await user.aclose()
                assert len(chat.images()) == conversations, "a Bitrix24 receipt went missing"
                figures["on"], figures["peak"] = await reading(stack)
        finally:
            emulator.stop()
    return figures


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--conversations", type=int, default=DEFAULT_CONVERSATIONS)
    parser.add_argument(
        "--b24-only", action="store_true", help="only the Bitrix24 bot (MAX left off)"
    )
    args = parser.parse_args(argv)
    with_max = not args.b24_only
    figures = asyncio.run(measure(args.conversations, with_max))
    which = "both chat bots" if with_max else "the Bitrix24 chat bot"
    verdict = "ok" if figures["on"] <= TARGET_RSS_MB else "OVER"
    print(
        f"chat bots: daemon RSS with {which} on, after {args.conversations} receipt "
        f"conversation(s) per bot"
    )
    print(
        f"  VmRSS {figures['on']:5.1f} MB (peak VmHWM {figures['peak']:5.1f} MB; "
        f"{figures['start']:5.1f} MB right after start) — goal ≤ {TARGET_RSS_MB:.0f} MB: {verdict}"
    )
    print(f"  the same appliance with the bots off: VmRSS {figures['off']:5.1f} MB")
    sys.stdout.flush()


if __name__ == "__main__":
    main(sys.argv[1:])
