"""The JSON shapes of Atol Web Requests: results, errors, the device, value dictionaries.

Texts and codes as the real server gives them (atol-notes §1.6, §3; peers-notes §1.1;
the scenarios of avb56/kktsite-agent ``test/agent.test.js``, recorded against Web Requests
1.0.4.0): ``ready`` carries ``{code: 0, description: "Ошибок нет"}``, ``interrupted`` 502,
``canceled`` 503. Every result carries the error both as ``error{code, description}``
(v2) and as the flat ``errorCode``/``errorDescription`` older servers used, so clients of
either generation find it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from kassa_appliance import __version__
from kassa_appliance.channels.lan.queue import Block, SubTask, _atol_code
from kassa_appliance.fiscal.engine import EngineStatus
from kassa_appliance.fiscal.journal import Job

DEVICE_ID = "1"
DEVICE_ALIASES = frozenset({"", DEVICE_ID, "default"})
SERVER_VERSION = f"kassa-appliance {__version__} (Web Requests 1.0.4.0 compatible)"

OK = (0, "Ошибок нет")
INTERRUPTED = (502, "Выполнение прервано из-за предыдущих ошибок")
CANCELED = (503, "Задание отменено")
RECEIPT_PARSE_ERROR = 501
WEB_FAIL = 505
CONNECTION_LOST = (241, "Соединение с ККТ потеряно: исход задания проверяется по номеру ФД")

DEFAULT_SETTINGS: dict[str, Any] = {
    "scriptsPath": "",
    "invertCashDrawerStatus": False,
    "additionalHeaderLines": "",
    "additionalFooterLines": "",
    "blockQueueOnPrintErrors": True,
    "deleteRequestsAfter": 43200,
    "validateRequestsOnAdd": False,
}
MAX_DELETE_AFTER = 4_294_967_295


def job_error(job: Job) -> tuple[int, str]:
    """A failed job's ``(code, description)``: the register's own code, 501 for a task
    the appliance refused before the register, 505 (WEB_FAIL) for anything else."""
    code = job.error_code or ""
    message = job.error_message or "задание не выполнено"
    atol = _atol_code(code)
    if atol is not None:
        return atol, message
    if code == "cancelled":
        return CANCELED
    if code == "invalid-task":
        return RECEIPT_PARSE_ERROR, message
    return WEB_FAIL, f"{code}: {message}" if code else message


def result_entry(view: SubTask, status: EngineStatus) -> dict[str, Any]:
    code, description = OK
    result: Any = None
    if view.status == "ready" and view.job is not None:
        result = view.job.result
    elif view.status == "interrupted":
        code, description = INTERRUPTED
    elif view.status == "canceled":
        code, description = CANCELED
    elif view.status == "error" and view.job is not None:
        code, description = job_error(view.job)
    elif view.status == "blocked" and view.job is not None:
        code = _atol_code(view.job.wait_reason) or CONNECTION_LOST[0]
        description = status.waiting or CONNECTION_LOST[1]
    entry: dict[str, Any] = {
        "status": view.status,
        "error": {"code": code, "description": description},
        "errorCode": code,
        "errorDescription": description,
    }
    if view.status == "ready":
        entry["result"] = result
    return entry


def block_fields(block: Block) -> dict[str, Any]:
    return {
        "isBlocked": block.is_blocked,
        "blockedUUID": block.client_id,
        "blockReason": block.reason,
    }


def error_body(description: str, code: int = WEB_FAIL) -> dict[str, Any]:
    return {"error": {"code": code, "description": description}}


def local_now() -> str:
    return datetime.now().astimezone().isoformat(timespec="seconds")


def server_info(register_name: str) -> dict[str, Any]:
    return {
        "serverVersion": SERVER_VERSION,
        "driverVersion": register_name,
        "os": "linux",
        "currentDateTime": local_now(),
        "product": "kassa-appliance",
    }


CONNECTION_DEFAULTS: dict[str, Any] = {
    "model": 500,
    "accessPassword": "",
    "userPassword": "",
    "port": "usb",
    "com": "1",
    "baudRate": 115200,
    "ipAddress": "",
    "ipPort": 0,
    "mac": "",
    "ofdChannel": "auto",
    "usbDevice": "auto",
}
OTHER_DEFAULTS: dict[str, Any] = {
    "useGlobalScriptsSettings": True,
    "scriptsPath": "",
    "useGlobalInvertCashDrawerStatusFlag": True,
    "invertCashDrawerStatus": False,
    "useGlobalAdditionalHeaderLines": True,
    "additionalHeaderLines": "",
    "useGlobalAdditionalFooterLines": True,
    "additionalFooterLines": "",
}


def device(
    *, name: str, usb_path: str, active: bool, block: Block, status: EngineStatus
) -> dict[str, Any]:
    """The appliance's one register as a Web Requests device (id ``1``, the default)."""
    return {
        "id": DEVICE_ID,
        "name": name,
        "connectionSettings": {**CONNECTION_DEFAULTS, "usbDevice": usb_path or "auto"},
        "otherSettings": dict(OTHER_DEFAULTS),
        "isActive": active,
        "isDefault": True,
        "isLock": block.is_blocked,
        "hasLicense": True,
        "lastError": status.last_error,
    }


def device_parameters_struct() -> dict[str, Any]:
    return {
        "id": "",
        "name": "",
        "connectionSettings": dict(CONNECTION_DEFAULTS),
        "otherSettings": dict(OTHER_DEFAULTS),
        "isActive": False,
        "isDefault": False,
        "isLock": False,
        "hasLicense": False,
    }


def _pairs(items: list[tuple[str, str]]) -> list[dict[str, str]]:
    return [{"key": key, "description": text} for key, text in items]


def mapping() -> dict[str, Any]:
    return {
        "model": _pairs([("500", "Автоматически (АТОЛ)"), ("61", "АТОЛ 30Ф"), ("97", "АТОЛ 35Ф")]),
        "port": _pairs(
            [("com", "COM / TTY"), ("usb", "USB"), ("tcp", "TCP/IP"), ("bluetooth", "Bluetooth")]
        ),
        "com": [],
        "usbDevice": _pairs([("auto", "Автоматически")]),
        "baudRate": _pairs([(str(n), f"{n} бод") for n in (9600, 19200, 57600, 115200)]),
        "ofdChannel": _pairs([("none", "Нет"), ("auto", "Автоматически (EoT)")]),
    }


def settings_problem(key: str, value: Any) -> str | None:
    """Atol's message for a PUT /settings value of the wrong type, or None."""
    default = DEFAULT_SETTINGS[key]
    if key == "deleteRequestsAfter":
        ok = (
            isinstance(value, int)
            and not isinstance(value, bool)
            and 0 <= value <= MAX_DELETE_AFTER
        )
    else:
        ok = type(value) is type(default)
    if ok:
        return None
    kind = {str: "string", bool: "boolean", int: "number", float: "number"}.get(
        type(value), "object"
    )
    return f"Некорректное значение или тип поля '{key}' ({kind})"
