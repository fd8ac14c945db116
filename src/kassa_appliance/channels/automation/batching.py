"""Sends that happen together go out together: one ``batch`` for the deliveries in flight.

Reply delivery runs several sends of one kind at once (``max_in_flight_per_kind``); each
CRM send is one or two commands (the comment, the FD field or the notification). A
:class:`CommandBatcher` collects the commands of the sends that arrive within ``linger``
seconds (at most 50 commands, one Bitrix24 ``batch``) and hands each send its own answers,
so a burst of 500 printed deals costs about 500 / 8 requests instead of 500.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping, Sequence
from typing import Any

from kassa_appliance.bitrix.budget import Priority
from kassa_appliance.bitrix.rest import BATCH_LIMIT, BatchItem, RestClient

Command = tuple[str, Mapping[str, Any]]


class CommandBatcher:
    def __init__(self, rest: RestClient, *, linger: float = 0.02, priority: Priority) -> None:
        self._rest = rest
        self._linger = linger
        self._priority = priority
        self._pending: list[tuple[Sequence[Command], asyncio.Future[list[BatchItem]]]] = []
        self._flusher: asyncio.Task[None] | None = None
        self._sending: set[asyncio.Task[None]] = set()
        self.requests = 0

    async def run(self, commands: Sequence[Command]) -> list[BatchItem]:
        """The answers to ``commands`` (in order), sent with whatever else is waiting."""
        future: asyncio.Future[list[BatchItem]] = asyncio.get_running_loop().create_future()
        self._pending.append((commands, future))
        if sum(len(c) for c, _ in self._pending) >= BATCH_LIMIT:
            taken, self._pending = self._pending, []
            sending = asyncio.create_task(self._send(taken))
            self._sending.add(sending)
            sending.add_done_callback(self._sending.discard)
        elif self._flusher is None:
            self._flusher = asyncio.create_task(self._later())
        return await future

    async def _later(self) -> None:
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.sleep(self._linger)
        self._flusher = None
        taken, self._pending = self._pending, []
        await self._send(taken)

    async def _send(
        self, taken: list[tuple[Sequence[Command], asyncio.Future[list[BatchItem]]]]
    ) -> None:
        if not taken:
            return
        flat = [command for commands, _ in taken for command in commands]
        try:
            self.requests += 1
            answers = await self._rest.batch(flat, priority=self._priority)
        except BaseException as error:
            for _, future in taken:
                if not future.done():
                    future.set_exception(error)
            if not isinstance(error, Exception):
                raise
            return
        at = 0
        for commands, future in taken:
            if not future.done():
                future.set_result(answers[at : at + len(commands)])
            at += len(commands)
