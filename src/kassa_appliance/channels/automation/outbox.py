"""Putting the automation's jobs into the Bitrix24 outbox (``KASSAJOB``), durably, in one go.

A job that can print is stored as a producer stores one (STATE ``new``, then the
``kassa.job`` doorbell, :mod:`kassa_appliance.bitrix.storage`); a job the automation had to
refuse (no client contact, currency, totals…) is stored already answered: STATE ``failed``
and ERROR ``{"code": "automation-refused", "message": <reason>}`` — so the refusal is in the
same ledger (the deal is not refused twice for one stage entry) and reaches the deal's
timeline through the same reply delivery as a printed receipt. Up to 50 items a request
(``batch``), then one doorbell per kassa.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from kassa_appliance.bitrix.budget import Priority
from kassa_appliance.bitrix.protocol import JOB_ENTITY, STATE_FAILED, STATE_NEW, dumps
from kassa_appliance.bitrix.rest import RestClient

REFUSED_CODE = "automation-refused"
SOURCE = "automation"


@dataclass(frozen=True)
class PlannedJob:
    job_id: str
    kassa: str
    task: dict[str, Any] | None
    """The Atol task; None when refused (``refusal`` says why)."""
    target: dict[str, Any]
    refusal: str | None = None

    @property
    def reply(self) -> dict[str, Any]:
        return {"targets": [self.target]}


def _item(job: PlannedJob) -> dict[str, Any]:
    values: dict[str, Any] = {
        "KASSA": job.kassa,
        "STATE": STATE_NEW if job.refusal is None else STATE_FAILED,
        "TASK": dumps(job.task) if job.task is not None else "",
        "SOURCE": SOURCE,
        "REPLY": dumps(job.reply),
    }
    if job.refusal is not None:
        values["ERROR"] = dumps({"code": REFUSED_CODE, "message": job.refusal})
    return {"ENTITY": JOB_ENTITY, "NAME": job.job_id, "PROPERTY_VALUES": values}


async def publish(rest: RestClient, jobs: Sequence[PlannedJob]) -> None:
    """Store every job and ring each kassa once, in one ``batch`` (the doorbells last, so
    they follow the items they announce); raises if any item was not stored (the caller
    keeps its events and comes back: the ledger then finds what was stored)."""
    if not jobs:
        return
    rings: dict[str, str] = {}
    for job in jobs:
        if job.refusal is None:
            rings[job.kassa] = job.job_id
    commands: list[tuple[str, dict[str, Any]]] = [("entity.item.add", _item(job)) for job in jobs]
    commands += [
        (
            "pull.application.event.add",
            {"COMMAND": "kassa.job", "PARAMS": {"job": job_id, "kassa": kassa}},
        )
        for kassa, job_id in rings.items()
    ]
    answers = await rest.batch(commands, priority=Priority.JOB)
    for answer in answers[: len(jobs)]:
        if answer.error is not None:
            raise answer.error
