"""Shared helpers for the reply-delivery tests: a loopback "recipient" service (aiohttp) with
faults, a test-local Sender that posts to it (a stand-in for an external service such as a
chat API), and a journal job made final the way the engine leaves it.

The recipient is deliberately naive, like a chat API: every POST creates a new message (a
sender that posted twice would show two), and messages can be looked up by the key the
sender put in them — the trace ``find_sent`` relies on.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from kassa_appliance.channels.delivery.backoff import Backoff
from kassa_appliance.channels.delivery.protocol import Delivery, DeliveryFailed, DeliveryRetry
from kassa_appliance.channels.delivery.worker import DeliveryWorker
from kassa_appliance.fiscal.journal import Job, JobState, Journal, Transition
from sample_tasks import sell

KIND = "hook"
QR = "t=20260101T1200&s=150.00&fn=9999078900012345&i=17&fp=1234567890&n=1"
FISCAL_PARAMS = {"fiscalDocumentNumber": 17, "fiscalDocumentSign": "1234567890", "total": 150.0}
FAST_BACKOFF = Backoff(base=0.05, cap=0.2)


@dataclass
class Fault:
    status: int
    error: str = "temporarily unavailable"
    retry_after: float | None = None


@dataclass
class Message:
    id: int
    chat: str
    key: str
    text: str
    at: float


@dataclass
class Recipient:
    """``POST /chats/{chat}/messages`` {key, text} → {"id"}; ``GET …?key=`` → {"id" | null}."""

    messages: list[Message] = field(default_factory=list)
    posts: list[tuple[float, str, int]] = field(default_factory=list)
    """Every POST: (time, chat, HTTP status answered)."""
    lookups: list[tuple[str, str]] = field(default_factory=list)
    faults: dict[str, list[Fault]] = field(default_factory=dict)
    """Per chat, answers given before the next successful POST (popped in order)."""
    delays: dict[str, float] = field(default_factory=dict)
    """Per chat, seconds a POST takes to answer."""
    url: str = ""
    _runner: web.AppRunner | None = None

    def for_chat(self, chat: str) -> list[Message]:
        return [m for m in self.messages if m.chat == chat]

    async def _post(self, request: web.Request) -> web.Response:
        chat = request.match_info["chat"]
        body = await request.json()
        delay = self.delays.get(chat, 0.0)
        if delay:
            await asyncio.sleep(delay)
        queue = self.faults.get(chat) or []
        if queue:
            fault = queue.pop(0)
            self.posts.append((time.monotonic(), chat, fault.status))
            headers = {} if fault.retry_after is None else {"Retry-After": f"{fault.retry_after}"}
            return web.json_response({"error": fault.error}, status=fault.status, headers=headers)
        message = Message(len(self.messages) + 1, chat, str(body["key"]), str(body["text"]), 0.0)
        message.at = time.monotonic()
        self.messages.append(message)
        self.posts.append((message.at, chat, 200))
        return web.json_response({"id": message.id})

    async def _find(self, request: web.Request) -> web.Response:
        chat = request.match_info["chat"]
        key = request.query.get("key", "")
        self.lookups.append((chat, key))
        found = [m.id for m in self.for_chat(chat) if m.key == key]
        return web.json_response({"id": found[0] if found else None})

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/chats/{chat}/messages", self._post)
        app.router.add_get("/chats/{chat}/messages", self._find)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


def render(delivery: Delivery) -> str:
    outcome = delivery.outcome
    if outcome.state == "done":
        return f"job {outcome.job_id} done, QR {outcome.qr}"
    return f"job {outcome.job_id} {outcome.state}: {outcome.error_code} {outcome.error_message}"


class HookSender:
    """A Sender for targets ``{"kind": "hook", "chat": "<id>"}`` posting to a Recipient."""

    kind = KIND

    def __init__(self, recipient: Recipient, session: aiohttp.ClientSession) -> None:
        self._recipient = recipient
        self._session = session
        self.sent: list[Delivery] = []
        self.looked: list[Delivery] = []

    def _url(self, delivery: Delivery) -> str:
        return f"{self._recipient.url}/chats/{delivery.target['chat']}/messages"

    async def find_sent(self, delivery: Delivery) -> str | None:
        self.looked.append(delivery)
        try:
            async with self._session.get(self._url(delivery), params={"key": delivery.key}) as r:
                found = (await r.json())["id"]
        except aiohttp.ClientError as error:
            raise DeliveryRetry(f"recipient unreachable: {error}") from error
        return None if found is None else str(found)

    async def send(self, delivery: Delivery) -> str:
        self.sent.append(delivery)
        body = {"key": delivery.key, "text": render(delivery)}
        try:
            async with self._session.post(self._url(delivery), json=body) as response:
                answer = await response.json()
                status = response.status
                retry_after = response.headers.get("Retry-After")
        except aiohttp.ClientError as error:
            raise DeliveryRetry(f"recipient unreachable: {error}") from error
        if status == 200:
            return str(answer["id"])
        reason = f"recipient answered {status}: {answer.get('error')}"
        if status == 429 or status >= 500:
            raise DeliveryRetry(reason, None if retry_after is None else float(retry_after))
        raise DeliveryFailed(reason)


def finish_job(
    journal: Journal,
    job_id: str,
    targets: list[dict[str, Any]] | None,
    *,
    fail: str | None = None,
    source: str = "lan",
) -> Job:
    """A job with ``targets`` in its REPLY, made final through the journal's transitions
    (fiscalized with fiscal params and a QR, or failed with ``fail`` as the message)."""
    reply = None if targets is None else {"targets": targets}
    journal.submit(job_id, sell(), source=source, reply=reply)
    journal.transition(Transition(job_id, JobState.FISCALIZING, fd_before=16, count_attempt=True))
    if fail is not None:
        return journal.transition(
            Transition(job_id, JobState.FAILED, error_code="atol-44", error_message=fail)
        )
    return journal.transition(
        Transition(job_id, JobState.FISCALIZED, result={"fiscalParams": FISCAL_PARAMS}, qr=QR)
    )


def make_worker(path: Path, **options: Any) -> DeliveryWorker:
    settings: dict[str, Any] = {
        "kassa_id": "kassa-d",
        "backoff": FAST_BACKOFF,
        "idle_interval": 0.5,
        "remote_poll_interval": 0.1,
        "pause_after_send": None,
        "stop_grace": 0.2,
    }
    settings.update(options)
    return DeliveryWorker(path, **settings)


async def wait_until(predicate: Callable[[], bool], what: str, timeout: float = 15.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        assert loop.time() < deadline, f"{what} never happened"
        await asyncio.sleep(0.02)
