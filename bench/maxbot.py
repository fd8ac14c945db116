"""The MAX bot against the MAX Bot API emulator on loopback (zero-delay simulator).

1. **bot loop alone**: a user's message injected into the emulator → the bot's answer in
   the chat, over a held long poll (``GET /updates``), the poller, a stand-in handler and
   ``POST /messages``; once a text answer, once a QR image (``POST /uploads`` → the upload
   host → ``POST /messages`` with the image; ``attachment.not.ready`` window 0).
2. **the daemon** (``kassa-appliance run`` as a process, paired with the Bitrix24 emulator
   and its push server, ``maxbot.enabled``): whole conversations (positions, [Пробить],
   payment, no electronic copy, the preview, [Пробить]); a tap → the bot's next message,
   and **confirm → the QR image delivered in the chat** (conversation engine → KASSAJOB →
   the link → the register → reply delivery → the ``maxchat`` sender). Goal p50 ≤ 1 s.
3. **daemon RSS** after those conversations, with the MAX bot on, and the same office with
   the bot off. Goal ≤ 60 MB.
"""

from __future__ import annotations

import argparse
import asyncio
import struct
import tempfile
import time
import zlib
from pathlib import Path

import httpx

from bench.throughput import percentile
from kassa_appliance.channels.conversation.transport import Incoming
from kassa_appliance.channels.maxbot.bot import MaxBot
from kassa_appliance.channels.maxbot.settings import MaxBotConfig
from kassa_appliance.testbeds.maxapi.server import MaxApiEmulator
from kassa_appliance.testbeds.maxapi.stack import MaxOffice, MaxOfficeSettings
from kassa_appliance.testbeds.maxapi.user import EmulatedMaxUser

TOKEN = "bench-token-0123456789abcdef"
USER_ID = 4123456
DEFAULT_LOOP_ROUNDS = 40
DEFAULT_RECEIPTS = 15
TARGET_P50_MS = 1000.0
TARGET_RSS_MB = 60.0


def _png_1x1() -> bytes:
    """A 1×1 grey PNG: the bot loop's image (its size does not matter to MAX's flow)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\x00\x80"))
        + chunk(b"IEND", b"")
    )


PNG = _png_1x1()


async def bot_loop(rounds: int, image: bool, data_dir: Path) -> list[float]:
    with MaxApiEmulator(TOKEN) as emulator:
        httpx.post(f"{emulator.url}/_emulator/faults", json={"attachment_ready_after": 0})
        config = MaxBotConfig(enabled=True, token=TOKEN, api_url=emulator.url, poll_timeout=30)
        bot = MaxBot(config, data_dir)

        async def answer(incoming: Incoming) -> None:
            key = incoming.update_id
            if image:
                await bot.transport.send_image(incoming.chat_id, PNG, caption="Чек", key=key)
            else:
                await bot.transport.send_text(incoming.chat_id, "Итого 1500,00", key=key)

        bot.handle = answer
        task = asyncio.create_task(bot.run())
        user = EmulatedMaxUser(emulator.url, USER_ID)
        times: list[float] = []
        for index in range(rounds + 1):
            await asyncio.sleep(0.6)  # the poll is held, as between two messages of a person
            started = time.monotonic()
            await user.say(f"Пробить {index}")
            await user.wait_for_messages(index + 1)
            if index:  # the first round also opens the connection
                times.append(time.monotonic() - started)
        await user.aclose()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await bot.aclose()
    return times


async def daemon_conversations(root: Path, receipts: int) -> dict[str, object]:
    settings = MaxOfficeSettings(root, TOKEN, f"{USER_ID}=Мастер Иванов И.И.")
    taps: list[float] = []
    confirms: list[float] = []
    async with MaxOffice(settings) as office:
        user = EmulatedMaxUser(office.max_url, USER_ID)
        for index in range(receipts + 1):
            await user.say(f"Замена смесителя {1000 + index}")
            for caption in ("Пробить", "Наличными", "Без электронного чека"):
                await asyncio.sleep(0.3)
                started = time.monotonic()
                await user.tap(caption)
                taps.append(time.monotonic() - started)
            await asyncio.sleep(0.3)
            started = time.monotonic()
            await user.tap("Пробить")
            await user.wait_for_receipts(index + 1)
            if index:
                confirms.append(time.monotonic() - started)
        await asyncio.sleep(2.0)
        rss = (office.rss_kib() or 0) / 1024
        await user.aclose()
    off_settings = MaxOfficeSettings(root / "off", TOKEN, "1=x", bot_enabled=False)
    async with MaxOffice(off_settings) as office:
        await asyncio.sleep(3.0)
        rss_off = (office.rss_kib() or 0) / 1024
    return {"taps": taps[3:], "confirms": confirms, "rss": rss, "rss_off": rss_off}


def _line(label: str, times: list[float], goal: float | None = None) -> str:
    p50, p99 = percentile(times, 0.5) * 1000, percentile(times, 0.99) * 1000
    verdict = (
        "" if goal is None else f"   (goal p50 ≤ {goal:.0f} ms: {'ok' if p50 <= goal else 'OVER'})"
    )
    return f"  {label:<34} p50 {p50:6.0f} ms   p99 {p99:6.0f} ms{verdict}"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=DEFAULT_LOOP_ROUNDS)
    parser.add_argument("--receipts", type=int, default=DEFAULT_RECEIPTS)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-maxbot-") as tmp:
        root = Path(tmp)
        print(f"maxbot: bot loop alone ({args.rounds} rounds), update → answer in the chat")
        for image in (False, True):
            times = asyncio.run(bot_loop(args.rounds, image, root / f"loop-{image}"))
            print(_line("QR image" if image else "text", times))
        figures = asyncio.run(daemon_conversations(root / "office", args.receipts))
        print(f"maxbot: the daemon, {args.receipts} receipts from a MAX chat")
        print(_line("tap → the bot's next message", figures["taps"]))  # type: ignore[arg-type]
        print(_line("confirm → QR image in the chat", figures["confirms"], TARGET_P50_MS))  # type: ignore[arg-type]
        rss, off = figures["rss"], figures["rss_off"]
        verdict = "ok" if float(rss) <= TARGET_RSS_MB else "OVER"  # type: ignore[arg-type]
        print(
            f"  daemon RSS with the MAX bot on {rss:5.1f} MB, the same office with it off "
            f"{off:5.1f} MB (goal ≤ {TARGET_RSS_MB:.0f} MB: {verdict})"
        )


if __name__ == "__main__":
    main()
