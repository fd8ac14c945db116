"""The ``outbox`` reply target: a LAN job mirrored into Bitrix24's KASSAJOB storage.

So the CRM stays the one store of every receipt, a job that came over the LAN API is
written, once it is final, as a KASSAJOB record of its own: NAME = the job id
(``lan:…``/``kkm:…``), KASSA = this kassa, SOURCE ``lan``, TASK, and STATE/RESULT/ERROR
exactly as the link writes a Bitrix24 job's outcome (``done`` + RESULT with fiscalParams
and the QR string, ``failed``/``cancelled`` + ERROR ``{code, message}``). The record is
born final, so no kassa ever takes it as work.

Exactly once: the delivery worker calls :meth:`OutboxSender.find_sent` after a crash
between sending and recording; it looks the item up by NAME (and SOURCE ``lan``).
"""

from __future__ import annotations

from typing import Any

from kassa_appliance.bitrix.budget import Priority
from kassa_appliance.bitrix.errors import BitrixError
from kassa_appliance.bitrix.protocol import (
    JOB_ENTITY,
    STATE_CANCELLED,
    STATE_DONE,
    STATE_FAILED,
    dumps,
    item_property,
)
from kassa_appliance.bitrix.rest import RestClient
from kassa_appliance.bitrix.writeback import CODE_LIMIT, MESSAGE_LIMIT, cap, encodable, is_refusal
from kassa_appliance.channels.delivery.protocol import (
    Delivery,
    DeliveryFailed,
    DeliveryRetry,
    Outcome,
)
from kassa_appliance.channels.lan.queue import SOURCE

KIND = "outbox"


def record_properties(outcome: Outcome, kassa: str) -> dict[str, str]:
    """PROPERTY_VALUES of the mirror record (the same STATE/RESULT/ERROR as write-back)."""
    task = outcome.task if isinstance(outcome.task, dict) else {"task": outcome.task}
    properties = {
        "KASSA": kassa,
        "SOURCE": SOURCE,
        "TASK": cap(dumps(task), MESSAGE_LIMIT),
        "REPLY": "",
    }
    if outcome.state == "done":
        result: dict[str, Any] = {}
        params = outcome.result.get("fiscalParams") if isinstance(outcome.result, dict) else None
        result["fiscalParams"] = params if isinstance(params, dict) else None
        if not isinstance(params, dict) and outcome.result is not None:
            result["result"] = cap(dumps(outcome.result), MESSAGE_LIMIT)
        if outcome.qr:
            result["qr"] = outcome.qr
        properties.update(STATE=STATE_DONE, RESULT=encodable(dumps(result)), ERROR="")
        return properties
    error = {
        "code": cap(outcome.error_code or outcome.state, CODE_LIMIT),
        "message": cap(outcome.error_message or "job failed", MESSAGE_LIMIT),
    }
    state = STATE_CANCELLED if outcome.state == "cancelled" else STATE_FAILED
    properties.update(STATE=state, ERROR=dumps(error), RESULT="")
    return properties


class OutboxSender:
    """Sender of ``{"kind": "outbox"}`` (channels/delivery/protocol.py)."""

    kind = KIND

    def __init__(self, rest: RestClient, kassa: str) -> None:
        self._rest = rest
        self._kassa = kassa

    async def find_sent(self, delivery: Delivery) -> str | None:
        try:
            items = await self._rest.result(
                "entity.item.get",
                {"ENTITY": JOB_ENTITY, "FILTER": {"NAME": delivery.job_id}},
                priority=Priority.JOB,
            )
        except BitrixError as error:
            raise DeliveryRetry(f"looking up the mirror record: {error}") from None
        for item in items or []:
            if isinstance(item, dict) and item_property(item, "SOURCE") == SOURCE:
                return str(item.get("ID"))
        return None

    async def send(self, delivery: Delivery) -> str:
        properties = record_properties(delivery.outcome, self._kassa)
        try:
            item_id = await self._rest.result(
                "entity.item.add",
                {"ENTITY": JOB_ENTITY, "NAME": delivery.job_id, "PROPERTY_VALUES": properties},
                priority=Priority.JOB,
            )
        except BitrixError as error:
            if is_refusal(error):
                raise DeliveryFailed(f"Bitrix24 refused the mirror record: {error}") from None
            raise DeliveryRetry(f"writing the mirror record: {error}") from None
        return str(item_id)
