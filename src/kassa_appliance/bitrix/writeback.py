"""Writing outcomes back to KASSAJOB items: bounded values, batches sized by bytes, and
one refused outcome never holding up the others.

Bitrix24 documents at most 50 commands per ``batch`` but no request-size limit; a portal
sits behind a web server that refuses bodies over its own limit (the emulator answers
HTTP 413 over 8 MiB, like nginx's ``client_max_body_size``), and a property value is kept
in a text column. So:

* every ERROR message and RESULT is capped (:data:`MESSAGE_LIMIT` characters, cut with
  "…" and the full length named) and lone surrogates are escaped, so any value can be
  encoded;
* a batch carries at most :data:`MAX_BATCH_COMMANDS` commands and
  :data:`MAX_BATCH_BYTES` of encoded commands;
* a batch the portal refuses for what it carries (HTTP 4xx other than auth and rate
  limits) is split: each command is sent alone; a command still refused alone is sent
  once more in its short form (message cut to :data:`SHORT_MESSAGE_LIMIT` characters), and
  if even that is refused it is given up (logged, listed in ``status``) until the next
  start. Unreachable portals, 5xx and rate limits are retried as before.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any

from kassa_appliance.bitrix.budget import Priority
from kassa_appliance.bitrix.errors import (
    AccessDenied,
    AuthError,
    BitrixError,
    InvalidArgument,
    NotFound,
    RateLimited,
    TransportError,
)
from kassa_appliance.bitrix.phpquery import build_query
from kassa_appliance.bitrix.protocol import (
    JOB_ENTITY,
    STATE_CANCELLED,
    STATE_DONE,
    STATE_FAILED,
    dumps,
)
from kassa_appliance.bitrix.rest import RestClient
from kassa_appliance.fiscal.journal import CANCELLED_CODE, Job, JobState

log = logging.getLogger(__name__)

MAX_BATCH_COMMANDS = 50
"""Bitrix24's documented limit of commands in one ``batch``."""
MAX_BATCH_BYTES = 256 * 1024
"""Encoded commands in one write-back request: far below any web server's body limit."""
MESSAGE_LIMIT = 8_000
"""Characters of an ERROR message (or of a RESULT's raw answer) written back: room for
20 problems of a validation error; at most 32 KB of UTF-8, within a 64 KB text column."""
SHORT_MESSAGE_LIMIT = 1_000
"""Characters of an ERROR message in the short form, sent when the portal refused the
full one."""
CODE_LIMIT = 100


def encodable(text: str) -> str:
    """``text`` with lone surrogates escaped as ``\\udXXX``, so it can be sent as UTF-8."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text


def cap(text: str, limit: int) -> str:
    """``text`` cut to about ``limit`` characters with "…" and the full length named."""
    text = encodable(text)
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… (cut, {len(text):,} characters in all)"


def outcome_properties(job: Job, *, short: bool = False) -> dict[str, str]:
    """PROPERTY_VALUES for a finished job: STATE=done + RESULT, STATE=failed + ERROR, or
    STATE=cancelled + ERROR for a cancelled one. ``short`` gives the short form."""
    limit = SHORT_MESSAGE_LIMIT if short else MESSAGE_LIMIT
    if job.state in (JobState.FISCALIZED, JobState.REPORTED):
        result: dict[str, Any] = {}
        if isinstance(job.result, dict):
            params = job.result.get("fiscalParams")
            result["fiscalParams"] = params if isinstance(params, dict) else None
            if not isinstance(params, dict):
                result["result"] = job.result
        if job.qr:
            result["qr"] = job.qr
        text = encodable(dumps(result))
        if len(text) > limit and "result" in result:  # a raw answer: quoted, shortened
            result["result"] = cap(dumps(result["result"]), limit)
            text = encodable(dumps(result))
        return {"STATE": STATE_DONE, "RESULT": text, "ERROR": ""}
    code = job.error_code or "failed"
    error = {
        "code": cap(code, CODE_LIMIT),
        "message": cap(job.error_message or "job failed", limit),
    }
    state = STATE_CANCELLED if code == CANCELLED_CODE else STATE_FAILED
    return {"STATE": state, "ERROR": dumps(error), "RESULT": ""}


def is_refusal(error: BitrixError) -> bool:
    """The portal refused the request for what it carries (too large, a bad value):
    sending it again unchanged will not help. Auth, rate limits, 5xx and an unreachable
    portal are not refusals — they are retried."""
    if isinstance(error, RateLimited | AuthError | AccessDenied | TransportError | NotFound):
        return False
    if error.status is not None:
        return 400 <= error.status < 500 and error.status not in {401, 403, 408, 429}
    return isinstance(error, InvalidArgument)


class Delivery(Enum):
    WRITTEN = "written"
    VANISHED = "vanished"
    """The item no longer exists in Bitrix24 (deleted): nothing to write to."""
    REFUSED = "refused"
    """The portal refused it alone and in its short form: given up until the next start."""


@dataclass
class Command:
    """One command of a write-back batch: an ``entity.item.update`` of a KASSAJOB (or
    KASSADEV) item, or the state event that goes last in its batch."""

    kind: str
    """``accept`` (STATE=accepted), ``outcome`` (a finished job), ``note`` (a direct
    answer by item id: a poison item, a refused cancel), ``heartbeat`` (the KASSADEV item),
    ``event`` (``pull.application.event.add``: the state changes of its batch)."""
    key: str
    """The job id, ``item <id>`` for a note, the kassa id for a heartbeat or an event."""
    item_id: int
    values: dict[str, str]
    shorter: Callable[[], dict[str, str]] | None = None
    """The short form of ``values``, if there is one."""
    entity: str = JOB_ENTITY
    event: dict[str, Any] | None = None
    """For ``event``: the PARAMS published."""
    on_settled: Callable[[Delivery], None] | None = None
    """Called with the outcome once the command is settled (the heartbeat's bookkeeping)."""

    @property
    def method(self) -> str:
        return EVENT_METHOD if self.kind == "event" else "entity.item.update"

    @property
    def params(self) -> dict[str, Any]:
        if self.kind == "event":
            return {"COMMAND": STATE_EVENT_COMMAND, "PARAMS": self.event or {}}
        return {"ENTITY": self.entity, "ID": self.item_id, "PROPERTY_VALUES": self.values}

    @property
    def request(self) -> tuple[str, dict[str, Any]]:
        return (self.method, self.params)

    @property
    def encoded_size(self) -> int:
        """Bytes of this command inside a ``batch`` body (key and quotes included)."""
        return len(self.method) + 1 + len(build_query(self.params)) + 16

    @property
    def state(self) -> str | None:
        """The STATE this command writes to a KASSAJOB item, if any."""
        if self.entity != JOB_ENTITY or self.kind == "event":
            return None
        return self.values.get("STATE")


EVENT_METHOD = "pull.application.event.add"
STATE_EVENT_COMMAND = "kassa.state"
"""The app event published with the state changes a write-back batch made: params
``{"kassa": id, "jobs": [{"job", "item", "state"}, …]}`` (a doorbell for the app: it
reads the stored item)."""


def state_event(kassa_id: str, batch: Sequence[Command]) -> Command | None:
    """The event telling the app about the KASSAJOB states written by ``batch``."""
    jobs = [
        {"job": c.key if c.kind != "note" else "", "item": c.item_id, "state": c.state}
        for c in batch
        if c.state is not None
    ]
    if not jobs:
        return None
    return Command("event", kassa_id, 0, {}, event={"kassa": kassa_id, "jobs": jobs})


def pack(commands: Sequence[Command], *, reserve: int = 0) -> list[list[Command]]:
    """Split ``commands``, in order, into batches within the count and byte budgets,
    keeping ``reserve`` places (and their share of bytes) free in each batch."""
    batches: list[list[Command]] = []
    current: list[Command] = []
    size = 0
    limit = MAX_BATCH_COMMANDS - reserve
    byte_limit = MAX_BATCH_BYTES - reserve * EVENT_RESERVE_BYTES
    for command in commands:
        length = command.encoded_size
        if current and (len(current) >= limit or size + length > byte_limit):
            batches.append(current)
            current, size = [], 0
        current.append(command)
        size += length
    if current:
        batches.append(current)
    return batches


EVENT_RESERVE_BYTES = 8 * 1024
"""Room kept in a batch for its state event (50 entries of about 100 bytes)."""


Delivered = Callable[[Command, Delivery, str], None]
"""Called once per command as it is settled: (command, delivery, reason if refused)."""


EventFor = Callable[[Sequence[Command]], Command | None]

_PRIORITIES = {"outcome": Priority.RESULT, "note": Priority.RESULT, "accept": Priority.JOB}


def batch_priority(batch: Sequence[Command]) -> Priority:
    """A batch waits for the REST budget like its most urgent command: a fiscal result
    first, an accepted mark next, a heartbeat on its own last."""
    return min((_PRIORITIES.get(c.kind, Priority.HEARTBEAT) for c in batch), default=Priority.JOB)


async def write_back(
    rest: RestClient,
    commands: Sequence[Command],
    delivered: Delivered,
    *,
    event_for: EventFor | None = None,
) -> None:
    """Send ``commands`` in batches, calling ``delivered`` for each settled one; with
    ``event_for``, each batch ends with the event it returns for that batch (Bitrix24
    runs a batch in order, so the event follows the writes it announces). Raises the
    first error that is not a refusal (after settling the rest of its batch), so the
    caller backs off and tries the unsettled commands again."""
    for batch in pack(commands, reserve=1 if event_for else 0):
        event = event_for(batch) if event_for else None
        sent = [*batch, event] if event is not None else list(batch)
        try:
            items = await rest.batch(
                [command.request for command in sent], priority=batch_priority(batch)
            )
        except BitrixError as error:
            if not is_refusal(error):
                raise
            log.warning(
                "Bitrix24 refused a write-back of %d command(s) (%s); sending them one by one",
                len(batch),
                error,
            )
            for command in batch:
                await _send_alone(rest, command, delivered)
            continue
        retry: BitrixError | None = None
        for command, item in zip(sent, items, strict=True):
            if command.kind == "event":
                if item.error is not None:  # a hint for the app: never worth a retry
                    log.info("state event not published: %s", item.error)
            elif item.error is None:
                delivered(command, Delivery.WRITTEN, "")
            elif isinstance(item.error, NotFound):
                delivered(command, Delivery.VANISHED, str(item.error))
            elif is_refusal(item.error):
                await _send_alone(rest, command, delivered)
            else:
                retry = retry or item.error
        if retry is not None:
            raise retry


async def _send_alone(rest: RestClient, command: Command, delivered: Delivered) -> None:
    refusal = await _update(rest, command, command.values, delivered)
    if refusal is None:
        return
    if command.shorter is not None:
        log.warning(
            "Bitrix24 refused the write-back of %s alone (%s); sending it shortened",
            command.key,
            refusal,
        )
        refusal = await _update(rest, command, command.shorter(), delivered)
        if refusal is None:
            return
    reason = f"Bitrix24 refused the write-back even alone and shortened: {refusal}"
    log.error("%s: %s; skipped until the next start", command.key, reason)
    delivered(command, Delivery.REFUSED, reason)


async def _update(
    rest: RestClient, command: Command, values: dict[str, str], delivered: Delivered
) -> BitrixError | None:
    """One update on its own; None once settled, else the refusal."""
    try:
        await rest.result(
            "entity.item.update",
            {"ENTITY": command.entity, "ID": command.item_id, "PROPERTY_VALUES": values},
            priority=batch_priority([command]),
        )
    except NotFound as error:
        delivered(command, Delivery.VANISHED, str(error))
        return None
    except BitrixError as error:
        if not is_refusal(error):
            raise
        return error
    delivered(command, Delivery.WRITTEN, "")
    return None
