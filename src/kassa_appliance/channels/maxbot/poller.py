"""Long polling ``GET /updates`` with the marker persisted (max-notes §2.1).

The marker MAX returns points after the updates it gave; passing it back commits them. It
is written to ``<data dir>/maxbot/marker.json`` (atomically) **after** every update of the
batch was handled, so a restart resumes after the last handled batch and a crash in the
middle of one gets that batch again: the conversation engine ignores an update it has
already handled (by ``update_id``). Without a stored marker MAX gives what was not
committed yet.

Failures never stop the loop: a dropped poll, a timeout, 5xx and 429 back off (0.5 s
doubling to 30 s; a 429 pauses every request of the bot), a rejected token is logged once
and retried every minute (it needs an operator: ``snap set kassa-appliance maxbot.token``).
Polls start at least :data:`MIN_POLL_INTERVAL` apart (MAX: 300 ms minimum; about 2 polls
per second allowed).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from kassa_appliance.channels.conversation.transport import Incoming
from kassa_appliance.channels.maxbot.client import MaxClient, backoff
from kassa_appliance.channels.maxbot.errors import MaxApiError
from kassa_appliance.channels.maxbot.updates import incoming_of
from kassa_appliance.files import write_private_file

log = logging.getLogger(__name__)

MARKER_FILE = "marker.json"
MIN_POLL_INTERVAL = 0.5
TOKEN_RETRY_SECONDS = 60.0
STALE_KEYBOARD_NOTICE = "Это сообщение устарело — напишите боту ещё раз"

Handler = Callable[[Incoming], Awaitable[None]]


class MarkerStore:
    def __init__(self, directory: Path) -> None:
        self.path = directory / MARKER_FILE

    def load(self) -> int | None:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError):
            log.warning("MAX bot: %s is unreadable; polling from MAX's last commit", self.path)
            return None
        marker = data.get("marker") if isinstance(data, dict) else None
        return marker if isinstance(marker, int) and not isinstance(marker, bool) else None

    def save(self, marker: int) -> None:
        write_private_file(self.path, json.dumps({"marker": marker}) + "\n")


class UpdatePoller:
    def __init__(
        self,
        client: MaxClient,
        state_dir: Path,
        handle: Handler,
        *,
        poll_timeout: int = 30,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
    ) -> None:
        self.client = client
        self.store = MarkerStore(state_dir)
        self.marker = self.store.load()
        self._handle = handle
        self._poll_timeout = poll_timeout
        self._sleep = sleep
        self._failures = 0
        self._last_start = 0.0
        self.polls = 0
        self.handled = 0
        self.handler_errors = 0
        self.last_error: str | None = None
        self.token_rejected = False
        self.handled_event = asyncio.Event()
        """Set after every handled batch (the tests and the bench wait on it)."""

    def status(self) -> dict[str, Any]:
        return {
            "marker": self.marker,
            "polls": self.polls,
            "updates_handled": self.handled,
            "handler_errors": self.handler_errors,
            "last_error": self.last_error,
            "token_rejected": self.token_rejected,
        }

    async def run(self) -> None:
        """Poll until cancelled; an unforeseen error (a bug, a full disk writing the
        marker) is logged with its traceback and polling goes on after a back-off."""
        while True:
            try:
                wait = await self.poll_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                self._failures += 1
                wait = backoff(self._failures)
                self.last_error = "unexpected error; the traceback is in the daemon log"
                log.exception("MAX bot: polling failed unexpectedly; again in %.1f s", wait)
            if wait > 0:
                await self._sleep(wait)

    async def poll_once(self) -> float:
        """One long poll and its updates; the seconds to wait before the next one."""
        since = time.monotonic() - self._last_start
        if since < MIN_POLL_INTERVAL:
            await self._sleep(MIN_POLL_INTERVAL - since)
        self._last_start = time.monotonic()
        self.polls += 1
        try:
            updates, marker = await self.client.get_updates(self.marker, self._poll_timeout)
        except MaxApiError as error:
            return self._failed(error)
        if self._failures or self.token_rejected:
            log.info("MAX bot: polling again after %d failure(s)", self._failures)
        self._failures = 0
        self.token_rejected = False
        self.last_error = None
        for update in updates:
            await self._dispatch(update)
        if marker is not None and marker != self.marker:
            self.store.save(marker)
            self.marker = marker
        self.handled_event.set()
        return 0.0

    def _failed(self, error: MaxApiError) -> float:
        self._failures += 1
        self.last_error = str(error)
        if error.token_rejected:
            if not self.token_rejected:
                log.error(
                    "MAX bot: MAX rejected the bot token (%s); set the right one with "
                    "snap set kassa-appliance maxbot.token=…; trying again every %d s",
                    error.code,
                    TOKEN_RETRY_SECONDS,
                )
            self.token_rejected = True
            return TOKEN_RETRY_SECONDS
        wait = backoff(self._failures)
        level = logging.INFO if self._failures == 1 else logging.WARNING
        log.log(level, "MAX bot: long poll failed (%s); again in %.1f s", error, wait)
        return wait

    async def _dispatch(self, update: dict[str, Any]) -> None:
        incoming = incoming_of(update)
        if incoming is None:
            return
        try:
            if incoming.callback_id and not incoming.chat_id:
                await self.client.answer_callback(
                    incoming.callback_id, f"user:{incoming.user_id}", STALE_KEYBOARD_NOTICE
                )
                return
            await self._handle(incoming)
            self.handled += 1
        except asyncio.CancelledError:
            raise
        except Exception:
            self.handler_errors += 1
            log.exception("MAX bot: handling update %s failed; going on", incoming.update_id)
