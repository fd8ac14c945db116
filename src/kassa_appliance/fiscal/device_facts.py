"""The register's facts for the fleet view, learnt cheaply and rarely while the queue is idle.

:class:`DeviceFactsPolling` is the engine's mixin: when the queue is empty (the engine's
``_idle``, so no receipt is in flight and no job sits between its ``fiscalizing`` commit
and its result) and the facts are due — every ``device_facts_interval`` seconds, after a
shift document, after a shift or no-paper error — it runs the read-only service tasks
``getDeviceInfo``, ``getRegistrationInfo``, ``getFnInfo``, ``ofdExchangeStatus``,
``getShiftStatus`` and ``getDeviceStatus`` through the engine's
:class:`~kassa_appliance.fiscal.caller.RegisterCaller` and keeps the answers as
:class:`~kassa_appliance.fiscal.engine_status.DeviceFacts` in the status. A query the
register refuses keeps the last known value; the next poll tries again.

Field names are the driver's JSON task results (AlexanderYekat/atolexamplesjson
``json_getDeviceInfo.js``, ``json_getRegistrationInfo.js``, ``json_getFnInfo.js``,
``json_ofdExchangeStatus.js``, ``json_getShiftStatus.js``, ``json_getDeviceStatus.js``).
"""

from __future__ import annotations

import logging
import time
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from kassa_appliance.fiscal.engine_base import EngineBase
from kassa_appliance.fiscal.engine_status import DeviceFacts
from kassa_appliance.fiscal.journal import Job
from kassa_appliance.registers.base import JsonDict, RegisterError

log = logging.getLogger("kassa_appliance.fiscal.engine")

SHIFT_HOURS = 24
SHIFT_TASK_TYPES = frozenset({"openShift", "closeShift"})


class DeviceFactsPolling(EngineBase):
    _device_facts_at: float | None = None
    """Monotonic time of the last complete poll."""

    def _note_fiscalized(self, job: Job, result: JsonDict) -> None:
        super()._note_fiscalized(job, result)  # type: ignore[safe-super]
        if job.task_type in SHIFT_TASK_TYPES:
            self._device_facts_due = True

    async def _poll_device_facts_if_due(self) -> None:
        """Called by the idle loop only: nothing else is using the register then."""
        if not self._device_facts_wanted():
            return
        facts = self._progress.device or DeviceFacts()
        try:
            for task_type, learn in _QUERIES:
                if self._stopping or self._journal.next_pending() is not None:
                    return  # a job came in: it goes first, the poll waits for the next idle
                answer = await self._caller.process({"type": task_type})
                facts = replace(facts, **learn(answer))
        except RegisterError as error:
            log.info("device facts not read: atol-%s %s", error.code, error.description)
            self._device_facts_at = time.monotonic()  # try again after the interval
            return
        except (TypeError, ValueError, AttributeError) as error:
            log.warning("device facts: unexpected answer from the register (%s)", error)
            self._device_facts_at = time.monotonic()
            return
        finally:
            if facts != self._progress.device:
                self._progress.device = facts
                self._publish_status()
        self._device_facts_due = False
        self._device_facts_at = time.monotonic()

    def _device_facts_wanted(self) -> bool:
        if not self._opened or self._stopping or self._caller.hung:
            return False
        if not self._available.is_set() or self._progress.print_pending:
            return False
        last = self._device_facts_at
        if last is None or self._device_facts_due:
            return True
        return time.monotonic() - last >= self._settings.device_facts_interval


def _section(answer: JsonDict, name: str) -> dict[str, Any]:
    value = answer.get(name)
    return value if isinstance(value, dict) else {}


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _device_info(answer: JsonDict) -> dict[str, Any]:
    info = _section(answer, "deviceInfo")
    return {
        "model": _text(info.get("modelName")),
        "serial": _text(info.get("serial")),
        "firmware": _text(info.get("firmwareVersion")),
    }


def _registration_info(answer: JsonDict) -> dict[str, Any]:
    return {"registration_number": _text(_section(answer, "device").get("registrationNumber"))}


def _fn_info(answer: JsonDict) -> dict[str, Any]:
    info = _section(answer, "fnInfo")
    validity = _text(info.get("validityDate"))
    expiry = datetime.fromisoformat(validity).date().isoformat() if validity else None
    return {"fn_number": _text(info.get("serial")), "fn_expiry": expiry}


def _ofd_status(answer: JsonDict) -> dict[str, Any]:
    status = _section(answer, "status")
    count = status.get("notSentCount")
    unsent = count if isinstance(count, int) and not isinstance(count, bool) else None
    oldest = _text(status.get("notSentFirstDocDateTime")) if unsent else None
    return {"ofd_unsent": unsent, "ofd_oldest_unsent": oldest}


def _shift_status(answer: JsonDict) -> dict[str, Any]:
    shift = _section(answer, "shiftStatus")
    state = _text(shift.get("state"))
    expires = _text(shift.get("expiredTime"))
    opened = None
    if state in {"opened", "expired"} and expires:
        began = datetime.fromisoformat(expires) - timedelta(hours=SHIFT_HOURS)
        opened = began.isoformat(timespec="seconds")
    number = shift.get("number")
    return {
        "shift_state": state,
        "shift_number": number if isinstance(number, int) else None,
        "shift_opened": opened,
    }


def _device_status(answer: JsonDict) -> dict[str, Any]:
    paper = _section(answer, "deviceStatus").get("paperPresent")
    return {"paper": paper if isinstance(paper, bool) else None}


_QUERIES = (
    ("getDeviceInfo", _device_info),
    ("getRegistrationInfo", _registration_info),
    ("getFnInfo", _fn_info),
    ("ofdExchangeStatus", _ofd_status),
    ("getShiftStatus", _shift_status),
    ("getDeviceStatus", _device_status),
)
