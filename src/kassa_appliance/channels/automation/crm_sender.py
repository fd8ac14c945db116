"""The ``crm`` reply sender: a job's outcome goes back to its deal.

Printed: a timeline comment (``crm.timeline.comment.add``) with the fiscal data (FD, FP,
FN, shift and receipt numbers, date, total), the QR code as an attached PNG
(``FILES``), the QR string and the FNS check link, plus the deal field (``fd_field``,
default ``UF_CRM_KASSA_FD``, created as a string field by ``crm.deal.userfield.add`` when
missing) set to the FD number — written with the drain's ``auth_connector``, so the change
is not queued back to the drain. Refused or failed: a comment with the reason, and the
deal's responsible user is notified (``im.notify.system.add``). Each comment ends with
``ref <delivery key>``; :meth:`CrmSender.find_sent` looks for it in the deal's newest
comments, so a send cut off by a crash is found instead of repeated.
"""

from __future__ import annotations

import asyncio
import base64
import logging
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from kassa_appliance.bitrix.budget import Priority
from kassa_appliance.bitrix.errors import TEMPORARY_ERRORS, BitrixError, NotFound
from kassa_appliance.bitrix.rest import RestClient
from kassa_appliance.channels.automation.batching import CommandBatcher
from kassa_appliance.channels.automation.qr_png import qr_png
from kassa_appliance.channels.delivery.protocol import (
    Delivery,
    DeliveryFailed,
    DeliveryRetry,
    Outcome,
)
from kassa_appliance.inputs import shorten

log = logging.getLogger(__name__)

KIND = "crm"
FNS_CHECK_URL = "https://check.nalog.ru/"
"""The FNS receipt check service; the link carries the QR string as its query
(docs/automation.md: the page's use of it is not confirmed by a published spec)."""
LOOK_PAGES = 2
MAX_REASON = 2000
OPERATIONS = {"sell": "Приход", "sellReturn": "Возврат прихода"}


def trace(key: str) -> str:
    return f"ref {key}"


def fns_link(qr: str) -> str:
    return FNS_CHECK_URL + "?" + quote(qr, safe="=&")


def _fiscal(outcome: Outcome) -> Mapping[str, Any]:
    result = outcome.result or {}
    params = result.get("fiscalParams") if isinstance(result, Mapping) else None
    return params if isinstance(params, Mapping) else {}


def done_comment(outcome: Outcome, key: str) -> str:
    params = _fiscal(outcome)
    task = outcome.task if isinstance(outcome.task, Mapping) else {}
    operation = OPERATIONS.get(str(task.get("type") or ""), str(task.get("type") or "чек"))
    lines = [
        f"[b]Чек напечатан: {operation}[/b]" + (f", касса {outcome.kassa}" if outcome.kassa else "")
    ]
    if params:
        lines.append(
            f"Сумма: {params.get('total', task.get('total', ''))} ₽ · "
            f"ФД № {params.get('fiscalDocumentNumber', '')} · "
            f"ФП {params.get('fiscalDocumentSign', '')}"
        )
        lines.append(
            f"ФН {params.get('fnNumber', '')} · смена {params.get('shiftNumber', '')} · "
            f"чек {params.get('fiscalReceiptNumber', '')} · "
            f"{params.get('fiscalDocumentDateTime', '')}"
        )
    if outcome.qr:
        lines.append(f"QR: {outcome.qr}")
        lines.append(f"[url={fns_link(outcome.qr)}]Проверить чек на сайте ФНС[/url]")
    lines.append(trace(key))
    return "\n".join(lines)


def refused_comment(outcome: Outcome, key: str) -> str:
    reason = shorten(outcome.error_message or outcome.error_code or "failed", MAX_REASON)
    word = "отменён" if outcome.state == "cancelled" else "не напечатан"
    return "\n".join([f"[b]Чек {word}[/b]", f"Причина: {reason}", trace(key)])


def _deal_of(delivery: Delivery) -> int:
    try:
        deal_id = int(delivery.target.get("entity_id") or 0)
    except (TypeError, ValueError):
        deal_id = 0
    if deal_id <= 0 or delivery.target.get("entity_type", "deal") != "deal":
        raise DeliveryFailed(f"target {delivery.target!r} names no deal; expected entity_id")
    return deal_id


def _temporary(error: BitrixError) -> bool:
    return isinstance(error, TEMPORARY_ERRORS)


class CrmSender:
    kind = KIND

    def __init__(self, rest: RestClient, *, connector: str, fd_field: str) -> None:
        self._rest = rest
        self._connector = connector
        self._fd_field = fd_field
        self._field_ready = False
        self._field_lock = asyncio.Lock()
        self._batcher = CommandBatcher(rest, priority=Priority.STATUS)

    @property
    def requests(self) -> int:
        """Batches sent for deliveries so far."""
        return self._batcher.requests

    async def find_sent(self, delivery: Delivery) -> str | None:
        deal_id = _deal_of(delivery)
        wanted = trace(delivery.key)
        start = 0
        for _ in range(LOOK_PAGES):
            try:
                page = await self._rest.call(
                    "crm.timeline.comment.list",
                    {
                        "filter": {"ENTITY_ID": deal_id, "ENTITY_TYPE": "deal"},
                        "order": {"ID": "DESC"},
                        "start": start,
                    },
                    priority=Priority.STATUS,
                )
            except BitrixError as error:
                raise DeliveryRetry(f"timeline not readable: {error.code}") from None
            for comment in page.result or []:
                if isinstance(comment, Mapping) and wanted in str(comment.get("COMMENT") or ""):
                    return str(comment.get("ID"))
            if page.next is None:
                return None
            start = page.next
        return None

    async def ensure_field(self) -> None:
        async with self._field_lock:
            await self._ensure_field()

    async def _ensure_field(self) -> None:
        if self._field_ready:
            return
        found = await self._rest.result(
            "crm.deal.userfield.list",
            {"filter": {"FIELD_NAME": self._fd_field}},
            priority=Priority.STATUS,
        )
        if not found:
            await self._rest.result(
                "crm.deal.userfield.add",
                {
                    "fields": {
                        "FIELD_NAME": self._fd_field,
                        "USER_TYPE_ID": "string",
                        "LABEL": "ФД чека (Касса)",
                        "XML_ID": "KASSA_FD",
                    }
                },
                priority=Priority.STATUS,
            )
            log.info("created deal field %s for the FD number", self._fd_field)
        self._field_ready = True

    async def send(self, delivery: Delivery) -> str:
        deal_id = _deal_of(delivery)
        outcome = delivery.outcome
        fields: dict[str, Any] = {"ENTITY_ID": deal_id, "ENTITY_TYPE": "deal"}
        commands: list[tuple[str, Mapping[str, Any]]] = []
        if outcome.state == "done":
            try:
                await self.ensure_field()
            except BitrixError as error:
                if _temporary(error):
                    raise DeliveryRetry(f"deal field: {error.code}") from None
                log.warning("deal field %s unavailable: %s", self._fd_field, error)
            fields["COMMENT"] = done_comment(outcome, delivery.key)
            if outcome.qr:
                png = base64.b64encode(qr_png(outcome.qr)).decode("ascii")
                fields["FILES"] = [[f"receipt-{delivery.job_id[-20:]}.png".replace(":", "-"), png]]
            commands.append(("crm.timeline.comment.add", {"fields": fields}))
            fd = _fiscal(outcome).get("fiscalDocumentNumber")
            if fd is not None and self._field_ready:
                commands.append(
                    (
                        "crm.item.update",
                        {
                            "entityTypeId": 2,
                            "id": deal_id,
                            "useOriginalUfNames": "Y",
                            "fields": {self._fd_field: str(fd)},
                            "auth_connector": self._connector,
                        },
                    )
                )
        else:
            fields["COMMENT"] = refused_comment(outcome, delivery.key)
            commands.append(("crm.timeline.comment.add", {"fields": fields}))
            responsible = delivery.target.get("responsible_id")
            if isinstance(responsible, int) and responsible > 0:
                reason = shorten(outcome.error_message or "failed", 500)
                commands.append(
                    (
                        "im.notify.system.add",
                        {
                            "USER_ID": responsible,
                            "MESSAGE": f"Чек по сделке №{deal_id} не напечатан: {reason}",
                            "TAG": f"kassa-auto-{deal_id}",
                        },
                    )
                )
        try:
            answers = await self._batcher.run(commands)
        except BitrixError as error:
            raise DeliveryRetry(f"{error.code}: {error.description}") from None
        comment = answers[0]
        if comment.error is not None:
            if _temporary(comment.error):
                raise DeliveryRetry(comment.error.code)
            if isinstance(comment.error, NotFound) or comment.error.code == "OWNER_NOT_FOUND":
                raise DeliveryFailed(f"deal {deal_id} is gone: {comment.error.description}")
            raise DeliveryFailed(f"{comment.error.code}: {comment.error.description}")
        for extra in answers[1:]:
            if extra.error is not None:  # the comment is there: note, do not repeat it
                log.warning("deal %d: %s", deal_id, extra.error)
        return str(comment.result)
