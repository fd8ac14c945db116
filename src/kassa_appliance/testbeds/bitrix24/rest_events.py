"""Events and the offline event queue, as b24restdocs ``api-reference/events/`` describes them.

* ``event.bind`` / ``event.unbind`` / ``event.get``: application context only; an offline
  binding (``event_type=offline``, no handler) needs an administrator; ``auth_connector``
  names a separate queue (``event-bind.md``, ``offline-events.md``).
* The queue (``offline-events.md``; bitrix-app-notes §3.1 from ``rest/lib/eventoffline.php``):
  one row per ``(MESSAGE_ID, connector, PROCESS_ID)`` with ``MESSAGE_ID =
  md5(EVENT_NAME|json(EVENT_DATA))``, so a deal changed 1,000 times is one row whose
  ``TIMESTAMP_X`` moves; a change while the row is reserved makes a new unreserved row.
  A change made by a call that passes the binding's ``auth_connector`` is not queued for
  that connector ("Bitrix24 will not record in the queue the change initiated by the
  application itself").
* ``event.offline.get``: ``filter``/``order`` (default ``TIMESTAMP_X`` ASC)/``limit``
  (default 50, > 0), ``clear`` (default 1: the rows are deleted in the same call),
  ``clear=0`` reserves them under a new 32-character ``process_id`` (hidden from other
  readers until cleared or marked in error), ``process_id`` returns that reserved batch
  again, ``error=1`` reads rows marked in error.
* ``event.offline.clear {process_id*, id[] | message_id[]}``, ``event.offline.error
  {process_id*, message_id[]}`` (marks ``ERROR``, un-reserves, drops newer unreserved
  duplicates), ``event.offline.list`` (read only, 50 a page, ``PROCESS_ID``/``ERROR`` shown).
* ``feature.get {CODE: "rest_offline_extended"}`` says whether ``clear=0`` is available.

The CRM side (``rest_crm*``) raises events with :meth:`OfflineEvents.raise_event`.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import string
import time
from dataclasses import dataclass, field
from typing import Any

from kassa_appliance.testbeds.bitrix24.rest_events_query import as_list, flag, matches, ordered
from kassa_appliance.testbeds.bitrix24.rest_types import Answer, ApiError, Caller, Handler
from kassa_appliance.testbeds.bitrix24.state import iso

PAGE_SIZE = 50
EXTENDED_FEATURE = "rest_offline_extended"
KNOWN_EVENTS = frozenset(
    {
        "ONCRMDEALADD",
        "ONCRMDEALUPDATE",
        "ONCRMDEALDELETE",
        "ONCRMDEALMOVETOCATEGORY",
        "ONCRMCONTACTADD",
        "ONCRMCONTACTUPDATE",
        "ONCRMCOMPANYUPDATE",
        "ONCRMTIMELINECOMMENTADD",
        "ONPAYMENTENTITYSAVED",
        "ONSALEORDERSAVED",
        "ONOFFLINEEVENT",
    }
)
NO_OFFLINE = frozenset({"ONOFFLINEEVENT"})
_PROCESS_ALPHABET = string.ascii_lowercase + string.digits


@dataclass
class OfflineRow:
    id: int
    timestamp: float
    event_name: str
    event_data: Any
    additional: Any
    message_id: str
    connector: str
    process_id: str = ""
    error: bool = False

    def value(self, name: str) -> Any:
        return {
            "ID": self.id,
            "TIMESTAMP_X": self.timestamp,
            "EVENT_NAME": self.event_name,
            "MESSAGE_ID": self.message_id,
            "PROCESS_ID": self.process_id,
            "ERROR": int(self.error),
        }.get(name)

    def as_json(self, *, with_state: bool = False) -> dict[str, Any]:
        data: dict[str, Any] = {
            "ID": str(self.id),
            "TIMESTAMP_X": iso(self.timestamp),
            "EVENT_NAME": self.event_name,
            "EVENT_DATA": self.event_data,
            "EVENT_ADDITIONAL": self.additional,
            "MESSAGE_ID": self.message_id,
        }
        if with_state:
            data["PROCESS_ID"] = self.process_id
            data["ERROR"] = "1" if self.error else "0"
        return data


@dataclass
class Binding:
    event: str
    handler: str
    offline: bool
    connector: str
    auth_type: int


@dataclass
class OfflineEvents:
    """The app's event bindings and its offline queue (one app: the emulator's)."""

    bindings: list[Binding] = field(default_factory=list)
    rows: dict[int, OfflineRow] = field(default_factory=dict)
    extended: bool = True
    """``rest_offline_extended``: whether ``clear=0`` (reservation) is available."""
    raised: int = 0
    """Events raised (before collapsing), for tests and the bench."""
    clock: Any = time.time
    _next_id: int = 1

    def raise_event(
        self, name: str, data: Any, *, user_id: int, auth_connector: str | None = None
    ) -> None:
        """Queue ``name`` for every offline binding, except the connector whose own call
        made the change."""
        name = name.upper()
        self.raised += 1
        message_id = hashlib.md5(
            f"{name}|{json.dumps(data, separators=(',', ':'))}".encode()
        ).hexdigest()
        connectors = {b.connector for b in self.bindings if b.offline and b.event == name}
        for connector in sorted(connectors):
            if auth_connector and connector == auth_connector:
                continue
            row = next(
                (
                    r
                    for r in self.rows.values()
                    if (r.message_id, r.connector, r.process_id) == (message_id, connector, "")
                ),
                None,
            )
            if row is not None:  # collapsed: only the newest state is kept
                row.timestamp = self.clock()
                row.event_data = data
                row.additional = {"user_id": str(user_id)}
                continue
            row = OfflineRow(
                self._next_id,
                self.clock(),
                name,
                data,
                {"user_id": str(user_id)},
                message_id,
                connector,
            )
            self._next_id += 1
            self.rows[row.id] = row

    def pending(self, connector: str = "") -> list[OfflineRow]:
        return [r for r in self.rows.values() if r.connector == connector]


def _require_app_admin(caller: Caller) -> None:
    if not caller.application:
        raise ApiError(400, "WRONG_AUTH_TYPE", "Application context required")
    if not caller.user.admin:
        raise ApiError(403, "ACCESS_DENIED", "Access denied!")


def event_handlers(events: OfflineEvents) -> dict[str, Handler]:
    """``event.*``, ``event.offline.*`` and ``feature.get`` over ``events``."""

    def connector_of(params: dict[str, Any]) -> str:
        return str(params.get("auth_connector") or "")

    async def bind(caller: Caller, params: dict[str, Any]) -> Answer:
        if not caller.application:
            raise ApiError(400, "WRONG_AUTH_TYPE", "Application context required")
        name = str(params.get("event") or params.get("EVENT") or "").upper()
        if name not in KNOWN_EVENTS:
            raise ApiError(400, "ERROR_EVENT_NOT_FOUND", "Event not found")
        offline = str(params.get("event_type") or "online").lower() == "offline"
        handler = str(params.get("handler") or params.get("HANDLER") or "")
        if offline:
            if not caller.user.admin:
                raise ApiError(
                    403,
                    "ACCESS_DENIED",
                    "Access denied! Offline events binding requires administrator access rights",
                )
            if name in NO_OFFLINE:
                raise ApiError(
                    400,
                    "ERROR_EVENT_NOT_FOUND",
                    "Offline event cannot be registered for this event",
                )
            handler = ""
        elif not handler.startswith(("http://", "https://")):
            raise ApiError(400, "ERROR_HANDLER_URL_MISMATCH", "Wrong handler URL")
        connector = connector_of(params) if offline else ""
        for existing in events.bindings:
            if (existing.event, existing.handler, existing.offline, existing.connector) == (
                name,
                handler,
                offline,
                connector,
            ):
                raise ApiError(400, "ERROR_EVENT_EXISTS", "Handler already binded")
        events.bindings.append(
            Binding(name, handler, offline, connector, 0 if offline else caller.user.id)
        )
        return Answer(True)

    async def unbind(caller: Caller, params: dict[str, Any]) -> Answer:
        if not caller.application:
            raise ApiError(400, "WRONG_AUTH_TYPE", "Application context required")
        name = str(params.get("event") or "").upper()
        offline = str(params.get("event_type") or "online").lower() == "offline"
        if offline and not caller.user.admin:
            raise ApiError(403, "ACCESS_DENIED", "Access denied!")
        connector = connector_of(params) if offline else ""
        before = len(events.bindings)
        events.bindings = [
            b
            for b in events.bindings
            if not (b.event == name and b.offline == offline and b.connector == connector)
        ]
        return Answer({"count": before - len(events.bindings)})

    async def get(caller: Caller, params: dict[str, Any]) -> Answer:
        if not caller.application:
            raise ApiError(400, "WRONG_AUTH_TYPE", "Application context required")
        listed = []
        for b in events.bindings:
            entry: dict[str, Any] = {"event": b.event, "handler": b.handler, "auth_type": "0"}
            if b.offline:
                entry.update({"offline": 1, "connector_id": b.connector})
            listed.append(entry)
        return Answer(listed)

    async def offline_get(caller: Caller, params: dict[str, Any]) -> Answer:
        _require_app_admin(caller)
        connector = connector_of(params)
        clear = flag(params, "clear", 1)
        error = flag(params, "error", 0)
        try:
            limit = int(str(params.get("limit") or PAGE_SIZE))
        except ValueError:
            limit = 0
        if limit <= 0:
            raise ApiError(400, "INVALID_ARG_VALUE", "Limit must be greater than 0")
        if not clear and not events.extended:
            raise ApiError(402, "ERROR_LICENSE", "Method is not available on this plan")
        raw_filter = params.get("filter")
        filters: dict[str, Any] = raw_filter if isinstance(raw_filter, dict) else {}
        allowed = ("ID", "TIMESTAMP_X", "EVENT_NAME", "MESSAGE_ID")
        process_id = str(params.get("process_id") or "")
        if process_id:
            chosen = [
                r
                for r in events.rows.values()
                if r.connector == connector and r.process_id == process_id
            ]
        else:
            chosen = [
                r
                for r in events.rows.values()
                if r.connector == connector
                and r.process_id == ""
                and r.error == bool(error)
                and matches(r, filters, allowed)
            ]
        chosen = ordered(chosen, params.get("order"), "TIMESTAMP_X")[:limit]
        answer = [r.as_json() for r in chosen]
        if clear:
            for r in chosen:
                events.rows.pop(r.id, None)
            return Answer({"process_id": process_id or None, "events": answer})
        if not process_id and chosen:
            process_id = "".join(secrets.choice(_PROCESS_ALPHABET) for _ in range(32))
            for r in chosen:
                r.process_id = process_id
        return Answer({"process_id": process_id or None, "events": answer})

    def reserved(params: dict[str, Any]) -> tuple[str, list[OfflineRow]]:
        process_id = str(params.get("process_id") or "")
        if not process_id:
            raise ApiError(400, "INVALID_ARG_VALUE", "process_id is required")
        connector = connector_of(params)
        rows = [
            r
            for r in events.rows.values()
            if r.process_id == process_id and r.connector == connector
        ]
        return process_id, rows

    async def offline_clear(caller: Caller, params: dict[str, Any]) -> Answer:
        _require_app_admin(caller)
        _, rows = reserved(params)
        ids = {str(i) for i in as_list(params.get("id"))}
        message_ids = {str(m) for m in as_list(params.get("message_id"))}
        if ids:
            rows = [r for r in rows if str(r.id) in ids]
        elif message_ids:
            if any(len(m) != 32 for m in message_ids):
                raise ApiError(400, "INVALID_ARG_VALUE", "Wrong message_id value")
            rows = [r for r in rows if r.message_id in message_ids]
        for r in rows:
            events.rows.pop(r.id, None)
        return Answer(True)

    async def offline_error(caller: Caller, params: dict[str, Any]) -> Answer:
        _require_app_admin(caller)
        _, rows = reserved(params)
        message_ids = {str(m) for m in as_list(params.get("message_id"))}
        for r in rows:
            if message_ids and r.message_id not in message_ids:
                continue
            r.error = True
            r.process_id = ""
            for newer in list(events.rows.values()):
                if (
                    newer.id != r.id
                    and newer.message_id == r.message_id
                    and newer.connector == r.connector
                    and newer.process_id == ""
                    and not newer.error
                ):
                    events.rows.pop(newer.id)
        return Answer(True)

    async def offline_list(caller: Caller, params: dict[str, Any]) -> Answer:
        _require_app_admin(caller)
        connector = connector_of(params)
        raw_filter = params.get("filter")
        filters: dict[str, Any] = raw_filter if isinstance(raw_filter, dict) else {}
        allowed = ("ID", "TIMESTAMP_X", "EVENT_NAME", "MESSAGE_ID", "PROCESS_ID", "ERROR")
        rows = [
            r
            for r in events.rows.values()
            if r.connector == connector and matches(r, filters, allowed)
        ]
        rows = ordered(rows, params.get("order"), "ID")
        try:
            start = max(0, int(str(params.get("start") or 0)))
        except ValueError:
            start = 0
        page = rows[start : start + PAGE_SIZE]
        more = start + PAGE_SIZE if start + PAGE_SIZE < len(rows) else None
        return Answer([r.as_json(with_state=True) for r in page], next=more, total=len(rows))

    async def feature_get(caller: Caller, params: dict[str, Any]) -> Answer:
        code = str(params.get("CODE") or params.get("code") or "")
        return Answer(events.extended if code == EXTENDED_FEATURE else False)

    return {
        "event.bind": bind,
        "event.unbind": unbind,
        "event.get": get,
        "event.offline.get": offline_get,
        "event.offline.clear": offline_clear,
        "event.offline.error": offline_error,
        "event.offline.list": offline_list,
        "feature.get": feature_get,
    }
