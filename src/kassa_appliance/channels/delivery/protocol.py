"""What a reply target's sender implements, and what it is given.

A job's ``reply`` (journal column, KASSAJOB ``REPLY``) may carry ``{"targets": [...]}``;
each target is a JSON object with a ``kind`` (``b24chat``, ``maxchat``, ``crm``,
``cashbox``, ``relay``, ``outbox``…) and whatever its sender needs to find the recipient.

Exactly once, the way the fiscal core settles an ambiguous print: the worker records
"sending" durably before it calls :meth:`Sender.send`; if it died after that mark, it calls
:meth:`Sender.find_sent` before sending again, so a sender must leave a trace it can look
for (``Delivery.key`` in the message, a comment, a payload) or be idempotent on the
recipient's side (e.g. ``sale.cashbox.check.apply`` by the check's UUID).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, Protocol

OutcomeState = Literal["done", "failed", "cancelled"]


@dataclass(frozen=True, slots=True)
class Outcome:
    """The final state of a job, wherever it was printed."""

    job_id: str
    state: OutcomeState
    task: Any
    """The task as received (normally an Atol JSON task dict)."""
    result: dict[str, Any] | None = None
    """The register's fiscal result for a done job (fiscalParams…)."""
    qr: str | None = None
    """The receipt's QR string (``t=…&s=…&fn=…&i=…&fp=…&n=…``) for a done receipt."""
    error_code: str | None = None
    error_message: str | None = None
    kassa: str | None = None
    """The kassa that printed it, when known."""


@dataclass(frozen=True, slots=True)
class Delivery:
    job_id: str
    target: dict[str, Any]
    """The target object as stored in the job's REPLY (has ``kind``)."""
    key: str
    """Stable and unique per (job, target): the trace :meth:`Sender.find_sent` looks for."""
    attempt: int
    """1 for the first attempt."""
    outcome: Outcome


class DeliveryRetry(Exception):
    """A temporary failure (network, 429, 5xx): try again later, after ``retry_after``
    seconds if the service said so."""

    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after


class DeliveryFailed(Exception):
    """A failure for good (chat deleted, bot blocked, entity gone): recorded with its
    reason, shown in status, never retried."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Sender(Protocol):
    """Delivers outcomes to targets of one ``kind``."""

    kind: str

    async def find_sent(self, delivery: Delivery) -> str | None:
        """The reference (message id…) of an earlier send of this delivery, or None.

        Called only when an earlier attempt may have reached the service (the worker died
        between marking "sending" and recording the answer). May raise DeliveryRetry."""
        ...

    async def send(self, delivery: Delivery) -> str:
        """Deliver; return a reference. Raises DeliveryRetry or DeliveryFailed."""
        ...
