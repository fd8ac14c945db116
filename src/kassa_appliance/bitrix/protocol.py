"""The KASSAJOB/KASSADEV storage protocol: names, STATE values and one stored item.

A ``KASSAJOB`` item (NAME = job id) carries KASSA, STATE, TASK (Atol JSON), SOURCE, REPLY;
the appliance writes RESULT or ERROR back. STATE values:

* ``new`` — stored by a producer, not yet taken;
* ``accepted`` — the appliance recorded the job in its journal;
* ``done`` (+ RESULT) / ``failed`` (+ ERROR ``{"code", "message"}``) — the outcome;
* ``cancelled`` — set by an operator to cancel a job that has not reached the register;
  the appliance answers with ERROR (code ``cancelled``, or ``cancel-refused`` with the
  reason and STATE back to ``accepted`` when the job may already be on the register).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

JOB_ENTITY = "KASSAJOB"
DEVICE_ENTITY = "KASSADEV"
JOB_PROPERTIES = ("KASSA", "STATE", "TASK", "SOURCE", "REPLY", "RESULT", "ERROR")
DEVICE_PROPERTIES = ("KASSA", "STATUS", "SEEN")
STATE_NEW = "new"
STATE_ACCEPTED = "accepted"
STATE_DONE = "done"
STATE_FAILED = "failed"
STATE_CANCELLED = "cancelled"
SOURCE = "bitrix"
CANCEL_REFUSED_CODE = "cancel-refused"


def dumps(value: Any) -> str:
    """Compact JSON text as written into a KASSAJOB property."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _user_id(value: Any) -> int | None:
    text = str(value or "")
    return int(text) if text.isdigit() and len(text) < 19 else None


@dataclass(frozen=True)
class StoredJob:
    """A KASSAJOB item as read from Bitrix24."""

    item_id: int
    job_id: str
    kassa: str
    state: str
    task_text: str
    source: str
    reply_text: str
    created_by: int | None
    modified_by: int | None = None

    @classmethod
    def from_item(cls, item: Mapping[str, Any]) -> StoredJob:
        """Raises ``ValueError``/``KeyError`` for an item without a numeric ID."""
        props = item.get("PROPERTY_VALUES") or {}
        if not isinstance(props, Mapping):
            props = {}

        def text(name: str) -> str:
            value = props.get(name)
            return "" if value in (None, False) else str(value)

        return cls(
            item_id=int(str(item["ID"])),
            job_id=str(item.get("NAME") or ""),
            kassa=text("KASSA"),
            state=text("STATE") or STATE_NEW,
            task_text=text("TASK"),
            source=text("SOURCE"),
            reply_text=text("REPLY"),
            created_by=_user_id(item.get("CREATED_BY")),
            modified_by=_user_id(item.get("MODIFIED_BY")),
        )


def item_property(raw: Mapping[str, Any], name: str) -> str:
    """One PROPERTY_VALUES entry of a raw item as text ("" when missing)."""
    props = raw.get("PROPERTY_VALUES")
    value = props.get(name) if isinstance(props, Mapping) else None
    return "" if value in (None, False) else str(value)
