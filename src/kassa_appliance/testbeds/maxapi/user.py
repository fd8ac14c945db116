"""A MAX user in the emulator, as the tests, the bench and a demo drive one: writes to the
bot, taps the buttons of its latest keyboard by caption, waits for its answers and reads
the QR image of a receipt (through the emulator's ``/_emulator/`` controls)."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

WAIT_SECONDS = 60.0
POLL_SECONDS = 0.01


class EmulatedMaxUser:
    def __init__(self, emulator_url: str, user_id: int, *, first_name: str = "Иван") -> None:
        self.http = httpx.AsyncClient(base_url=emulator_url, timeout=10)
        self.user_id = user_id
        self.first_name = first_name
        self.chat_id = 0

    async def aclose(self) -> None:
        await self.http.aclose()

    async def _post(self, path: str, body: dict[str, Any] | None = None) -> Any:
        response = await self.http.post(path, json=body or {})
        response.raise_for_status()
        return response.json()

    async def bot_messages(self) -> list[dict[str, Any]]:
        if not self.chat_id:
            return []
        response = await self.http.get(f"/_emulator/chats/{self.chat_id}/messages")
        response.raise_for_status()
        return [m for m in response.json()["messages"] if m["sender"]["is_bot"]]

    async def say(self, text: str) -> dict[str, Any]:
        written = await self._post(
            f"/_emulator/users/{self.user_id}/messages",
            {"text": text, "first_name": self.first_name},
        )
        self.chat_id = int(written["chat_id"])
        return dict(written)

    async def buttons(self) -> dict[str, str]:
        """Caption → payload of the callback buttons of the bot's latest keyboard."""
        for message in reversed(await self.bot_messages()):
            for attachment in message["body"].get("attachments") or []:
                if attachment["type"] == "inline_keyboard":
                    rows = attachment["payload"]["buttons"]
                    return {b["text"]: b["payload"] for row in rows for b in row if "payload" in b}
        return {}

    async def wait_for_messages(self, count: int, timeout: float = WAIT_SECONDS) -> None:
        async with asyncio.timeout(timeout):
            while len(await self.bot_messages()) < count:
                await asyncio.sleep(POLL_SECONDS)

    async def tap(self, caption: str, timeout: float = WAIT_SECONDS) -> dict[str, Any]:
        """Press the button ``caption`` once it is there; return when the bot answered."""
        async with asyncio.timeout(timeout):
            while (payload := (await self.buttons()).get(caption)) is None:
                await asyncio.sleep(POLL_SECONDS)
        before = len(await self.bot_messages())
        pressed = await self._post(f"/_emulator/users/{self.user_id}/press", {"payload": payload})
        await self.wait_for_messages(before + 1, timeout)
        return dict(pressed)

    async def receipts(self) -> list[dict[str, Any]]:
        """The bot's messages that carry an image (receipts with their QR code)."""
        return [
            m
            for m in await self.bot_messages()
            if any(a["type"] == "image" for a in m["body"].get("attachments") or [])
        ]

    async def wait_for_receipts(self, count: int, timeout: float = WAIT_SECONDS) -> list[Any]:
        async with asyncio.timeout(timeout):
            while len(found := await self.receipts()) < count:
                await asyncio.sleep(POLL_SECONDS)
        return found

    async def image_of(self, message: dict[str, Any]) -> bytes:
        image = next(a for a in message["body"]["attachments"] if a["type"] == "image")
        response = await self.http.get(image["payload"]["url"])
        response.raise_for_status()
        return response.content
