"""What the Push&Pull client does with the records it receives (bitrix24-notes.md §1.5–§1.7).

:class:`PullDispatcher` owns everything after a frame is parsed: duplicate suppression of the
last ``capacity`` mids (so a history replay after a reconnect is not delivered twice), the
last mid for ``mid=`` resume, JSON-RPC ``mack:<mid>`` acks, the ``pull`` system commands
(``channel_expire``, ``config_expire``, ``server_restart``) turned into an
:class:`ActionOutcome`, the API revision warning, and calling the application's handler
without letting its errors break the connection. :class:`Outcome` / :class:`ActionOutcome`
are how a connection ended and what the client does next; the close codes are jssdk's
``CloseReasons``.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from websockets.asyncio.client import ClientConnection

from kassa_appliance.bitrix.pull_config import REVISION, PullConfig
from kassa_appliance.bitrix.pull_frames import PullMessage, Record

# The client's logger: these records belong to (and are filtered as) the Push&Pull client.
log = logging.getLogger("kassa_appliance.bitrix.pull")

SYSTEM_MODULE = "pull"

# Close codes (jssdk CloseReasons).
CONFIG_REPLACED = 3000
CHANNEL_EXPIRED = 3001
SERVER_RESTARTED = 3002
CONFIG_EXPIRED = 3003
STUCK = 3005
WRONG_CHANNEL_ID = 4010

MessageHandler = Callable[[PullMessage], Awaitable[None]]


@dataclass(frozen=True)
class Outcome:
    """How a connection ended and what to do next."""

    reason: str
    refetch: bool = False
    failure: bool = True
    delay: tuple[float, float] | None = None
    """A random wait instead of (or on top of, for failures) the back-off."""
    config: PullConfig | None = None
    """A replacement config (``channel_expire`` with ``new_channel``)."""
    stable: bool = False


@dataclass(frozen=True)
class ActionOutcome(Outcome):
    """An outcome we cause ourselves, closing the connection with ``code``."""

    code: int = 1000


def stronger(current: ActionOutcome | None, new: ActionOutcome | None) -> ActionOutcome | None:
    """Of two actions demanded by one frame, fetching the config wins over a reconnect."""
    if current is None:
        return new
    if new is None:
        return current
    return new if new.refetch and not current.refetch else current


class SeenMids:
    """The last ``capacity`` mids, for duplicate suppression with bounded memory."""

    def __init__(self, capacity: int) -> None:
        self._capacity = capacity
        self._mids: OrderedDict[str, None] = OrderedDict()

    def add(self, mid: str) -> bool:
        """Remember ``mid``; ``False`` if it was already seen."""
        if mid in self._mids:
            return False
        self._mids[mid] = None
        if len(self._mids) > self._capacity:
            self._mids.popitem(last=False)
        return True


class PullDispatcher:
    """Delivers parsed records: dedup, system commands, app messages, acks.

    ``on_mid`` is told every new mid (the client records it in its status);
    ``server_restart_delay`` is the random wait after ``config_expire`` / ``server_restart``.
    """

    def __init__(
        self,
        on_message: Callable[[PullMessage], None],
        *,
        on_mid: Callable[[str], None],
        server_restart_delay: tuple[float, float],
        dedup_capacity: int,
    ) -> None:
        self._on_message = on_message
        self._on_mid = on_mid
        self._server_restart_delay = server_restart_delay
        self._seen = SeenMids(dedup_capacity)
        self._warned_revisions: set[int] = set()
        self.last_mid: str | None = None
        """The newest mid received, for ``mid=`` history resume."""

    async def dispatch(
        self,
        records: list[Record],
        connection: ClientConnection,
        config: PullConfig,
        *,
        ack: bool | None = None,
    ) -> ActionOutcome | None:
        """Deliver ``records``; ``ack`` (default: the config is JSON-RPC) sends ``mack``."""
        ack = config.json_rpc if ack is None else ack
        action: ActionOutcome | None = None
        for record in records:
            if record.mid is not None:
                if not self._seen.add(record.mid):
                    log.debug("push: duplicate message %s skipped", record.mid)
                    continue
                self.last_mid = record.mid
                self._on_mid(record.mid)
            if record.message is None:
                log.warning("push: ignoring a malformed record: %s", record.problem)
            elif record.message.module_id == SYSTEM_MODULE:
                action = stronger(action, self._system_command(record.message, config))
            else:
                self.check_revision(record.message.extra.get("revision_web"), "message")
                self._on_message(record.message)
            if ack and record.mid is not None:
                await connection.send(f"mack:{record.mid}")
        return action

    def _system_command(self, message: PullMessage, config: PullConfig) -> ActionOutcome | None:
        command = message.command.upper()
        if command == "CHANNEL_EXPIRE":
            if message.params.get("action") == "reconnect":
                replaced = config.with_new_channel(message.params.get("new_channel"))
                if replaced is not None:
                    return ActionOutcome(
                        "channel replaced by channel_expire; reconnecting",
                        code=CONFIG_REPLACED,
                        failure=False,
                        config=replaced,
                    )
            return ActionOutcome(
                "channel expired; fetching the config again",
                code=CHANNEL_EXPIRED,
                refetch=True,
                failure=False,
            )
        if command in ("CONFIG_EXPIRE", "SERVER_RESTART"):
            return ActionOutcome(
                f"{command.lower()} received; fetching the config again",
                code=CONFIG_EXPIRED if command == "CONFIG_EXPIRE" else SERVER_RESTARTED,
                refetch=True,
                failure=False,
                delay=self._server_restart_delay,
            )
        log.debug("push: ignoring system command %s", message.command)
        return None

    def check_revision(self, revision: Any, where: str) -> None:
        """Warn once per revision other than ours; a mismatch is never fatal."""
        if not isinstance(revision, int) or revision <= 0 or revision == REVISION:
            return
        if revision not in self._warned_revisions:
            self._warned_revisions.add(revision)
            log.warning(
                "push: %s has API revision %d, this client speaks %d; continuing",
                where,
                revision,
                REVISION,
            )


class DeliveryQueue:
    """Application messages on their way to the handler: the receive loop only
    makes :meth:`put` calls (no await), :meth:`run` calls the handler one message at a time, in
    order, so a slow handler never holds up reading the next frame (pings, acks, system
    commands). Bounded: past ``capacity`` the oldest message is dropped, counted, and
    ``on_overflow`` is called (the link then reconciles: a doorbell is only a hint)."""

    def __init__(
        self,
        handler: MessageHandler,
        *,
        capacity: int = 1000,
        on_overflow: Callable[[], None] | None = None,
    ) -> None:
        self._handler = handler
        self._capacity = capacity
        self._on_overflow = on_overflow
        self._queue: deque[PullMessage] = deque()
        self._ready = asyncio.Event()
        self.dropped = 0

    def __len__(self) -> int:
        return len(self._queue)

    def put(self, message: PullMessage) -> None:
        self._queue.append(message)
        if len(self._queue) > self._capacity:
            self._queue.popleft()
            self.dropped += 1
            if self.dropped == 1 or self.dropped % self._capacity == 0:
                log.warning("push: %d message(s) dropped, the handler is behind", self.dropped)
            if self._on_overflow is not None:
                self._on_overflow()
        self._ready.set()

    async def run(self) -> None:
        while True:
            await self._ready.wait()
            self._ready.clear()
            while self._queue:
                await call_safely(self._handler(self._queue.popleft()), "on_message")


async def call_safely(call: Awaitable[None], name: str) -> None:
    """Await an application handler; its failure is logged and the connection kept."""
    try:
        await call
    except Exception:
        log.exception("push: the %s handler failed; the connection is kept", name)
