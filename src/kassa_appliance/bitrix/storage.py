"""The KASSAJOB/KASSADEV storages: created where missing (idempotent), and what a producer
does to hand a kassa a job (:func:`publish_job`)."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Mapping
from typing import Any

from kassa_appliance.bitrix.errors import AlreadyExists, NotFound
from kassa_appliance.bitrix.protocol import (
    DEVICE_ENTITY,
    DEVICE_PROPERTIES,
    JOB_ENTITY,
    JOB_PROPERTIES,
    STATE_NEW,
    dumps,
)
from kassa_appliance.bitrix.rest import RestClient

log = logging.getLogger(__name__)


async def ensure_storage(rest: RestClient) -> None:
    """Create KASSAJOB/KASSADEV and their properties where missing (idempotent)."""
    await _ensure_entity(rest, JOB_ENTITY, "Kassa jobs", {"AU": "W"}, JOB_PROPERTIES)
    await _ensure_entity(rest, DEVICE_ENTITY, "Kassa devices", {"AU": "R"}, DEVICE_PROPERTIES)


async def _ensure_entity(
    rest: RestClient,
    entity: str,
    name: str,
    access: dict[str, str],
    properties: tuple[str, ...],
) -> None:
    try:
        await rest.result("entity.get", {"ENTITY": entity})
    except NotFound:
        log.info("creating Bitrix24 storage %s", entity)
        with contextlib.suppress(AlreadyExists):
            await rest.result("entity.add", {"ENTITY": entity, "NAME": name, "ACCESS": access})
    existing = await rest.result("entity.item.property.get", {"ENTITY": entity})
    have = {str(p.get("PROPERTY")) for p in existing or [] if isinstance(p, Mapping)}
    missing = [code for code in properties if code not in have]
    if not missing:
        return
    items = await rest.batch(
        [
            ("entity.item.property.add", {"ENTITY": entity, "PROPERTY": c, "NAME": c})
            for c in missing
        ]
    )
    for code, item in zip(missing, items, strict=True):
        if item.error is not None and not isinstance(item.error, AlreadyExists):
            raise item.error
        log.info("added property %s.%s", entity, code)


async def publish_job(
    rest: RestClient,
    *,
    job_id: str,
    kassa: str,
    task: Any,
    source: str = "cli",
    reply: dict[str, Any] | None = None,
    ring: bool = True,
) -> int:
    """What a producer (the Bitrix24 app, a bot, ``kassa-appliance send-job``) does: store a
    KASSAJOB item (STATE=new), then ring the doorbell. Returns the item id.

    An add repeated after a lost answer first looks for the item by NAME, so one job is
    one item (the journal would print it once anyway, but the outbox shows every item)."""

    async def find_earlier() -> int | None:
        return await find_job_item(rest, job_id)

    item_id = await rest.result(
        "entity.item.add",
        {
            "ENTITY": JOB_ENTITY,
            "NAME": job_id,
            "PROPERTY_VALUES": {
                "KASSA": kassa,
                "STATE": STATE_NEW,
                "TASK": task if isinstance(task, str) else dumps(task),
                "SOURCE": source,
                "REPLY": "" if reply is None else dumps(reply),
            },
        },
        find_earlier=find_earlier,
    )
    if ring:
        await rest.result(
            "pull.application.event.add",
            {"COMMAND": "kassa.job", "PARAMS": {"job": job_id, "kassa": kassa}},
        )
    return int(item_id)


async def find_job_item(rest: RestClient, job_id: str) -> int | None:
    """The id of the KASSAJOB item named ``job_id``, or None."""
    items = await rest.result(
        "entity.item.get", {"ENTITY": JOB_ENTITY, "FILTER": {"NAME": job_id}, "SELECT": ["ID"]}
    )
    if isinstance(items, list) and items and isinstance(items[0], dict):
        try:
            return int(items[0]["ID"])
        except (KeyError, TypeError, ValueError):
            return None
    return None
