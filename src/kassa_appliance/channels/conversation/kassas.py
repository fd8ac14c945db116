"""What the bot reads from Bitrix24 for its commands: each kassa's heartbeat (KASSADEV,
bitrix/heartbeat.py) and the state of the jobs it created (KASSAJOB), through the shared
REST client at the STATUS priority (a person waits, but never before a fiscal result)."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from kassa_appliance.bitrix.budget import Priority
from kassa_appliance.bitrix.protocol import DEVICE_ENTITY, JOB_ENTITY, item_property
from kassa_appliance.bitrix.rest import RestClient
from kassa_appliance.channels.conversation import texts
from kassa_appliance.inputs import InputRejected, decode_json_text

__all__ = ["JobView", "KassaView", "describe_kassa", "read_jobs", "read_kassas"]

SILENT_AFTER_SECONDS = 15 * 60.0
"""A heartbeat goes at least every 5 minutes (bitrix/heartbeat.py): three missed ones
mean the kassa is not connected."""


@dataclass(frozen=True, slots=True)
class KassaView:
    kassa: str
    status: Mapping[str, Any]
    seen: datetime | None


@dataclass(frozen=True, slots=True)
class JobView:
    job_id: str
    state: str
    result: Mapping[str, Any] | None
    error: Mapping[str, Any] | None


def _json_object(text: str, what: str) -> dict[str, Any] | None:
    if not text:
        return None
    try:
        value = decode_json_text(text, what)
    except InputRejected:
        return None
    return value if isinstance(value, dict) else None


def _seen(text: str) -> datetime | None:
    if not text:
        return None
    for parse in (datetime.fromisoformat, lambda t: datetime.strptime(t, "%Y-%m-%dT%H:%M:%S%z")):
        try:
            return parse(text)
        except ValueError:
            continue
    return None


async def read_kassas(rest: RestClient) -> list[KassaView]:
    """Every KASSADEV item (one per kassa), in kassa-name order."""
    views: dict[str, KassaView] = {}
    start = 0
    for _ in range(20):  # 50 per page: 1,000 kassas is far more than a portal has
        response = await rest.call(
            "entity.item.get",
            {"ENTITY": DEVICE_ENTITY, "SORT": {"ID": "ASC"}, "start": start},
            priority=Priority.STATUS,
        )
        for item in response.result or []:
            if not isinstance(item, Mapping):
                continue
            kassa = str(item.get("NAME") or "").strip()
            if not kassa or kassa in views:
                continue
            status = _json_object(item_property(item, "STATUS"), "STATUS") or {}
            views[kassa] = KassaView(kassa, status, _seen(item_property(item, "SEEN")))
        if response.next is None:
            break
        start = int(response.next)
    return [views[k] for k in sorted(views)]


async def read_jobs(rest: RestClient, job_ids: Sequence[str]) -> dict[str, JobView]:
    """The KASSAJOB items of these job ids (one request), by job id."""
    if not job_ids:
        return {}
    items = await rest.result(
        "entity.item.get",
        {"ENTITY": JOB_ENTITY, "FILTER": {"NAME": list(job_ids)}, "SORT": {"ID": "ASC"}},
        priority=Priority.STATUS,
    )
    found: dict[str, JobView] = {}
    for item in items or []:
        if not isinstance(item, Mapping):
            continue
        job_id = str(item.get("NAME") or "")
        if job_id in job_ids and job_id not in found:
            found[job_id] = JobView(
                job_id,
                item_property(item, "STATE") or "new",
                _json_object(item_property(item, "RESULT"), "RESULT"),
                _json_object(item_property(item, "ERROR"), "ERROR"),
            )
    return found


def describe_kassa(view: KassaView, now: float | None = None) -> str:
    """One line about a kassa, as its heartbeat tells it."""
    now = time.time() if now is None else now
    seen = view.seen
    seen_text = seen.strftime("%d.%m %H:%M") if seen is not None else "—"
    if seen is None or now - seen.timestamp() > SILENT_AFTER_SECONDS:
        return texts.KASSA_LINE.format(
            kassa=view.kassa, state=texts.KASSA_SILENT.format(seen=seen_text)
        )
    status = view.status
    parts = [texts.KASSA_ONLINE if status.get("register_online") else texts.KASSA_OFFLINE]
    nested = status.get("device")  # the fleet fields are flat (bitrix/link.py); older: nested
    facts = {**nested, **status} if isinstance(nested, Mapping) else status
    shift = texts.KASSA_SHIFT.get(str(facts.get("shift_state")))
    if shift:
        parts.append(shift)
    if facts.get("paper") is False:
        parts.append(texts.KASSA_NO_PAPER)
    depth = status.get("queue_depth")
    if isinstance(depth, int) and depth > 0:
        parts.append(texts.KASSA_QUEUE.format(count=depth))
    waiting = status.get("waiting")
    if isinstance(waiting, str) and waiting:
        parts.append(texts.KASSA_WAITING.format(reason=waiting[:120]))
    parts.append(texts.KASSA_SEEN.format(seen=seen_text))
    return texts.KASSA_LINE.format(kassa=view.kassa, state=", ".join(parts))
