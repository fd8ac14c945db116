"""Where a job's outcome comes from: the local journal, or the job's KASSAJOB item.

A job printed here is final in the journal (``fiscalized``/``reported`` → ``done``,
``failed`` → ``failed``, ``failed`` with code ``cancelled`` → ``cancelled``). A job this
appliance handed to the Bitrix24 outbox may be printed by any kassa of the portal; its
outcome is what that kassa wrote back (:mod:`kassa_appliance.bitrix.writeback`): STATE
``done`` + RESULT ``{"fiscalParams": …, "qr": …}`` (or ``{"result": …}`` for a raw answer),
``failed`` + ERROR ``{"code", "message"}``, ``cancelled`` + ERROR. An item in
``cancelled`` without ERROR is a cancel request not answered yet: not final.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping, Sequence
from typing import Any

from kassa_appliance.bitrix.budget import Priority
from kassa_appliance.bitrix.protocol import (
    JOB_ENTITY,
    STATE_CANCELLED,
    STATE_DONE,
    STATE_FAILED,
    item_property,
)
from kassa_appliance.bitrix.rest import RestClient
from kassa_appliance.channels.delivery.protocol import Outcome, OutcomeState
from kassa_appliance.fiscal.journal import CANCELLED_CODE, Job, JobState
from kassa_appliance.inputs import InputRejected, decode_json_text

log = logging.getLogger(__name__)

NAMES_PER_READ = 50
"""Job ids per ``entity.item.get`` (one page of Bitrix24's list methods)."""


def job_outcome(job: Job, kassa: str | None) -> Outcome | None:
    """The outcome of a local job, or None while it is not final."""
    if not job.state.is_final:
        return None
    if job.state in (JobState.FISCALIZED, JobState.REPORTED):
        return Outcome(
            job_id=job.id,
            state="done",
            task=job.task,
            result=job.result if isinstance(job.result, dict) else None,
            qr=job.qr,
            kassa=kassa,
        )
    state: OutcomeState = "cancelled" if job.error_code == CANCELLED_CODE else "failed"
    return Outcome(
        job_id=job.id,
        state=state,
        task=job.task,
        error_code=job.error_code or "failed",
        error_message=job.error_message or "job failed",
        kassa=kassa,
    )


def outcome_to_json(outcome: Outcome) -> dict[str, Any]:
    value = dataclasses.asdict(outcome)
    if isinstance(outcome.task, str):  # an UnreadableTask is kept as its text
        value["task"] = str(outcome.task)
    return value


_STATES: frozenset[str] = frozenset({"done", "failed", "cancelled"})


def outcome_from_json(value: Mapping[str, Any]) -> Outcome:
    """An Outcome stored by :func:`outcome_to_json` (raises ValueError if it is not one)."""
    state = value.get("state")
    if state not in _STATES:
        raise ValueError(f"stored outcome has state {state!r}; expected done, failed or cancelled")

    def text(name: str) -> str | None:
        item = value.get(name)
        return None if item is None else str(item)

    result = value.get("result")
    return Outcome(
        job_id=str(value.get("job_id") or ""),
        state=state,
        task=value.get("task"),
        result=result if isinstance(result, dict) else None,
        qr=text("qr"),
        error_code=text("error_code"),
        error_message=text("error_message"),
        kassa=text("kassa"),
    )


def _json_property(raw: Mapping[str, Any], name: str) -> Any:
    text = item_property(raw, name)
    if not text:
        return None
    try:
        return decode_json_text(text, name)
    except InputRejected as error:
        log.warning("KASSAJOB %s of job %s is unreadable: %s", name, raw.get("NAME"), error)
        return None


def item_outcome(raw: Mapping[str, Any]) -> Outcome | None:
    """The outcome a kassa wrote into a KASSAJOB item, or None while it is not final."""
    state = item_property(raw, "STATE")
    job_id = str(raw.get("NAME") or "")
    kassa = item_property(raw, "KASSA") or None
    if state == STATE_DONE:
        written = _json_property(raw, "RESULT")
        written = written if isinstance(written, dict) else {}
        params = written.get("fiscalParams")
        result: dict[str, Any] | None
        if isinstance(params, dict):
            result = {"fiscalParams": params}
        else:
            raw_result = written.get("result")
            result = raw_result if isinstance(raw_result, dict) else None
        qr = written.get("qr")
        return Outcome(
            job_id=job_id,
            state="done",
            task=_json_property(raw, "TASK"),
            result=result,
            qr=qr if isinstance(qr, str) else None,
            kassa=kassa,
        )
    if state not in (STATE_FAILED, STATE_CANCELLED):
        return None
    error = _json_property(raw, "ERROR")
    if not isinstance(error, dict):
        if state == STATE_CANCELLED:
            return None  # a cancel request the kassa has not answered yet
        error = {}
    code = str(error.get("code") or state)
    return Outcome(
        job_id=job_id,
        state="cancelled" if state == STATE_CANCELLED or code == CANCELLED_CODE else "failed",
        task=_json_property(raw, "TASK"),
        error_code=code,
        error_message=str(error.get("message") or f"job {state}"),
        kassa=kassa,
    )


class RemoteOutcomes:
    """Reads the outcomes of expected jobs from their KASSAJOB items, by NAME, 50 job ids
    per request, through the link's REST client (and so its one REST budget)."""

    def __init__(self, rest: RestClient) -> None:
        self._rest = rest
        self.reads = 0
        """``entity.item.get`` requests made so far."""

    async def read(
        self, wanted: Sequence[tuple[str, str | None]]
    ) -> tuple[dict[str, Outcome], set[str]]:
        """For (job id, kassa or None) pairs: the final outcomes found, and the job ids
        whose item exists (final or not). An item of another kassa than the one expected
        is not this job's."""
        outcomes: dict[str, Outcome] = {}
        found: set[str] = set()
        kassa_of = dict(wanted)
        job_ids = list(kassa_of)
        for start in range(0, len(job_ids), NAMES_PER_READ):
            chunk = job_ids[start : start + NAMES_PER_READ]
            self.reads += 1
            items = await self._rest.result(
                "entity.item.get",
                {"ENTITY": JOB_ENTITY, "FILTER": {"NAME": chunk}, "SORT": {"ID": "ASC"}},
                priority=Priority.STATUS,
            )
            for raw in items if isinstance(items, list) else []:
                if not isinstance(raw, Mapping):
                    continue
                job_id = str(raw.get("NAME") or "")
                if job_id not in kassa_of:
                    continue
                expected_kassa = kassa_of[job_id]
                if expected_kassa is not None and item_property(raw, "KASSA") != expected_kassa:
                    continue
                found.add(job_id)
                outcome = item_outcome(raw)
                if outcome is not None and job_id not in outcomes:
                    outcomes[job_id] = outcome
        return outcomes, found
